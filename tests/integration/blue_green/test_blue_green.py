# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Blue-green as a per-phase choice (``strategy: blue-green``) of the INSTALLED collection on two real SSH app hosts.

What is real: tests/integration/hosts/site_kit.py (the installed collection, a user's own inventory, two sshd on
127.0.0.31-32 as app hosts app1 and app2, NATS, HAProxy, Prometheus, load). The canary and production phases of
this inventory declare ``strategy: blue-green``; its canary publishes build-only (so v3, bad once it publishes
externally, passes it and fails in production).

v2 goes staging -> canary (one flip of the whole backend to the canary slots, gated) -> production (the stable slots
take the traffic while the canary slots are prepared, one flip to them, the gates on them while they take it all,
then the stable slots get v2 and the traffic flips back). v3's production fails its gates while the canary slots
take all the traffic: the traffic flips back at once and the stable slots, still v2, were never restarted. A bad
strategy plan is refused before any change. HAProxy's weights are watched every 10 ms: the backend is only ever
all on the stable slots or all on the canary slots (a mixed reading, taken while one runtime-API session changes
the weights, is whole again at the next reading, within a second).
"""
import os
import sys

import pytest

from tests.integration.hosts.site_kit import (
    WeightWatch, assert_ok, entries, expected_weights, open_site, verify_ledger)

pytestmark = pytest.mark.slow

ADDRESSES = ("127.0.0.31", "127.0.0.32")
HOSTS = ["app1", "app2"]
ANALYSIS = 6
BUILD_ONLY = {"CODEX_PUBLISH_ENABLED": True, "CODEX_PUBLISH_PORTAL": "build-only", "CODEX_REPO_INCLUDE_LIST": []}
BLUE_GREEN = {
    "rollout_canary": {"strategy": "blue-green", "analysis_seconds": ANALYSIS, "steps": None, "flags": BUILD_ONLY},
    "rollout_production": {"strategy": "blue-green", "batches": None},
}
ALL_STABLE = expected_weights(HOSTS, dict.fromkeys(HOSTS, 0))
ALL_CANARY = expected_weights(HOSTS, dict.fromkeys(HOSTS, 100))


@pytest.fixture(scope="module")
def site(installed_collection, tmp_path_factory):
    s = open_site(tmp_path_factory.mktemp("blue_green"), installed_collection, addresses=ADDRESSES,
                  analysis=ANALYSIS, phases=BLUE_GREEN)
    yield s
    left = s.close()
    sys.stderr.write("timings: %s\n" % s.timings)
    assert not left, left


def watched(site, name, version, **kwargs):
    """Run the phase with HAProxy's weights read every 10 ms -> (rc, out, [(time, weights)] at each change)."""
    watch = WeightWatch(site, period=0.01)
    try:
        rc, out = site.play(name, version, **kwargs)
    finally:
        watch.close()
    return rc, out, watch.changes


def assert_whole_backend_flips(changes):
    """Every reading is all-stable or all-canary, but for mixed readings taken while one runtime-API session was
    changing the weights (the next reading is whole again within a second; a batch would hold one for its
    analysis_seconds): no host ever moved on its own."""
    for i, (ts, weights) in enumerate(changes):
        if weights in (ALL_STABLE, ALL_CANARY):
            continue
        nxt = changes[i + 1][0] if i + 1 < len(changes) else None
        assert nxt is not None and nxt - ts < 1.0, "a mixed backend held %s s: %s" % (
            None if nxt is None else round(nxt - ts, 3), changes)


def state(site):
    return (len(site.ledger()), site.weights(), site.versions(),
            [(site.env(h, "stable"), site.env(h, "canary"), site.program_state(h, "canary")) for h in HOSTS])


def test_install_v1_on_two_hosts(site):
    rc, out = site.play("install", "v1")
    assert_ok(rc, out)
    assert site.weights() == ALL_STABLE
    assert site.versions() == dict((h, {"stable": "v1", "canary": None}) for h in HOSTS)
    site.start_load()


