# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
import pytest

from ansible_collections.stagegate.rollout.plugins.module_utils.chaos import (
    UNREACHABLE_URL, ChaosError, drill_result, error_ratio, plan, share_weight)

HOSTS = ["app1", "app2", "app3"]


def test_defaults_are_filled_in():
    p = plan({"drills": [{"name": "kill", "kind": "kill_slot"},
                         {"name": "freeze", "kind": "freeze_consumer", "host": "app1", "seconds": 3},
                         {"name": "metrics", "kind": "metrics_unreachable"}]}, HOSTS, has_nats=True)
    assert p["min_success"] == 0.95
    assert p["drills"][0] == {"name": "kill", "kind": "kill_slot", "recovery_seconds": 30, "host": "app3",
                              "slot": "stable", "max_error_ratio": 0.01}
    assert p["drills"][1] == {"name": "freeze", "kind": "freeze_consumer", "recovery_seconds": 30, "host": "app1",
                              "slot": "stable", "seconds": 3, "max_pending": 0}
    assert p["drills"][2] == {"name": "metrics", "kind": "metrics_unreachable", "recovery_seconds": 30,
                              "url": UNREACHABLE_URL}
    assert plan(None, HOSTS) == {"min_success": 0.95, "drills": []}
    assert plan({}, []) == {"min_success": 0.95, "drills": []}


@pytest.mark.parametrize("chaos, has_nats, expected", [
    ("drills", False, "rollout_advanced.chaos: 'drills' is not accepted"),
    ({"drill": []}, False, "unknown key(s) drill (accepted: drills, min_success)"),
    ({"min_success": 1.5}, False, "rollout_advanced.chaos.min_success: 1.5 is not accepted (accepted: a number from 0 to 1)"),
    ({"min_success": True}, False, "min_success: True is not accepted"),
    ({"drills": {"name": "x"}}, False, "rollout_advanced.chaos.drills: {'name': 'x'} is not a list of drills"),
    ({"drills": [{"name": "x", "kind": "reboot"}]}, False,
     "rollout_advanced.chaos.drills[0].kind: 'reboot' is not accepted (accepted: kill_slot, freeze_consumer, "
     "metrics_unreachable)"),
    ({"drills": [{"name": "x", "kind": "kill_slot", "host": "db1"}]}, False,
     "drills[0].host: 'db1' is not an app host of the target (app hosts: app1, app2, app3)"),
    ({"drills": [{"name": "x", "kind": "kill_slot", "slot": "blue"}]}, False,
     "drills[0].slot: 'blue' is not accepted (accepted: stable, canary)"),
    ({"drills": [{"name": "x", "kind": "kill_slot", "seconds": 3}]}, False,
     "drills[0]: unknown key(s) seconds for kind kill_slot"),
    ({"drills": [{"name": "x", "kind": "freeze_consumer"}]}, False,
     "drills[0]: kind freeze_consumer needs the target's nats"),
    ({"drills": [{"name": "x", "kind": "freeze_consumer", "seconds": 2.5}]}, True,
     "drills[0].seconds: 2.5 is not accepted (accepted: a whole number from 1 to 600)"),
    ({"drills": [{"name": "x", "kind": "metrics_unreachable", "url": "127.0.0.1:1"}]}, False,
     "drills[0].url: '127.0.0.1:1' is not accepted"),
    ({"drills": [{"name": "x", "kind": "metrics_unreachable"}, {"name": "x", "kind": "metrics_unreachable"}]}, False,
     "drills[1].name: 'x' is not accepted (accepted: a name of its own, not empty)"),
    ({"drills": [{"kind": "metrics_unreachable"}]}, False, "drills[0].name: None is not accepted"),
    ({"drills": [{"name": "x", "kind": "kill_slot", "share": 10}]}, False,
     "drills[0].share: 10 is not accepted with slot stable (accepted: share only with slot canary, a whole number of "
     "percent from 0 to 50"),
    ({"drills": [{"name": "x", "kind": "kill_slot", "slot": "canary", "share": 60}]}, False,
     "drills[0].share: 60 is not accepted (accepted: a whole number from 0 to 50)"),
    ({"drills": [{"name": "x", "kind": "kill_slot", "slot": "canary", "share": "ten"}]}, False,
     "drills[0].share: 'ten' is not accepted"),
    ({"drills": [{"name": "x", "kind": "metrics_unreachable", "share": 10}]}, False,
     "drills[0]: unknown key(s) share for kind metrics_unreachable"),
])
def test_bad_plans_name_the_field_the_value_and_what_is_accepted(chaos, has_nats, expected):
    with pytest.raises(ChaosError) as exc:
        plan(chaos, HOSTS, has_nats=has_nats)
    assert expected in str(exc.value)


