# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Evidence and flags modules through ansible-playbook: check mode -> real -> idempotent re-run -> assert."""

import json
import os
import shutil
import stat
import sys

import pytest
import yaml

from tests.integration.http_standin import PostRecorder as Recorder

RELEASE = "2.1.0"
SECRET = "xoxb-T0KEN-4f9a2c7e1d"
REPOS = ["org/repo-%03d" % i for i in range(120)] + ["org/pilot"]


def lines(path):
    with open(path) as fh:
        return [json.loads(line) for line in fh]


# --- rollout_ledger -------------------------------------------------------------------------------------------

def test_ledger_check_real_rerun_tamper(playbook, tmp_path):
    path = str(tmp_path / "ledger.jsonl")
    evars = dict(ledger=path, release=RELEASE, secret=SECRET)

    run = playbook("ledger.yml", evars, check=True)
    assert run.rc == 0, run
    assert run.task("Record the phase start")["changed"]
    assert run.task("Record the gate verdict with its observed values")["changed"]
    assert not os.path.exists(path)

    run = playbook("ledger.yml", evars)
    assert run.rc == 0, run
    assert run.stats["changed"] == 2
    entries = lines(path)
    assert [e["seq"] for e in entries] == [1, 2]
    assert entries[1]["evidence"]["checks"][1] == {"name": "latency_p99_ms", "observed": 812, "threshold": 5000}
    with open(path) as fh:
        assert SECRET not in fh.read()
    assert SECRET not in run.stdout + run.stderr

    run = playbook("ledger.yml", evars)  # once: true -> a settled phase changes nothing
    assert run.rc == 0, run
    assert run.stats["changed"] == 0
    assert len(lines(path)) == 2
    run = playbook("ledger.yml", evars, verbosity=3, callback="default")
    assert run.rc == 0, run
    assert "module_args" in run.stdout and "changed=0" in run.stdout
    assert SECRET not in run.stdout + run.stderr

    assert playbook("ledger_verify.yml", dict(ledger=path)).rc == 0
    # edit one line by hand: verify fails and names the seq
    raw = open(path).read().splitlines()
    raw[0] = raw[0].replace('"fingerprint":"4a1b2c"', '"fingerprint":"4a1b2d"')
    with open(path, "w") as fh:
        fh.write("\n".join(raw) + "\n")
    run = playbook("ledger_verify.yml", dict(ledger=path))
    assert run.rc != 0
    result = run.task("Verify the chain")
    assert result["failed"] and result["broken_seq"] == 1 and "broken at seq 1" in result["msg"]
    # and the module refuses to append to it
    run = playbook("ledger.yml", dict(evars, release="2.1.1"))
    assert run.rc != 0
    assert "refusing to append to a broken chain at seq 1" in run.task("Record the phase start")["msg"]


def test_ledger_bad_input_named(playbook, tmp_path):
    run = playbook("ledger.yml", dict(ledger=str(tmp_path / "no-such-dir" / "l.jsonl"), release=RELEASE,
                                      secret=SECRET))
    assert run.rc != 0
    assert "does not exist" in run.task("Record the phase start")["msg"]


# --- feature_flags + cohort ----------------------------------------------------------------------------------

