"""End to end: the demo command rolls v2 through all four phases and v3 back, with nothing lost.

Runs ``demo/run_demo.py --shortened`` exactly as ``make demo`` does (shorter analysis
windows) and checks what the issue asks of it from the run's own data.
"""
import json
import os
import subprocess
import sys

import pytest

from demo.testkit import ROOT

PHASES = ["staging", "canary", "production", "advanced"]


def _processes_mentioning(text):
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if text in cmd and "pytest" not in cmd:
            found.append((int(pid), cmd))
    return found


@pytest.mark.slow
def test_demo_promotes_good_release_and_rolls_back_bad_one(tmp_path):
    wd = str(tmp_path / "run")
    res = subprocess.run([sys.executable, "demo/run_demo.py", "--shortened", "--workdir", wd],
                         cwd=ROOT, capture_output=True, text=True, check=False, timeout=600)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-6000:]
    assert "report: " in res.stdout
    run = json.load(open(os.path.join(wd, "run.json")))

    rel = {r["version"]: r for r in run["releases"]}
    assert rel["v2"]["outcome"] == "promoted"
    assert [p["phase"] for p in rel["v2"]["phases"] if p["result"] == "promoted"] == PHASES
    assert rel["v3"]["outcome"] == "rolled_back"
    v3_phases = {p["phase"]: p["result"] for p in rel["v3"]["phases"]}
    assert v3_phases.get("staging") == "promoted" and v3_phases.get("canary") == "rolled_back"

    # canary traffic back to 0% within a second of the verdict (HAProxy's weights, polled every 100 ms)
    assert run["rollbacks"], "no rollback recorded"
    rb = run["rollbacks"][-1]
    back = [w["t"] for w in run["weights"] if w["t"] >= rb["verdict_at"] - 0.2 and w["canary"] == 0]
    assert back and back[0] - rb["verdict_at"] <= 1.0, (rb, back[:3])
    assert rb["replay"]["events_replayed"] > 0

    # every stored event processed exactly once by a healthy version (v3's replayed to stable)
    ev = run["events"]
    assert ev["published"] > 50
    assert ev["lost"] == 0 and ev["duplicates"] == 0 and ev["processed_once"] == ev["published"], ev
    assert ev["handled_by_bad_version"] > 0  # v3 did take events, and they were replayed

    # retention followed the inventories
    assert run["retention"] and all(r["matches"] for r in run["retention"]), run["retention"]
    # the playbooks wrote the ledger, and it verifies
    assert run["driver"] == "ansible"
    assert run["ledger"]["verified"] is True, run["ledger"]

    # the report is there, with its plots
    html = open(os.path.join(wd, "report", "report.html"), encoding="utf-8").read()
    assert html.count("data:image/png;base64,") >= 3
    # nothing left running
    assert _processes_mentioning(wd) == []
