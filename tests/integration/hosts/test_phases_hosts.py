# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The four phases of the INSTALLED collection on three real SSH app hosts, with a user's own inventory.

What is real and what is not: tests/integration/hosts/site_kit.py (the installed collection, a user's own
inventory, three sshd on 127.0.0.11-13 as app hosts app1..app3, NATS, HAProxy, Prometheus, load).

The test installs v1, promotes v2 through staging, canary, production (two host batches, gates between
them) and advanced (one batch of every host; first with a chaos drill that fails its recovery check: every host
rolls back; then with its three drills on app3 - the stable slot SIGKILLed, frozen 3 s, a gate with its metrics unreachable -
each scored on the ledger), then rolls a bad v3 (20 % errors once it publishes externally) back at the canary on
every host, and checks after each run HAProxy's weights, the version of every slot (/healthz), the flags
in every env file and the ledger. v3's staging first finds an interrupted attempt (injected: a phase_start
without outcome, 25 % on one canary) and puts the traffic to 0 % and records it aborted, and it is approved
by a person typing the version on a terminal (a pty). Then, each refused before any change (ledger,
weights, versions and env files compared): the bad-plan table, production of v3 (its canary rolled back),
a second rollout while another holds the lock, a phase nobody approved (no terminal, or the wrong word
typed); site on the settled v2 changes nothing; monitor, status, and the kill switch pulled by monitor when no
sentinel returns results. At the end the ledger
verifies, every event was processed exactly once by a healthy version and no process is left behind.
"""
import collections
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time

import pytest
import yaml

from demo.stack.haproxy import runtime_command
from demo.stack.local import DURABLE
from demo.testkit import consumer_info
from tests.integration.example_check import check_play
from tests.integration.hosts.site_kit import (
    BIN, CANARY_REPOS, JOB, MARKER, NATS_DURABLE, PORTS, ROOT, SERVICE, WeightWatch, ansible_env, assert_ok, entries,
    expected_weights, longest_silence, open_site, processes_mentioning, task_blocks, verify_ledger)
from tests.integration.hosts.ssh_hosts import accepts, alive

pytestmark = pytest.mark.slow

EXAMPLE = os.path.join(ROOT, "inventories", "examples", "hosts")
ANALYSIS = 8  # seconds per canary step / production and advanced batch
PROGRESS = 10  # a wait prints a line at least this often (rollout_progress_seconds' default)
assert DURABLE != NATS_DURABLE


@pytest.fixture(scope="module")
def collection(installed_collection):
    return installed_collection


@pytest.fixture(scope="module")
def site(collection, tmp_path_factory):
    s = open_site(tmp_path_factory.mktemp("phases_hosts"), collection, analysis=ANALYSIS)
    yield s
    left = s.close()
    sys.stderr.write("timings: %s\n" % json.dumps(s.timings))
    assert not left, left


def _frontend_version(site):
    conn = http.client.HTTPConnection("127.0.0.1", site.haproxy.frontend_port, timeout=5)
    try:
        conn.request("GET", "/api/ping")
        return conn.getresponse().getheader("X-Version")
    finally:
        conn.close()


def assert_progress(site, title, count, verdict=None):
    """``count`` tasks named ``title`` in the last play, none silent for more than PROGRESS seconds, each with one
    line containing ``verdict``."""
    # a task skipped on every host (the judge of a step without one) still prints its header
    blocks = [b for b in task_blocks(site.lines, title)
              if any(line.startswith(("ok:", "changed:", "fatal:", "failed:")) for dummy, line in b)]
    assert len(blocks) == count, [b[0][1] for b in blocks]
    for block in blocks:
        text = "\n".join("%6.1f %s" % line for line in block)
        silence = longest_silence(block)
        sys.stderr.write("longest silence of %s: %.1f s\n" % (block[0][1][:80], silence[0]))
        assert silence[0] <= PROGRESS, "silent for %.1f s before %r:\n%s" % (silence[0], silence[1], text)
        if verdict:
            assert sum(verdict in line for dummy, line in block) == 1, text


# ----- the tests -------------------------------------------------------------------------------------------------
def test_the_example_inventory_lists_and_its_target_validates(collection, tmp_path):
    """inventories/examples/hosts: ansible-inventory lists it; the installed rollout_target accepts its target and
    feature_flags accepts every phase's flags against its schema (nothing is run against its hosts)."""
    env = ansible_env(collection)
    p = subprocess.run([os.path.join(BIN, "ansible-inventory"), "-i", EXAMPLE, "--list"], cwd=str(tmp_path), env=env,
                       capture_output=True, text=True, timeout=120, check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    inv = json.loads(p.stdout)
    assert inv["app"]["hosts"] == ["app1", "app2", "app3"] and inv["lb"]["hosts"] == ["lb1"]
    assert inv["_meta"]["hostvars"]["app1"]["rollout_target"]["name"] == "codex"
    play = check_play(tmp_path / "plan.json")
    (tmp_path / "check.yml").write_text(json.dumps(play))
    p = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", EXAMPLE, str(tmp_path / "check.yml")],
                       cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300, check=False)
    assert_ok(p.returncode, p.stdout + p.stderr)
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert plan["app_hosts"] == ["app1", "app2", "app3"]
    assert plan["servers"]["app2"] == {"stable": "app2_stable", "canary": "app2_canary"}
    assert plan["host_batches"] == [["app1"], ["app2"], ["app3"]]
    assert plan["weights"]["10"] == expected_weights(["app1", "app2", "app3"], {"app1": 10, "app2": 10, "app3": 10})
    # the SPEC's thresholds
    with open(os.path.join(EXAMPLE, "group_vars", "all", "phases.yml"), encoding="utf-8") as fh:
        phases = yaml.safe_load(fh)
    assert phases["rollout_canary"]["thresholds"] == {"error_rate": 0.05, "p99_latency_ms": 5000}
    assert [s["weight"] for s in phases["rollout_canary"]["steps"]] == [10, 25, 50, 100]
    assert phases["rollout_production"]["thresholds"] == {"error_rate": 0.01, "p99_latency_ms": 3000}
    assert phases["rollout_production"]["batches"] == [1, "25%", "100%"]