def test_flags_check_real_rerun(playbook, tmp_path):
    evars = dict(workdir=str(tmp_path), phase="canary", repos=REPOS)
    env = tmp_path / "rollout.env"

    run = playbook("flags.yml", evars, check=True, diff=True)
    assert run.rc == 0, run
    result = run.task("Render the env file")
    assert result["changed"] and "CODEX_PUBLISH_ENABLED=true" in result["diff"]["after"]
    assert result["diff"]["before"] == ""
    assert not env.exists() and not (tmp_path / "values-flags.yaml").exists()

    run = playbook("flags.yml", evars, diff=True)
    assert run.rc == 0, run
    assert run.task("Render the env file")["changed"] and run.task("Render Helm values")["changed"]
    text = env.read_text()
    body = [line for line in text.splitlines() if not line.startswith("#")]
    assert text.startswith("# Managed by stagegate.rollout.feature_flags")
    assert body == sorted(body)
    assert "CODEX_PUBLISH_PORTAL=external" in body and "CODEX_EMBEDDINGS_ENABLED=false" in body
    include = [line for line in body if line.startswith("CODEX_REPO_INCLUDE_LIST=")][0].split("=", 1)[1].split(",")
    assert "org/pilot" in include and 5 < len(include) < 25
    assert stat.S_IMODE(env.stat().st_mode) == 0o640
    helm = yaml.safe_load((tmp_path / "values-flags.yaml").read_text())
    assert helm["env"]["CODEX_PUBLISH_ENABLED"] is True and helm["env"]["CODEX_REPO_INCLUDE_LIST"] == include
    checksum = run.task("Render the env file")["checksum"]
    assert [f for f in os.listdir(str(tmp_path)) if f.endswith(".tmp")] == []

    run = playbook("flags.yml", evars)
    assert run.rc == 0, run
    assert run.stats["changed"] == 0
    assert run.task("Render the env file")["checksum"] == checksum

    # a mode-only change is a change, and is idempotent afterwards
    os.chmod(str(env), 0o600)
    assert playbook("flags.yml", evars).task("Render the env file")["changed"]
    assert stat.S_IMODE(env.stat().st_mode) == 0o640

    # the next phase changes the file
    evars["flags"] = {"CODEX_REPO_INCLUDE_LIST": [], "CODEX_EMBEDDINGS_ENABLED": True}
    run = playbook("flags.yml", dict(evars, phase="production"), diff=True)
    assert run.rc == 0, run
    result = run.task("Render the env file")
    assert result["changed"] and "CODEX_EMBEDDINGS_ENABLED=false" in result["diff"]["before"]
    assert "CODEX_EMBEDDINGS_ENABLED=true" in env.read_text()


@pytest.mark.parametrize("flags, phase, message", [
    ({"CODEX_PUBLISH_ENABELD": True}, "canary", "flags.CODEX_PUBLISH_ENABELD: unknown flag"),
    ({"CODEX_GRAPH_API_PORT": "eighty"}, "canary", "flags.CODEX_GRAPH_API_PORT value: expected an integer"),
    ({"CODEX_GRAPH_API_ENABLED": True}, "production",
     "flags.CODEX_GRAPH_API_ENABLED may not be on before the advanced phase"),
    ({"CODEX_EMBEDDINGS_ENABLED": True}, "canary",
     "flags.CODEX_EMBEDDINGS_ENABLED may not be on before the production phase"),
])
def test_flags_refused_before_any_change(playbook, tmp_path, flags, phase, message):
    env = tmp_path / "rollout.env"
    env.write_text("KEEP=me\n")
    run = playbook("flags.yml", dict(workdir=str(tmp_path), phase=phase, repos=REPOS, flags=flags))
    assert run.rc != 0
    result = run.task("Render the env file")
    assert result["failed"] and message in result["msg"], result["msg"]
    assert env.read_text() == "KEEP=me\n"
    assert not (tmp_path / "values-flags.yaml").exists()


def test_cohort_filter_bad_percent_is_named(playbook, tmp_path):
    run = playbook("flags.yml", dict(workdir=str(tmp_path), phase="canary", repos="org/a,org/b"))
    assert run.rc != 0
    assert "cohort: the input must be a list of IDs, got str" in run.stdout


# --- config_fingerprint --------------------------------------------------------------------------------------

def make_checkout(root):
    (root / "chart").mkdir(parents=True)
    (root / "chart" / "values.yaml").write_text("replicas: 2\n")
    return root


