"""End to end: the demo command rolls v2 through all four phases and v3 back, with nothing lost.

Runs ``demo/run_demo.py --shortened`` exactly as ``make demo`` does (shorter analysis
windows): the stack installs v1 with ``stagegate.rollout.install``, the phases run by FQCN
against the stack's copy of ``inventories/demo``, the slots under supervisord. It checks what
the issue asks of it from the run's own data. It takes about 16 minutes on a shared 2-core
machine (mostly Ansible's own task overhead).
"""
import json
import os
import re
import subprocess
import sys

import pytest

from demo.testkit import ROOT, processes_mentioning

PHASES = ["staging", "canary", "production", "advanced"]


@pytest.mark.slow
def test_demo_promotes_good_release_and_rolls_back_bad_one(tmp_path):
    wd = str(tmp_path / "run")
    res = subprocess.run([sys.executable, "demo/run_demo.py", "--shortened", "--workdir", wd],
                         cwd=ROOT, capture_output=True, text=True, check=False, timeout=2700)
    out = res.stdout + res.stderr
    # on failure: the run's outcome lines first (phases, chaos drills, events, why), then the tail
    summary = [line for line in res.stdout.splitlines()
               if re.search(r"PROMOTED|ROLLED BACK|CHAOS|events:|FAILED|demo failed", line)]
    assert res.returncode == 0, "\n".join(summary) + "\n...\n" + out[-4000:]
    assert "report: " in res.stdout
    run = json.load(open(os.path.join(wd, "run.json")))

    rel = {r["version"]: r for r in run["releases"]}
    assert rel["v2"]["outcome"] == "promoted"
    assert [p["phase"] for p in rel["v2"]["phases"] if p["result"] == "promoted"] == PHASES
    assert rel["v3"]["outcome"] == "rolled_back"
    v3_phases = {p["phase"]: p["result"] for p in rel["v3"]["phases"]}
    assert v3_phases.get("staging") == "promoted" and v3_phases.get("canary") == "rolled_back"

    # the slots ran what the phases put there (versions from the slots' /healthz)
    seen = {(s["slot"], s["version"]) for s in run["samples"]}
    assert {("stable", "v1"), ("canary", "v2"), ("stable", "v2"), ("canary", "v3")} <= seen, sorted(seen)

    # canary traffic back to 0 % as the rollback's first step (HAProxy's weights, polled every 100 ms), before
    # the rest of the rollback is recorded; the weight change itself is a single runtime-API session. The time
    # from the judge's verdict (its ledger entry) is the few playbook tasks in between (the failing assert, the
    # rescue's include, the traffic change): 1.7 s on this 2-core machine, 5.6 s at a load average of 8.
    assert len(run["rollbacks"]) == 1, run["rollbacks"]
    rb = run["rollbacks"][0]
    assert (rb["release"], rb["phase"], rb["decision"], rb["left"]) == ("v3", "canary", "rolled_back", [])
    back = [w["t"] for w in run["weights"] if w["t"] >= rb["verdict_at"] - 0.2 and w["canary"] == 0]
    assert back and back[0] < rb["finished_at"] and back[0] - rb["verdict_at"] <= 15.0, (rb, back[:3])
    assert rb["traffic_elapsed_ms"] is not None and float(rb["traffic_elapsed_ms"]) < 1000, rb
    # the JetStream consumer was replayed from the rollout start, and v3's events reprocessed by v2
    assert rb["replay"]["from_time"] and rb["replay"]["events_replayed"] > 0, rb
    assert rb["replay"]["reprocessed_by_stable"] > 0, rb

    # every stored event processed exactly once by a healthy version (v3's replayed to stable)
    ev = run["events"]
    assert ev["published"] > 50
    assert ev["lost"] == 0 and ev["duplicates"] == 0 and ev["processed_once"] == ev["published"], ev
    assert ev["handled_by_bad_version"] > 0  # v3 did take events, and they were replayed

    # retention followed the phase plans of the inventory
    assert [r["phase"] for r in run["retention"]] == PHASES + ["staging"], run["retention"]
    assert all(r["matches"] for r in run["retention"]), run["retention"]
    # v2's advanced phase ran the sentinels (every one returned results) before its chaos drills
    sentinels = [d for d in run["decisions"] if (d["release"], d["phase"], d["action"]) == ("v2", "advanced", "sentinel")]
    assert [d["detail"] for d in sentinels] == ["pass: 3 of 3 sentinels returned results (all needed)"], sentinels
    # v2's advanced phase ran the chaos drills the demo inventory declares (the collection's, not the demo's own):
    # a `chaos` ledger entry each, with its measures, then the score and its promotion gate (at least 95 %)
    chaos = {c["drill"]: c for c in run["chaos"]}
    assert [(c["release"], c["phase"], c["drill"], c["kind"]) for c in run["chaos"]] == [
        ("v2", "advanced", "kill the canary", "kill_slot"), ("v2", "advanced", "freeze a consumer", "freeze_consumer"),
        ("v2", "advanced", "metrics unreachable", "metrics_unreachable")], run["chaos"]
    assert all(c["success"] for c in run["chaos"]), run["chaos"]
    kill = chaos["kill the canary"]
    # the canary slot was borrowed: started, 10 % of the traffic, killed, back, put back (weight 0) and kept up for
    # the next drill on it, which stopped it
    assert kill["share"] == 10 and kill["recovery_s"] is not None and float(kill["recovery_s"]) <= 30, kill
    assert kill["clients"]["requests"] > 0 and kill["clients"]["ratio"] <= 0.02, kill
    assert "running again as pid" in kill["detail"] and \
        "put back to weight 0 and kept up for the next drill, freeze a consumer" in kill["detail"], kill
    assert "up since the drill kill the canary" in chaos["freeze a consumer"]["detail"] and \
        "put back to weight 0 and stopped" in chaos["freeze a consumer"]["detail"], chaos["freeze a consumer"]
    assert "JetStream consumer" in chaos["freeze a consumer"]["detail"] and "drained" in \
        chaos["freeze a consumer"]["detail"], chaos["freeze a consumer"]
    assert "failed closed" in chaos["metrics unreachable"]["detail"], chaos["metrics unreachable"]
    score = run["chaos_score"]
    assert (score["release"], score["phase"], score["decision"]) == ("v2", "advanced", "pass"), score
    assert (score["score"], score["passed"], score["total"], score["min_success"]) == (1.0, 3, 3, 0.95), score
    # after the drills the canary slot is stopped again and takes no traffic (HAProxy's weights, as polled)
    v2_advanced = [w for w in run["weights"] if w.get("release") == "v2" and w.get("phase") == "advanced"]
    assert v2_advanced and v2_advanced[-1]["canary"] == 0, v2_advanced[-3:]
    # the playbooks wrote the ledger, and it verifies
    assert run["driver"] == "ansible"
    assert run["ledger"]["verified"] is True, run["ledger"]

    # the report is there, with its plots
    html = open(os.path.join(wd, "report", "report.html"), encoding="utf-8").read()
    assert html.count("data:image/png;base64,") >= 3
    # nothing left running
    assert processes_mentioning(wd) == []