def test_install_v1_on_three_hosts(site):
    rc, out = site.play("install", "v1")
    assert_ok(rc, out)
    hosts = sorted(site.ssh.hosts)
    assert site.weights() == expected_weights(hosts, dict.fromkeys(hosts, 0))
    assert site.versions() == dict((h, {"stable": "v1", "canary": None}) for h in hosts)
    for h in hosts:
        env = site.env(h, "stable")
        assert env["CODEX_PUBLISH_PORTAL"] == "external" and env["CODEX_REPO_INCLUDE_LIST"] == "", env
        assert site.program_state(h, "stable") == "RUNNING"
    assert [e["event"] for e in entries(site, "v1")] == ["install"]
    # the traffic goes to v1 through HAProxy, then the load starts (HTTP through HAProxy, events to NATS)
    assert "v1" == _frontend_version(site)
    site.start_load()


def since_the_last_start(site, release, phase, event):
    """The ledger entries ``event`` of ``release`` and ``phase`` since its last phase start."""
    mine = entries(site, release, phase)
    start = [e for e in mine if e["event"] == "phase_start"][-1]
    return [e for e in mine if e["seq"] > start["seq"] and e["event"] == event]


def advanced_with_a_failing_chaos_drill(site):
    """v2's advanced with one drill whose check cannot pass (a gate pointed at a metrics provider that answers,
    the site's own Prometheus, so it does not fail closed): the score is under min_success and every host rolls
    back to production's flags; the test's next advanced run (the declared drills) then promotes."""
    hosts = sorted(site.ssh.hosts)
    with open(os.path.join(site.inventory, "group_vars", "all", "phases.yml"), encoding="utf-8") as fh:
        plan = yaml.safe_load(fh)["rollout_advanced"]
    plan["chaos"] = dict(plan["chaos"], drills=[
        {"name": "a provider that answers", "kind": "metrics_unreachable", "url": site.prometheus.url}])
    rc, out = site.play("advanced", "v2", extra={"rollout_advanced": plan})
    assert rc != 0 and "chaos drills: 0 of 1 recovered, at least 95.0 % needed" in out, out[-3000:]
    assert "PASSED although nothing answered" in out, out[-3000:]
    chaos = since_the_last_start(site, "v2", "advanced", "chaos")
    assert [(c["step"], c["decision"]) for c in chaos] == [
        ("chaos: a provider that answers", "fail"), ("chaos score", "rollback")], chaos
    last = entries(site, "v2", "advanced")[-1]
    assert last["event"] == "rollback" and "chaos drills" in last["reason"], last
    assert site.versions() == dict((h, {"stable": "v2", "canary": None}) for h in hosts)
    for h in hosts:
        assert site.env(h, "stable")[MARKER] == "production-on-three-hosts", h