def test_fingerprint_freeze_check_and_refuse(playbook, tmp_path):
    a = make_checkout(tmp_path / "a")
    b = tmp_path / "b"
    shutil.copytree(str(a), str(b))
    freeze = str(tmp_path / "freeze.json")
    flags = {"CODEX_PUBLISH_ENABLED": True, "CODEX_REPO_INCLUDE_LIST": ["org/a"]}
    evars = dict(workdir=str(a), freeze=freeze, stage="freeze", flags=flags)

    run = playbook("fingerprint.yml", evars, check=True)
    assert run.rc == 0, run
    assert run.task("Freeze at staging")["changed"] and not os.path.exists(freeze)

    run = playbook("fingerprint.yml", evars)
    assert run.rc == 0, run
    frozen = run.task("Freeze at staging")
    assert frozen["changed"] and json.load(open(freeze))["fingerprint"] == frozen["fingerprint"]
    assert "file:chart/values.yaml" in frozen["items"]

    run = playbook("fingerprint.yml", evars)
    assert run.rc == 0 and run.stats["changed"] == 0
    assert run.task("Freeze at staging")["fingerprint"] == frozen["fingerprint"]

    # the other checkout, checked against the freeze: same fingerprint
    run = playbook("fingerprint.yml", dict(evars, workdir=str(b), stage="check"))
    assert run.rc == 0, run
    checked = run.task("Check before the canary")
    assert checked["matches"] and checked["fingerprint"] == frozen["fingerprint"]

    # one flag changed without a new staging run: refused, naming the item
    run = playbook("fingerprint.yml", dict(evars, workdir=str(b), stage="check",
                                           flags=dict(flags, CODEX_PUBLISH_ENABLED=False)))
    assert run.rc != 0
    result = run.task("Check before the canary")
    assert result["failed"] and not result["matches"]
    assert result["differences"] == [{"item": "data.flags", "change": "changed"}]
    assert "data.flags changed" in result["msg"] and "run staging again" in result["msg"]

    # a chart file changed in the checkout: refused too
    (b / "chart" / "values.yaml").write_text("replicas: 3\n")
    run = playbook("fingerprint.yml", dict(evars, workdir=str(b), stage="check"))
    assert run.rc != 0
    assert "file:chart/values.yaml changed" in run.task("Check before the canary")["msg"]

    # nothing frozen: refused
    run = playbook("fingerprint.yml", dict(evars, freeze=str(tmp_path / "none.json"), stage="check"))
    assert run.rc != 0 and "run the staging phase first" in run.task("Check before the canary")["msg"]


# --- determinism_check ---------------------------------------------------------------------------------------

DETERMINISTIC = ("import json, sys; out = sys.argv[1];"
                 "data = {'b': [3, 2, 1], 'a': 'x'};"
                 "open(out, 'w').write(json.dumps(data, sort_keys=True)); print('ok', sorted(data))")
RANDOM = "import os; print(os.urandom(8).hex())"


def test_determinism_check_mode_then_serial_and_parallel(playbook, tmp_path):
    evars = dict(workdir=str(tmp_path), script=[sys.executable, "-c", DETERMINISTIC, "out-{run}.json"],
                 outputs=["out-{run}.json"], mode="both")
    run = playbook("determinism.yml", evars, check=True)
    assert run.rc == 0, run
    assert run.task("Run the step several times and compare")["skipped"] is True
    assert not list(tmp_path.glob("out-*.json"))

    run = playbook("determinism.yml", evars)
    assert run.rc == 0, run
    det = run.task("Run the step several times and compare")
    assert not det["changed"] and det["identical"]
    assert [d["mode"] for d in det["runs_detail"]] == ["serial"] * 3 + ["parallel"] * 3
    assert sorted(p.name for p in tmp_path.glob("out-*.json")) == ["out-%d.json" % i for i in range(1, 7)]
    assert set(det["runs_detail"][0]["items"]) == {"stdout", "output:out-{run}.json"}
    assert run.stats["changed"] == 0

    (tmp_path / "a.bin").write_bytes(b"same")
    (tmp_path / "b.bin").write_bytes(b"same")
    (tmp_path / "c.bin").write_bytes(b"diff")
    run = playbook("determinism.yml", dict(evars, file_groups=[[str(tmp_path / "a.bin"), str(tmp_path / "b.bin")]]))
    assert run.rc == 0, run
    assert run.task("Compare files produced twice")["file_groups"][0]["identical"]
    run = playbook("determinism.yml", dict(evars, file_groups=[[str(tmp_path / "a.bin"), str(tmp_path / "c.bin")]]))
    assert run.rc != 0
    result = run.task("Compare files produced twice")
    assert result["differing"] == ["files[0]"] and "not deterministic" in result["msg"]