def test_a_drill_on_a_host_needs_app_hosts():
    with pytest.raises(ChaosError, match="no app hosts"):
        plan({"drills": [{"name": "x", "kind": "kill_slot"}]}, [])


def _view(sessions, errors):
    return {"counters": {"sessions": sessions, "responses_5xx": errors}}


def test_error_ratio_over_every_server_between_two_reads():
    before = {"a_stable": _view(100, 1), "b_stable": _view(50, 0)}
    after = {"a_stable": _view(150, 2), "b_stable": _view(100, 2)}
    assert error_ratio(before, after) == (3 / 100.0, 100, 3)
    # HAProxy restarted in between (a counter went down): counted from zero
    assert error_ratio({"a_stable": _view(1000, 9)}, {"a_stable": _view(40, 1)}) == (1 / 40.0, 40, 1)
    # nothing measured: no counters, or no request in between
    assert error_ratio({"a": {"counters": {"sessions": None, "responses_5xx": 0}}}, {"a": _view(5, 0)})[0] is None
    assert error_ratio({"a": _view(5, 0)}, {"a": _view(5, 0)}) == (None, 0, 0)
    assert error_ratio({}, {"a": _view(5, 0)})[0] is None


KILL = {"name": "kill", "kind": "kill_slot", "host": "app3", "slot": "stable", "recovery_seconds": 30,
        "max_error_ratio": 0.01}
FREEZE = {"name": "freeze", "kind": "freeze_consumer", "host": "app3", "slot": "stable", "recovery_seconds": 30,
          "seconds": 3, "max_pending": 0}
UNREACHABLE = {"name": "metrics", "kind": "metrics_unreachable", "recovery_seconds": 30, "url": UNREACHABLE_URL}
KILLED = {"recovered": True, "seconds": 4.2, "program": "svc-stable", "pid_killed": 10, "pid_after": 11}


def _running(state="running"):
    return {"app3_stable": dict(_view(1100, 5), op_state=state)}


def test_a_kill_that_recovered_with_few_client_errors_passes():
    r = drill_result(KILL, kill=KILLED, server="app3_stable", lb_before={"app3_stable": _view(100, 0)},
                     lb_after=_running())
    assert r["passed"] and r["clients"] == {"ratio": 5 / 1000.0, "requests": 1000, "errors_5xx": 5}, r
    assert "running again as pid 11 after 4.2 s, HAProxy sees it running" in r["detail"], r
    assert (r["host"], r["slot"], r["seconds"]) == ("app3", "stable", 4.2)


@pytest.mark.parametrize("change, words", [
    ({"kill": dict(KILLED, recovered=False)}, "NOT running again healthy"),
    ({"kill": dict(KILLED, seconds=31)}, "after 31 s"),
    ({"kill": {}}, "SIGKILLed (pid ?)"),
    ({"lb_after": _running("stopped")}, "HAProxy does NOT see it running"),
    ({"lb_before": {"app3_stable": _view(100, 0)},
      "lb_after": {"app3_stable": dict(_view(200, 50), op_state="running")}},
     "50 of 100 answers 5xx (at most 1.0 %)"),
])
def test_a_kill_fails_on_any_measure_it_misses(change, words):
    measured = dict({"kill": KILLED, "server": "app3_stable", "lb_before": {"app3_stable": _view(100, 0)},
                     "lb_after": _running()}, **change)
    r = drill_result(KILL, **measured)
    assert not r["passed"] and words in r["detail"], r


def test_a_freeze_passes_only_once_the_consumer_drained():
    ok = drill_result(FREEZE, kill=KILLED, consumer={"num_pending": 0, "num_ack_pending": 0, "num_redelivered": 7},
                      durable="svc")
    assert ok["passed"] and "answering again; JetStream consumer svc drained" in ok["detail"], ok
    assert "redelivered 7" in ok["detail"] and ok["clients"] == {}
    for consumer in ({"num_pending": 3, "num_ack_pending": 0}, {"num_pending": 0, "num_ack_pending": 1}, {}):
        r = drill_result(FREEZE, kill=KILLED, consumer=consumer, durable="svc")
        assert not r["passed"] and "NOT drained within 30 s" in r["detail"], r
    assert not drill_result(FREEZE, kill={}, consumer={"num_pending": 0, "num_ack_pending": 0})["passed"]


@pytest.mark.parametrize("verdict, passed", [("fail", True), ("inconclusive", True), (None, True), ("pass", False)])
def test_metrics_unreachable_passes_when_the_gate_failed_closed(verdict, passed):
    r = drill_result(UNREACHABLE, gate_verdict=verdict)
    assert r["passed"] is passed, r
    assert ("failed closed" in r["detail"]) is passed and ("PASSED although nothing answered" in r["detail"]) is not passed