def test_good_release_v2_flips_the_whole_backend(site):
    rc, out = site.play("staging", "v2")
    assert_ok(rc, out)

    rc, out, changes = watched(site, "canary", "v2")
    assert_ok(rc, out)
    assert site.weights() == ALL_CANARY
    assert site.versions() == dict((h, {"stable": "v1", "canary": "v2"}) for h in HOSTS)
    assert ALL_CANARY in [w for dummy_ts, w in changes], changes
    assert_whole_backend_flips(changes)
    start = entries(site, "v2", "canary", "phase_start")[-1]
    assert start["evidence"]["strategy"] == "blue-green", start
    assert [s["weight"] for s in start["evidence"]["steps"]] == [100], start
    assert not entries(site, "v2", "canary", "judge"), "no judge: no stable traffic to compare with"
    gates = entries(site, "v2", "canary", "gate")
    assert [(g["step"], g["decision"]) for g in gates] == [("1", "pass")], gates

    rc, out, changes = watched(site, "production", "v2")
    assert_ok(rc, out)
    assert "blue-green: the whole backend flips to the canary slots" in out, out[-3000:]
    assert site.weights() == ALL_STABLE
    assert site.versions() == dict((h, {"stable": "v2", "canary": None}) for h in HOSTS)
    for h in HOSTS:
        assert site.program_state(h, "canary") in ("STOPPED", "EXITED"), h
        assert site.env(h, "stable")["CODEX_PUBLISH_PORTAL"] == "external", h
    # stable (v1) while the canary slots got production's flags, then all on the canary slots, then all back
    seen = [w for dummy_ts, w in changes if w in (ALL_STABLE, ALL_CANARY)]
    assert seen[:3] == [ALL_CANARY, ALL_STABLE, ALL_CANARY] and seen[-1] == ALL_STABLE, changes
    assert_whole_backend_flips(changes)
    start = entries(site, "v2", "production", "phase_start")[-1]
    assert start["evidence"]["strategy"] == "blue-green" and start["evidence"]["batches"] == [HOSTS], start
    gates = entries(site, "v2", "production", "gate")
    assert [(g["step"], g["decision"]) for g in gates] == [("blue-green", "pass")], gates
    # the gates looked at the canary slots, running v2 and taking all the traffic
    for r in gates[0]["evidence"]["results"]:
        assert 'slot="canary"' in r["query"] and 'version="v2"' in r["query"] and r["observed"] is not None, r
    assert [e["phase"] for e in entries(site, "v2", event="promote")] == ["staging", "canary", "production"]


def test_bad_release_v3_flips_back_at_once_with_nothing_restarted(site):
    for phase in ("staging", "canary"):  # v3 is bad once it publishes externally: these publish build-only
        rc, out = site.play(phase, "v3")
        assert_ok(rc, out)
    stable_pids = dict((h, site.program_pid(h, "stable")) for h in HOSTS)
    stable_flags = dict((h, site.env(h, "stable")) for h in HOSTS)
    assert all(stable_pids.values()), stable_pids

    rc, out, changes = watched(site, "production", "v3")
    assert rc != 0 and "rolled back" in out, out[-4000:]
    assert site.weights() == ALL_STABLE
    assert site.versions() == dict((h, {"stable": "v2", "canary": None}) for h in HOSTS)
    for h in HOSTS:
        # the stable slots (blue) kept running through it all: the same processes, the same flags
        assert site.program_pid(h, "stable") == stable_pids[h], h
        assert site.env(h, "stable") == stable_flags[h], h
        assert site.env(h, "canary") == stable_flags[h], h
        assert site.program_state(h, "canary") in ("STOPPED", "EXITED"), h
    assert ALL_CANARY in [w for dummy_ts, w in changes], changes
    assert_whole_backend_flips(changes)
    v3 = entries(site, "v3", "production")
    gate = next(e for e in v3 if e["event"] == "gate")
    assert gate["step"] == "blue-green" and gate["decision"] == "rollback", gate
    assert gate["evidence"]["fast_abort"]["applied"], gate  # the gate itself flipped the traffic back
    rollback = next(e for e in v3 if e["event"] == "rollback")
    assert rollback["evidence"]["left"] == [] and rollback["evidence"]["weights_after"] == ALL_STABLE, rollback
    # no stable slot was touched, so none had a version to keep for the rollback
    assert not [f for f in os.listdir(site.state_dir) if f.startswith("v3-production-previous-")]
    assert verify_ledger(site.ledger_path)["valid"]


def test_a_bad_strategy_is_refused_before_any_change(site):
    """One bad plan through the installed role (every case of the check: tests/unit/.../test_phase_plan.py)."""
    before = state(site)
    rc, out = site.play("canary", "v4", timeout=300, extra={"rollout_rerun": True, "rollout_canary": {
        "strategy": "blue-green", "steps": [{"weight": 50, "analysis_seconds": 5}]}})
    assert rc != 0 and "rollout_canary.steps: blue-green flips the whole backend at once" in out, out[-3000:]
    assert state(site) == before