def test_good_release_v2_through_every_phase_on_three_hosts(site):
    hosts = sorted(site.ssh.hosts)

    rc, out = site.play("staging", "v2")
    assert_ok(rc, out)
    assert site.weights() == expected_weights(hosts, dict.fromkeys(hosts, 0))
    assert site.versions() == dict((h, {"stable": "v1", "canary": None}) for h in hosts)
    for h in hosts:
        assert site.env(h, "canary")["CODEX_PUBLISH_PORTAL"] == "build-only"
        assert site.program_state(h, "canary") in ("STOPPED", "EXITED")
    probes = entries(site, "v2", "staging", "gate")
    assert len(probes) == 1 and probes[0]["decision"] == "pass", probes
    assert probes[0]["evidence"]["failed"] == []

    rc, out = site.play("canary", "v2")
    assert_ok(rc, out)
    # every judged step prints progress while it looks and ends with one verdict line
    assert_progress(site, "Canary | canary judge", 3, verdict="canary judge: verdict ")
    assert re.search(r"canary judge: look \d+, \d+ s of %d s \| canary \d+ req \d+ err \| stable \d+ req \d+ err \| "
                     r"errors e_fail \S+/200 e_pass \S+/20" % ANALYSIS, out), out[-4000:]
    assert_progress(site, "Phase | observe, canary", 1)
    assert site.weights() == expected_weights(hosts, dict.fromkeys(hosts, 100))
    assert site.versions() == dict((h, {"stable": "v1", "canary": "v2"}) for h in hosts)
    for h in hosts:
        env = site.env(h, "canary")
        assert env["CODEX_REPO_INCLUDE_LIST"] == ",".join(CANARY_REPOS), env
        assert env["CODEX_PUBLISH_PORTAL"] == "external" and env["POLICY_TRANSPARENCY_ENABLED"] == "true", env
        assert env["GRAPH_API_ENABLED"] == "false", env
        assert env[MARKER] == "canary-on-three-hosts", env  # a flag only this inventory's schema knows
        assert site.env(h, "stable")["CODEX_REPO_INCLUDE_LIST"] == ""  # stable keeps v1's flags
    gates = entries(site, "v2", "canary", "gate")
    assert [g["step"] for g in gates] == ["1", "2", "3", "4"], gates
    assert all(g["decision"] == "pass" for g in gates), gates
    for g in gates:  # both default gates, each with a measured value
        assert [r["name"] for r in g["evidence"]["results"]] == ["canary error rate", "canary p99 latency"], g
        assert all(r["observed"] is not None and r["passed"] for r in g["evidence"]["results"]), g
    judged = entries(site, "v2", "canary", "judge")
    assert [j["step"] for j in judged] == ["1", "2", "3"] and all(j["decision"] != "rollback" for j in judged), judged
    # one analysis through the judged steps: each later step carries the evidence of the ones before
    assert [(j["evidence"]["carried"] or {}).get("steps", 0) for j in judged] == [0, 1, 2], judged
    assert judged[2]["evidence"]["carried"]["canary"] >= judged[1]["evidence"]["carried"]["canary"] > 0, judged

    rc, out = site.play("production", "v2")
    assert_ok(rc, out)
    assert_progress(site, "Phase | observe, production batch", 2)
    assert site.weights() == expected_weights(hosts, dict.fromkeys(hosts, 0))
    assert site.versions() == dict((h, {"stable": "v2", "canary": None}) for h in hosts)
    for h in hosts:
        env = site.env(h, "stable")
        assert env["CODEX_REPO_INCLUDE_LIST"] == "" and env["MERMAID_GRAPHS_ENABLED"] == "true", env
        assert env[MARKER] == "production-on-three-hosts", env
        assert site.program_state(h, "canary") in ("STOPPED", "EXITED")
    gates = entries(site, "v2", "production", "gate")
    # one gate entry per batch: [app1], then [app2, app3]
    assert [g["step"] for g in gates] == ["batch 1", "batch 2"], gates
    assert all(g["decision"] == "pass" for g in gates), gates
    for g in gates:
        assert [r["name"] for r in g["evidence"]["results"]] == ["production error rate", "production p99 latency"]
        assert all(r["observed"] is not None for r in g["evidence"]["results"]), g
    start = entries(site, "v2", "production", "phase_start")[-1]
    assert start["evidence"]["batches"] == [["app1"], ["app2", "app3"]], start

    advanced_with_a_failing_chaos_drill(site)
    rc, out = site.play("advanced", "v2")
    assert_ok(rc, out)
    assert site.weights() == expected_weights(hosts, dict.fromkeys(hosts, 0))
    assert site.versions() == dict((h, {"stable": "v2", "canary": None}) for h in hosts)
    for h in hosts:
        env = site.env(h, "stable")
        assert env["GRAPH_API_ENABLED"] == "true" and env["CHAOS_ENGINEERING_ENABLED"] == "true", env
        assert env[MARKER] == "advanced-on-three-hosts", env
    gates = since_the_last_start(site, "v2", "advanced", "gate")
    assert sorted(g["step"] for g in gates) == ["batch 1", "probes"], gates  # one batch of every host
    assert all(g["decision"] == "pass" for g in gates), gates
    probe = next(g for g in gates if g["step"] == "probes")
    assert probe["evidence"]["failed"] == [] and "9 probes" in probe["reason"], probe  # (health + 2) x 3 hosts

    # the chaos drills ran on app3 and each recovered: a chaos entry each, then the score
    chaos = since_the_last_start(site, "v2", "advanced", "chaos")
    assert [c["step"] for c in chaos] == ["chaos: kill a stable slot", "chaos: freeze a consumer",
                                          "chaos: metrics unreachable", "chaos score"], chaos
    assert all(c["decision"] == "pass" for c in chaos), chaos
    kill, freeze = chaos[0]["evidence"], chaos[1]["evidence"]
    assert kill["host"] == "app3" and kill["slot"] == "stable" and kill["seconds"] <= 30, kill
    assert kill["clients"]["requests"] > 0 and kill["clients"]["ratio"] <= 0.02, kill
    assert "running again as pid" in kill["detail"] and "drained" in freeze["detail"], (kill, freeze)
    assert "failed closed" in chaos[2]["reason"], chaos[2]
    assert chaos[3]["evidence"]["score"] == 1.0 and chaos[3]["evidence"]["total"] == 3, chaos[3]
    assert site.versions()["app3"] == {"stable": "v2", "canary": None}

    # every sentinel returned results on every host's stable slot
    sentinels = since_the_last_start(site, "v2", "advanced", "sentinel")
    assert [(s["decision"], s["evidence"]["returned"], s["evidence"]["total"]) for s in sentinels] == [("pass", 6, 6)], \
        sentinels

    promoted = [e["phase"] for e in entries(site, "v2", event="promote")]
    assert promoted == ["staging", "canary", "production", "advanced"]
    assert verify_ledger(site.ledger_path)["valid"]


