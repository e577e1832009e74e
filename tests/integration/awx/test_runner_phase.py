# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A phase run the way AWX runs a job: ``ansible-runner run`` with a private data dir (inventory, env/extravars,
env/envvars, project/ with the user's one-line playbook importing the collection's), no stdin.

Not approved (no ``rollout_auto_approve``, which only the workflow's approval nodes give), the staging phase of the
demo's inventory on a real nats-server and HAProxy is refused before any change: the job events show the approval
prompt skipped (under the runner nobody can type; in its default pexpect mode the prompt would wait on a
pseudo-terminal until the job times out) and the refusal, with nothing changed before it; HAProxy's weights and the
ledger are untouched. A phase that goes to the end needs the whole demo stack (service, Prometheus, load), which
tests/integration/demo runs; it is not repeated here for time.
"""
import glob
import json
import os
import subprocess
import sys
import time

from ansible_collections.stagegate.rollout.plugins.module_utils.haproxy_client import parse_servers_state

from demo.stack import local
from demo.stack.haproxy import HAProxy, runtime_command
from demo.stack.nats import NatsServer
from demo.stack.ports import free_port

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BIN = os.path.dirname(sys.executable)


def _weights(sock):
    """{server: weight} of backend app (the collection's parser of ``show servers state``)."""
    state = parse_servers_state(runtime_command(sock, "show servers state app"))
    return dict((s["server"], s["weight"]) for s in state)


def test_unapproved_phase_under_ansible_runner_is_refused_before_any_change(tmp_path):
    ports = {"stable": free_port(), "canary": free_port()}
    nats = NatsServer(str(tmp_path / "nats")).start()
    haproxy = HAProxy(str(tmp_path / "haproxy"), backends={"app": [
        ("stable", "127.0.0.1:%d" % ports["stable"], 100), ("canary", "127.0.0.1:%d" % ports["canary"], 0)]}).start()
    try:
        pdd = tmp_path / "pdd"
        (pdd / "project").mkdir(parents=True)
        (pdd / "env").mkdir()
        info = {"workdir": str(tmp_path), "python": sys.executable, "repo_root": local.REPO_ROOT,
                "publish_dir": str(tmp_path / "publish"), "faults_file": str(tmp_path / "faults.env"),
                "nats": {"url": nats.url, "stream": local.STREAM, "subjects": local.SUBJECTS,
                         "durable": local.DURABLE},
                "prometheus": {"url": "http://127.0.0.1:%d" % free_port()},
                "haproxy": {"socket_path": haproxy.socket_path, "backend": "app"},
                "slots": dict((n, {"port": p}) for n, p in ports.items()), "inventory": str(pdd / "inventory")}
        local.write_inventory(info)  # the demo's inventory, as the SCM inventory source would sync it
        # the user's repository: one line per phase importing the collection's playbook (docs/awx.md)
        (pdd / "project" / "staging.yml").write_text(
            "---\n- name: Staging\n  ansible.builtin.import_playbook: stagegate.rollout.staging\n")
        (pdd / "env" / "extravars").write_text(json.dumps({"rollout_version": "v2"}))  # the survey's answer
        (pdd / "env" / "envvars").write_text(json.dumps({
            "ANSIBLE_COLLECTIONS_PATH": os.path.join(ROOT, ".collections"), "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "True",
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable}))
        (pdd / "env" / "settings").write_text(json.dumps({"job_timeout": 240, "idle_timeout": 120}))
        before = _weights(haproxy.socket_path)
        assert before == {"stable": 100, "canary": 0}, before

        t0 = time.monotonic()
        env = dict((k, v) for k, v in os.environ.items() if not k.startswith("ANSIBLE_"))
        env["PATH"] = BIN + os.pathsep + env.get("PATH", "")
        proc = subprocess.run([os.path.join(BIN, "ansible-runner"), "run", str(pdd), "-p", "staging.yml",
                               "--ident", "staging-v2"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              env=env, timeout=300, check=False)
        elapsed = time.monotonic() - t0
        artifacts = pdd / "artifacts" / "staging-v2"
        assert (artifacts / "rc").read_text().strip() == str(proc.returncode)
        assert proc.returncode == 2, proc.stdout[-4000:]  # a failed task, not the runner's timeout (254)
        assert (artifacts / "status").read_text().strip() == "failed"
        assert elapsed < 100, "the refusal waited (%.0fs): the prompt was shown to nobody" % elapsed

        events = []
        for path in glob.glob(str(artifacts / "job_events" / "*.json")):
            with open(path) as f:
                events.append(json.load(f))
        events.sort(key=lambda e: e["counter"])
        results = [e for e in events if e["event"].startswith("runner_on_") and e["event"] != "runner_on_start"]
        tasks = [(e["event"], e["event_data"].get("task")) for e in results]
        # the approval plugin does not ask under ansible-runner (no prompt on the runner's pseudo-terminal)
        asked = [e for e in results if e["event_data"].get("task") == "Phase | wait for approval"]
        assert [e["event"] for e in asked] == ["runner_on_ok"], tasks
        res = asked[0]["event_data"]["res"]
        assert res["approved"] is False and res["terminal"] is False and "ansible-runner" in res["reason"], res
        failed = [e for e in events if e["event"] == "runner_on_failed"]
        assert [e["event_data"]["task"] for e in failed] == ["Phase | stop unless a person approved"], tasks
        msg = failed[0]["event_data"]["res"]["msg"]
        assert "staging of v2 was not approved" in msg and "nothing changed" in msg
        assert "runs under ansible-runner" in msg and "rollout_auto_approve=true" in msg
        changed = [e["event_data"].get("task") for e in events
                   if e["event"] == "runner_on_ok" and e["event_data"].get("res", {}).get("changed")]
        assert changed == [], changed
        stats = [e for e in events if e["event"] == "playbook_on_stats"][0]["event_data"]
        assert stats["failures"] == {"localhost": 1} and not stats["changed"]

        # nothing changed: traffic, ledger, state
        assert _weights(haproxy.socket_path) == before
        assert not os.path.exists(str(tmp_path / "ledger.jsonl"))
        assert not os.path.exists(str(tmp_path / "rollout-state"))
    finally:
        haproxy.stop()
        nats.stop()