def test_determinism_detects_random_output_and_failures(playbook, tmp_path):
    run = playbook("determinism.yml", dict(workdir=str(tmp_path), script=[sys.executable, "-c", RANDOM]))
    assert run.rc != 0
    det = run.task("Run the step several times and compare")
    assert det["failed"] and det["differing"] == ["stdout"] and len(set(det["digests"])) == 3
    run = playbook("determinism.yml", dict(workdir=str(tmp_path),
                                           script=[sys.executable, "-c", "import sys; sys.exit(3)"]))
    assert run.rc != 0
    assert "exited with 3" in run.task("Run the step several times and compare")["msg"]
    run = playbook("determinism.yml", dict(workdir=str(tmp_path), timeout=1,
                                           script=[sys.executable, "-c", "import time; time.sleep(30)"]))
    assert run.rc != 0
    assert "timed out after 1.0s" in run.task("Run the step several times and compare")["msg"]
    run = playbook("determinism.yml", dict(workdir=str(tmp_path), script=["/nonexistent/tool", "--x"]))
    assert run.rc != 0
    assert "cannot start /nonexistent/tool" in run.task("Run the step several times and compare")["msg"]


# --- rollout_notify ------------------------------------------------------------------------------------------

def test_notify_check_real_and_secret_never_echoed(playbook):
    header_token = "hdr-S3CRET-9b8c7d"
    with Recorder() as srv:
        webhook = "http://127.0.0.1:%d/hooks/%s" % (srv.port, SECRET)
        evars = dict(webhook=webhook, token=header_token)

        run = playbook("notify.yml", evars, check=True, verbosity=3, callback="default")
        assert run.rc == 0, run
        assert srv.requests == []
        assert SECRET not in run.stdout + run.stderr and header_token not in run.stdout + run.stderr

        run = playbook("notify.yml", evars, verbosity=3, callback="default")
        assert run.rc == 0, run
        assert len(srv.requests) == 1
        req = srv.requests[0]
        assert req["path"] == "/hooks/" + SECRET
        assert req["headers"]["Authorization"] == "Bearer " + header_token
        assert req["headers"]["Content-Type"] == "application/json"
        body = json.loads(req["body"])
        assert body["severity"] == "HIGH" and body["release"] == "2.1.0" and body["phase"] == "canary"
        assert body["text"].startswith("[HIGH] canary 2.1.0 rolled back")
        out = run.stdout + run.stderr
        assert "module_args" in out  # -vvv did print the invocation ...
        assert SECRET not in out and header_token not in out  # ... without the secrets
        assert "127.0.0.1:%d/***" % srv.port in out

        run = playbook("notify.yml", evars)
        assert run.rc == 0, run
        result = run.task("Notify the channel")
        assert result["sent"] and result["status"] == 200 and result["attempts"] == 1
        assert SECRET not in json.dumps(result)


def test_notify_retries_then_fails_without_leaking(playbook):
    with Recorder(statuses=[503, 500, 200]) as srv:
        webhook = "http://127.0.0.1:%d/hooks/%s" % (srv.port, SECRET)
        run = playbook("notify.yml", dict(webhook=webhook, token="t0ken-abcdef"))
        assert run.rc == 0, run
        assert run.task("Notify the channel")["attempts"] == 3 and len(srv.requests) == 3

    with Recorder(statuses=[404] * 5) as srv:
        webhook = "http://127.0.0.1:%d/hooks/%s?key=%s" % (srv.port, SECRET, "QUERYSECRET42")
        run = playbook("notify.yml", dict(webhook=webhook, token="t0ken-abcdef"), verbosity=3, callback="default")
        assert run.rc != 0
        assert len(srv.requests) == 1  # 4xx is not retried
        out = run.stdout + run.stderr
        assert "did not accept the message after 1 attempt(s): status 404" in out
        assert SECRET not in out and "QUERYSECRET42" not in out

    # nothing listening: connection refused, retried, failed, masked
    with Recorder() as srv:
        port = srv.port
    run = playbook("notify.yml", dict(webhook="http://127.0.0.1:%d/hooks/%s" % (port, SECRET), token="t0ken-abcdef",
                                      retries=1), verbosity=3, callback="default")
    assert run.rc != 0
    out = run.stdout + run.stderr
    assert "after 2 attempt(s)" in out and SECRET not in out


def test_notify_bad_url_refused_masked(playbook):
    run = playbook("notify.yml", dict(webhook="ftp://example.invalid/" + SECRET, token="t0ken-abcdef"))
    assert run.rc != 0
    result = run.task("Notify the channel")
    assert "url must be an http:// or https:// URL" in result["msg"] and SECRET not in json.dumps(result)