def test_the_inventory_s_metric_names_are_what_the_gates_and_the_judge_query(site):
    """The user's metric names, job selector and version label (not the collection's defaults) were queried."""
    queries = site.queries()
    assert queries, "Prometheus logged no query"
    # the default canary gates, built from the inventory's metric names and selectors
    assert any(q.startswith('(sum(increase(demo_http_requests_total{job="%s",route!="/healthz",slot="canary",'
                            'version="v2",code=~"5.."}[%ds])) or vector(0))' % (JOB, ANALYSIS)) for q in queries), \
        queries[:20]
    assert any('demo_http_request_duration_seconds_bucket{job="%s",route!="/healthz",slot="stable",version="v2"}'
               % JOB in q for q in queries), queries[:20]
    # the judge's cumulative queries, baseline = stable slots, canary = canary slots of this version
    assert 'sum(demo_http_requests_total{job="%s",route!="/healthz",slot="stable"})' % JOB in queries
    assert 'sum(demo_http_requests_total{job="%s",route!="/healthz",slot="canary",version="v2"})' % JOB in queries
    # nothing asked for the metric names of docs/targets.md's example
    assert not [q for q in queries if "http_requests_total" in q and "demo_http_requests_total" not in q]


def _burst_when_canary_serves(site, watch, count=60, timeout=600):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not watch.stopped.is_set():
        if watch.canary() not in (None, 0):
            site.loadgen.burst(count)
            return
        time.sleep(0.02)