def test_a_drill_on_the_canary_slot_borrows_it_with_a_share():
    p = plan({"drills": [{"name": "kill", "kind": "kill_slot", "slot": "canary"},
                         {"name": "freeze", "kind": "freeze_consumer", "slot": "canary"},
                         {"name": "kill 25", "kind": "kill_slot", "slot": "canary", "share": 25}]},
             ["localhost"], has_nats=True)
    assert [(d["host"], d["share"]) for d in p["drills"]] == [("localhost", 10), ("localhost", 0), ("localhost", 25)]
    # a stable slot is drilled as it runs: no share
    assert "share" not in plan({"drills": [{"name": "k", "kind": "kill_slot"}]}, HOSTS)["drills"][0]


@pytest.mark.parametrize("stable, share, weight", [
    (100, 10, 11), (100, 50, 100), (256, 50, 256), (100, 1, 1), (10, 1, 1), (100, 0, 0), (0, 10, 0),
    (None, 10, 0), ("100", "25", 33)])
def test_the_share_is_a_weight_beside_the_stable_weight(stable, share, weight):
    assert share_weight(stable, share) == weight


CANARY_KILL = dict(KILL, slot="canary", share=10)
BORROWED = {"running_before": False, "started": True, "start_error": "", "weight_before": 0, "stable_weight": 100,
            "weight": 11, "weight_after": 0, "stopped": True, "stop_error": ""}


def _canary_kill(**borrow):
    return drill_result(CANARY_KILL, kill=KILLED, server="app3_canary", lb_before={"app3_canary": _view(10, 0)},
                        lb_after={"app3_canary": dict(_view(110, 0), op_state="running")},
                        borrow=dict(BORROWED, **borrow))


def test_a_borrowed_canary_slot_that_was_put_back_passes():
    r = _canary_kill()
    assert r["passed"] and r["share"] == 10 and r["borrow"]["weight"] == 11, r
    assert ("the canary slot started with the phase's release and flags for the drill; weight 11 beside the stable "
            "weight 100 (10 % of the host's traffic); put back to weight 0 and stopped") in r["detail"], r
    assert _canary_kill(running_before=True, started=False, stopped=False)["passed"]


def test_consecutive_drills_on_a_slot_share_one_start_and_one_stop():
    # the first keeps the slot up for the next (weight back, not stopped), which took it over and stops it
    first = _canary_kill(stopped=False, kept_for="freeze a consumer")
    assert first["passed"], first
    assert ("started with the phase's release and flags for the drill; weight 11 beside the stable weight 100 (10 % of "
            "the host's traffic); put back to weight 0 and kept up for the next drill, freeze a consumer") in \
        first["detail"], first
    second = _canary_kill(from_drill="kill the canary")
    assert second["passed"] and "the canary slot up since the drill kill the canary for the drill" in \
        second["detail"] and second["detail"].endswith("put back to weight 0 and stopped"), second
    # taken over, then neither kept nor stopped: fails like any slot left running
    assert not _canary_kill(from_drill="kill the canary", stopped=False, stop_error="gone")["passed"]
    # a slot that was running before the drills is never said to be kept
    assert "kept up" not in _canary_kill(running_before=True, started=False, kept_for="x")["detail"]


@pytest.mark.parametrize("borrow, words", [
    ({"started": False}, "the canary slot was NOT started for the drill (no start recorded)"),
    ({"start_error": "localhost: deploy failed"}, "NOT started for the drill (localhost: deploy failed)"),
    ({"weight": 0}, "NO weight beside the stable weight 100 (10 % asked)"),
    ({"weight": None}, "NO weight beside the stable weight 100"),
    ({"weight_after": 11}, "NOT put back: weight 11 (was 0)"),
    ({"weight_after": None}, "NOT put back: weight ? (was 0)"),
    ({"stopped": False, "stop_error": "supervisorctl stop failed"}, "NOT stopped (supervisorctl stop failed)"),
])
def test_a_borrowed_slot_that_was_not_there_or_not_put_back_fails_the_drill(borrow, words):
    r = _canary_kill(**borrow)
    assert not r["passed"] and words in r["detail"], r


def test_a_drill_task_that_failed_fails_the_drill():
    r = drill_result(UNREACHABLE, gate_verdict="error", error="Phase | chaos, x: boom")
    assert not r["passed"] and r["error"] == "Phase | chaos, x: boom" and "the drill stopped: Phase | chaos, x: boom" \
        in r["detail"], r
