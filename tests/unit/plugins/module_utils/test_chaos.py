# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
import pytest

from ansible_collections.stagegate.rollout.plugins.module_utils.chaos import (
    UNREACHABLE_URL, ChaosError, drill_result, error_ratio, plan)

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