def test_bad_release_v3_rolled_back_on_every_host(site):
    hosts = sorted(site.ssh.hosts)
    stable_flags = dict((h, site.env(h, "stable")) for h in hosts)

    # an interrupted attempt (its controller killed at 25 % on app1): the next phase, whatever its release, puts
    # the canary traffic to 0 % first and records the attempt as aborted
    from ansible_collections.stagegate.rollout.plugins.module_utils.ledger import Ledger, build_record
    Ledger(site.ledger_path).append(build_record("v2-killed", "canary", "phase_start", decision="start",
                                                 reason="a run that was killed")[0])
    runtime_command(site.haproxy.socket_path, "set weight app/app1_canary 25")
    runtime_command(site.haproxy.socket_path, "set weight app/app1_stable 75")

    # a person approves staging at a terminal, typing the version
    rc, out = site.play("staging", "v3", approve="v3")
    assert_ok(rc, out)  # the fault only shows once v3 publishes externally
    assert "type v3 and Enter to approve" in out, out[-3000:]
    ledger = site.ledger()
    aborted = [e for e in ledger if e["event"] == "aborted"]
    assert [(e["release"], e["phase"]) for e in aborted] == [("v2-killed", "canary")], aborted
    assert aborted[0]["evidence"]["weights_before"]["app1_canary"] == 25, aborted
    assert aborted[0]["evidence"]["weights_after"] == expected_weights(hosts, dict.fromkeys(hosts, 0)), aborted
    start = next(e for e in ledger if (e["release"], e["phase"], e["event"]) == ("v3", "staging", "phase_start"))
    assert aborted[0]["seq"] < start["seq"], "the interrupted attempt is dealt with before the phase starts"
    assert site.versions() == dict((h, {"stable": "v2", "canary": None}) for h in hosts)

    watch = WeightWatch(site, period=0.01)
    # once v3 takes traffic, a burst of events: v3's consumer takes some of them for sure (at the steady rate a
    # quickly failed step may see none), so the replay after the rollback has something to give back
    burst = threading.Thread(target=_burst_when_canary_serves, args=(site, watch), daemon=True)
    burst.start()
    try:
        rc, out = site.play("canary", "v3")
    finally:
        watch.close()
        burst.join(5)
    assert rc != 0, "the bad canary must fail the play: " + out[-4000:]
    assert "rolled back" in out, out[-4000:]
    # canary weight 0 and the canary slot stopped on every host, stable v2 untouched
    assert site.weights() == expected_weights(hosts, dict.fromkeys(hosts, 0))
    assert site.versions() == dict((h, {"stable": "v2", "canary": None}) for h in hosts)
    for h in hosts:
        assert site.program_state(h, "canary") in ("STOPPED", "EXITED"), h
        assert not accepts(site.ssh.hosts[h], PORTS["canary"]), h
        # the canary's env file holds the stable flags again
        assert site.env(h, "canary") == stable_flags[h], h
        assert site.env(h, "stable") == stable_flags[h], h
    v3 = entries(site, "v3", "canary")
    events = [e["event"] for e in v3]
    assert "rollback" in events and "promote" not in events and "rollback_incomplete" not in events, events
    failed = [e for e in v3 if e["event"] in ("gate", "judge") and e["decision"] == "rollback"]
    assert failed, "the failed gate or judge verdict is on the ledger: %s" % v3
    # the fast abort: whichever decided fail wrote the canary weights 0 itself, within 100 ms of its verdict,
    # and an outside reader of HAProxy's weights (every 10 ms) saw them within 100 ms too
    abort = failed[0]["evidence"]["fast_abort"]
    assert abort["applied"] and abort["ms_after_verdict"] <= 100, failed[0]
    zero = expected_weights(hosts, dict.fromkeys(hosts, 0))
    seen = next((ts for ts, w in watch.changes if ts >= abort["decided_at"] - 0.05 and w == zero), None)
    assert seen is not None and seen - abort["decided_at"] <= 0.1, (abort, watch.changes[-5:])
    sys.stderr.write("fast abort: %s ms inside the module, weight 0 seen %.1f ms after the verdict\n"
                     % (abort["ms_after_verdict"], (seen - abort["decided_at"]) * 1000))
    gate = next((e for e in failed if e["event"] == "gate"), None)
    if gate is not None:
        bad = [r for r in gate["evidence"]["results"] if not r["passed"]]
        assert bad and bad[0]["observed"] is not None and bad[0]["observed"] >= 0.05, gate
    rollback = next(e for e in v3 if e["event"] == "rollback")
    assert rollback["evidence"]["hosts"] == hosts and rollback["evidence"]["left"] == [], rollback
    assert rollback["evidence"]["weights_after"] == expected_weights(hosts, dict.fromkeys(hosts, 0)), rollback
    assert rollback["evidence"]["replay"]["replay"]["recreated"], rollback
    assert verify_ledger(site.ledger_path)["valid"]
    with open(os.path.join(site.state_dir, "stagegate_rollout.prom"), encoding="utf-8") as fh:
        assert 'stagegate_rollout_rollbacks_total{mode="emergency",phase="canary",release="v3"} 1' in fh.read()


def test_the_report_of_each_release_renders(site, tmp_path):
    """stagegate.rollout.report on the user's inventory: the ledger and the site's Prometheus, rendered in Chromium."""
    from tests.integration.report.reportkit import check_rendered_report
    for version, outcome in (("v2", "promoted"), ("v3", "rolled back")):
        rc, out = site.play("report", version)
        assert_ok(rc, out)
        html = os.path.join(site.state_dir, "reports", version, "report.html")
        assert "Report: %s" % html in out, out[-2000:]
        # v3's canary took traffic for one short step only: its line is too short for the screenshot's pixel count
        found = check_rendered_report(html, tmp_path / version, plots=("error-rate", "p99-latency-ms", "judge"),
                                      series=("stable", "canary") if version == "v2" else ("stable",))
        model = found["model"]
        assert model["metrics"]["series"]["canary"]["error_rate"], model["metrics"]["series"].keys()
        assert model["ledger"]["valid"], model["ledger"]
        assert outcome in model["summary"]["outcome"], model["summary"]
        if version == "v2":  # the advanced phase's chaos drills and sentinels, each with its verdict
            assert set(d["kind"] for d in model["drills"]) == {"chaos", "sentinel"}, model["drills"]
            assert [d["passed"] for d in model["drills"] if d["kind"] == "sentinel"][-1] is True, model["drills"]
        if version == "v3":
            rollback = model["rollbacks"][0]
            assert rollback["fast_abort_ms"] is not None and rollback["fast_abort_ms"] <= 100, rollback


def _canary_plan(site):
    with open(os.path.join(site.inventory, "group_vars", "all", "phases.yml"), encoding="utf-8") as fh:
        return yaml.safe_load(fh)["rollout_canary"]


BAD_PLANS = {  # case: (what changes in the canary plan or the version, what the error must name)
    "unknown flag": (lambda p: {"flags": dict(p["flags"], CODEX_TELEPORT_ENABLED=True)}, "CODEX_TELEPORT_ENABLED"),
    "flag before its phase": (lambda p: {"flags": dict(p["flags"], GRAPH_API_ENABLED=True)}, "GRAPH_API_ENABLED"),
    "weights not ascending": (lambda p: {"steps": [p["steps"][1], p["steps"][0]] + p["steps"][2:]},
                              "rollout_canary.steps"),
    "gate without threshold": (lambda p: {"gates": [{"name": "canary error rate", "query": "vector(0)"}]},
                               "rollout_canary.gates"),
    "malformed retention": (lambda p: {"retention": {"max_age": "72 hours", "max_msgs": -1, "max_bytes": -1}},
                            "max_age"),
    "unknown plan key": (lambda p: {"stpes": p["steps"]}, "stpes"),
    "never staged": (lambda p: {"rollout_version": "v9"}, "fingerprint"),
}


@pytest.mark.parametrize("case", sorted(BAD_PLANS))
def test_bad_plan_refused_before_any_change(site, case):
    """Each bad canary plan (or a version staging never froze) fails the canary playbook naming the field, before
    anything changed on any host."""
    hosts = sorted(site.ssh.hosts)

    def state():
        return (len(site.ledger()), site.weights(), site.versions(),
                [(site.env(h, "stable"), site.env(h, "canary"), site.program_state(h, "canary")) for h in hosts])
    before = state()
    change, needle = BAD_PLANS[case]
    plan = _canary_plan(site)
    change = dict(change(plan))
    version = change.pop("rollout_version", "v2")
    rc, out = site.play("canary", version, timeout=300,
                        extra={"rollout_rerun": True, "rollout_canary": dict(plan, **change)})
    assert rc != 0, out[-3000:]
    assert needle in out, out[-3000:]
    assert "rolled back" not in out, "a bad plan must be refused before anything runs: " + out[-3000:]
    assert state() == before


def test_production_of_a_release_its_canary_rolled_back_is_refused(site):
    """Phase order: v3's last canary entry is its rollback, so production of v3 is refused before any change,
    also with rollout_rerun."""
    hosts = sorted(site.ssh.hosts)

    def state():
        return (len(site.ledger()), site.weights(), site.versions(), [site.env(h, "stable") for h in hosts])
    before = state()
    rc, out = site.play("production", "v3", timeout=300, extra={"rollout_rerun": True})
    assert rc != 0, out[-3000:]
    assert "production of v3 needs its canary promotion first: the last canary entry of v3 on the ledger is " \
           "rollback" in out, out[-3000:]
    assert state() == before


def test_a_second_rollout_is_refused_while_another_holds_the_lock(site):
    """One rollout per target: a lock held by another run (another controller) refuses the phase before any
    change, naming the holder; every phase before gave its own lock back."""
    hosts = sorted(site.ssh.hosts)
    path = os.path.join(os.path.dirname(site.haproxy.socket_path), "stagegate-%s.lock" % SERVICE)
    assert not os.path.exists(path), "a phase that ended kept its lock"
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({"token": "another-run", "acquired_at": time.time(), "expires_at": time.time() + 3600,
                   "holder": {"release": "v9", "phase": "canary", "controller": "ctl2", "user": "ops"}}, fh)

    def state():
        return (len(site.ledger()), site.weights(), site.versions(), [site.env(h, "canary") for h in hosts])
    before = state()
    try:
        rc, out = site.play("canary", "v2", timeout=300, extra={"rollout_rerun": True})
    finally:
        with open(path, encoding="utf-8") as fh:
            still = json.load(fh)
        os.unlink(path)
    assert rc != 0, out[-3000:]
    assert "is held by canary of v9 from ctl2 (user ops)" in out, out[-3000:]
    assert state() == before
    assert still["token"] == "another-run"


@pytest.mark.parametrize("approve", [False, "yes"], ids=["no terminal", "not the version typed"])
def test_a_phase_nobody_approved_changes_nothing(site, approve):
    """Approval fails closed: with no terminal (cron, CI, AWX without an approval node) or without the version
    typed at the prompt, the phase stops before any change."""
    hosts = sorted(site.ssh.hosts)

    def state():
        return (len(site.ledger()), site.weights(), site.versions(), [site.env(h, "canary") for h in hosts])
    before = state()
    rc, out = site.play("canary", "v2", timeout=300, extra={"rollout_rerun": True}, approve=approve)
    assert rc != 0, out[-3000:]
    assert "canary of v2 was not approved" in out, out[-3000:]
    assert "rolled back" not in out, out[-3000:]
    assert state() == before


def test_site_runs_the_phases_in_order_and_a_settled_release_changes_nothing(site):
    """stagegate.rollout.site imports the four phases in order; v2, promoted in every phase, is settled in each:
    rc 0 and nothing changes (no ledger entry, weights, versions and flags as they were)."""
    hosts = sorted(site.ssh.hosts)

    def state():
        return (len(site.ledger()), site.weights(), site.versions(), [site.env(h, "stable") for h in hosts])
    before = state()
    rc, out = site.play("site", "v2", timeout=600)
    assert_ok(rc, out)
    for phase in ("staging", "canary", "production", "advanced"):
        assert "%s of v2 is settled" % phase in out, out[-4000:]
    assert state() == before
    assert verify_ledger(site.ledger_path)["valid"]


def test_monitor_sentinels_and_drift(site):
    """stagegate.rollout.monitor: the sentinels answer on the stable slot of every host, the CUSUM state is kept,
    nothing is switched off."""
    rc, out = site.play("monitor", "v2", timeout=300)
    assert_ok(rc, out)
    assert "6/6 returned results" in out, out[-3000:]  # 2 sentinels x 3 hosts
    assert os.path.exists(os.path.join(site.state_dir, "drift-stable-error-ratio.json"))
    assert all(site.env(h, "stable")["CODEX_PUBLISH_ENABLED"] == "true" for h in site.ssh.hosts)


def test_status_reads_the_ledger(site):
    rc, out = site.play("status", "v2", timeout=300)
    assert_ok(rc, out)
    assert re.search(r"""["']ledger_valid["']: [Tt]rue""", out), out[-3000:]


def _published(site):
    with open(os.path.join(site.publish_dir, "published.jsonl"), encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def test_no_event_lost_and_the_consumer_drained(site):
    """Every event the load generator stored was processed by a healthy version (v3's were replayed after the
    rollback) and JetStream has nothing pending or unacknowledged for the stable slots' consumer."""
    from demo.run_demo import account_events
    report = site.stop_load()
    assert report["events"]["published"] > 100 and report["requests"] > 1000, report
    info = {"workdir": site.workdir, "nats": {"durable": NATS_DURABLE},
            "publish_file": os.path.join(site.publish_dir, "published.jsonl")}
    ev = account_events(info, {"v3"}, timeout=60, say=lambda *a: None)
    sys.stderr.write("events: %s\n" % json.dumps(ev, sort_keys=True))
    assert ev["published"] == report["events"]["published"] and ev["unknown"] == 0, (ev, report["events"])
    assert ev["lost"] == 0 and ev["processed_once"] + ev["duplicates"] == ev["published"], ev
    assert ev["handled_by_bad_version"] > 0, ev  # v3 took events in the canary; they were replayed
    state = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = consumer_info(site.nats.url, NATS_DURABLE)
        if state.num_pending == 0 and state.num_ack_pending == 0:
            break
        time.sleep(0.5)
    assert state.num_pending == 0 and state.num_ack_pending == 0, state
    # HAProxy's frontend answered (almost) every request from a slot while the traffic moved between them
    unanswered = (report["by_version"].get("none") or {}).get("requests", 0)
    sys.stderr.write("requests: %d, unanswered by a slot: %d\n" % (report["requests"], unanswered))
    assert unanswered <= 0.01 * report["requests"], report["by_version"]


def test_every_event_processed_exactly_once(site):
    """No event recorded twice by a healthy version. The canary rollback replays the shared durable from the
    rollout start (rollout_phase/tasks/rollback.yml), so an event that app1's stable v2 processed during the
    canary is redelivered, possibly to app2's or app3's stable v2: the service's publish log (one sink shared by
    every instance, as a real publishing target is) records an event of a version once, whichever instance
    gets it (demo/service.py, PublishLog.record checks and appends under one lock)."""
    site.stop_load()
    good = collections.defaultdict(list)
    for r in _published(site):
        if r.get("durable") == NATS_DURABLE and r["version"] != "v3":
            good[r["event_id"]].append(r)
    twice = dict((e, rs) for e, rs in good.items() if len(rs) > 1)
    assert good, "no event was processed at all"
    assert not twice, dict(list(twice.items())[:5])


def test_empty_sentinels_pull_the_kill_switch_and_it_goes_back_on_on_every_host(site):
    """After the event accounting (publishing off stops the services' output): monitor finds no sentinel returning
    results (a path that answers 404 on every host) and pulls the kill switch - the flag off in every slot of every
    host, the empty tally and the kill switch on the ledger; the killswitch playbook switches it back on."""
    hosts = sorted(site.ssh.hosts)
    n = len(site.ledger())
    rc, out = site.play("monitor", "v2", timeout=300, extra={"rollout_sentinels": [
        {"name": "unknown repository", "path": "/api/docs/gitguard/none", "results": "policy_refs"}]})
    assert_ok(rc, out)
    assert "0/3 returned results" in out and "unknown repository on app1: HTTP 404" in out, out[-3000:]
    assert [site.env(h, "stable")["CODEX_PUBLISH_ENABLED"] for h in hosts] == ["false"] * 3
    assert [site.env(h, "canary")["CODEX_PUBLISH_ENABLED"] for h in hosts] == ["false"] * 3
    new = [e for e in site.ledger()[n:] if e["event"] != "drift_alarm"]
    assert [(e["event"], e["decision"]) for e in new] == [("sentinel", "fail"), ("killswitch", "CODEX_PUBLISH_ENABLED=false")], new
    assert new[0]["evidence"]["returned"] == 0 and new[0]["evidence"]["total"] == 3, new[0]
    assert "sentinels returned no results" in new[1]["reason"], new[1]
    rc, out = site.play("killswitch", "v2", extra={"reason": "back on", "killswitch_value": True}, timeout=300)
    assert_ok(rc, out)
    assert [site.env(h, "stable")["CODEX_PUBLISH_ENABLED"] for h in hosts] == ["true"] * 3


def test_nothing_left_behind(site):
    """Teardown stops every supervisord (and its services), every sshd with its sessions, HAProxy, Prometheus and
    NATS: no process mentions the work directory and no port of the hosts is open any more."""
    pids = dict((h, int(open(os.path.join(site.base_dir(h), "supervisor", "supervisord.pid")).read())) for h in
                site.ssh.hosts)
    assert all(alive(p) for p in pids.values())
    services = [site.program_pid(h, "stable") for h in sorted(site.ssh.hosts)]
    assert all(services) and all(alive(p) for p in services), services
    left = site.close()
    assert left == [], left
    assert not [p for p in list(pids.values()) + services if alive(p)]
    assert not [(a, p) for a in site.ssh.hosts.values() for p in list(PORTS.values()) + [22] if accepts(a, p)]
    assert processes_mentioning(site.workdir) == []
