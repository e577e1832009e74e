# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The canary_judge action: rounds of looks with the state carried, a progress line per round, a verdict line."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

from unittest import mock

from ansible_collections.stagegate.rollout.plugins.action import canary_judge as action


def round_result(verdict, looks, canary_errors, elapsed, state, on_fail=None):
    res = {"verdict": verdict, "reason": "why %s" % verdict, "looks": looks, "history": [{"verdict": verdict}] * looks,
           "state": state, "changed": False,
           "result": {"looks": state["n"], "elapsed_seconds": elapsed,
                      "errors": {"canary_requests": 100 * state["n"], "canary_events": canary_errors,
                                 "baseline_requests": 900 * state["n"], "baseline_events": 9,
                                 "e_fail": 3.25, "fail_threshold": 100.0, "e_pass": 0.5, "pass_threshold": 20.0},
                      "latency": [{"quantile": 0.99, "e_fail": 1.0, "fail_threshold": 300.0, "e_pass": 2.0,
                                   "pass_threshold": 20.0}]}}
    if on_fail:
        res["on_fail"] = on_fail
    return res


def run(args, results, startup=0.0):
    """Run the action on ``results`` (one per round); ``startup``: seconds each round costs on a fake clock."""
    task = mock.MagicMock()
    task.args = args
    task.async_val = 0
    act = action.ActionModule(task, mock.MagicMock(), mock.MagicMock(), loader=None, templar=None,
                              shared_loader_obj=None)
    calls, clock = [], [100.0]

    def execute(module_name, module_args, task_vars):
        calls.append(dict(module_args))
        clock[0] += startup
        return results.pop(0)

    with mock.patch.object(act, "_execute_module", side_effect=execute), \
            mock.patch.object(action.display, "display") as shown, \
            mock.patch.object(action.time, "monotonic", side_effect=lambda: clock[0]):
        out = act.run(task_vars={})
    return out, calls, [c.args[0] for c in shown.call_args_list]


def test_rounds_carry_the_state_and_print_a_line_each():
    fast = {"applied": True, "weights": {"c1": 0, "s1": 100}, "ms_after_verdict": 2.5}
    out, calls, lines = run(
        {"queries": {}, "interval": 2, "timeout": 64, "max_seconds": 60, "progress": 10, "reset": True},
        [round_result("continue", 5, 1, 8.0, {"n": 5}),
         round_result("continue", 5, 2, 18.0, {"n": 10}),
         round_result("fail", 2, 40, 21.0, {"n": 12}, on_fail=fast)])
    assert len(calls) == 3
    assert calls[0]["reset"] is True and "state" not in calls[0]
    assert calls[1]["state"] == {"n": 5} and calls[1]["reset"] is False
    assert calls[2]["state"] == {"n": 10}
    # a round holds as many looks as fit in the progress period, and never prints the module's own progress
    assert all(c["looks"] >= 1 and c["progress"] == 0 for c in calls)
    assert calls[0]["looks"] == 1 and calls[1]["looks"] == 4   # one look first; then (10 - 3 - overhead) // 2 + 1
    assert lines[0].startswith("canary judge: look 5, 8 s of 60 s | canary 500 req 1 err | stable 4500 req 9 err")
    assert "errors e_fail 3.25/100 e_pass 0.5/20" in lines[0] and "p99 e_fail 1/300" in lines[0]
    assert "s left" in lines[0] and lines[0].endswith("continue")
    assert lines[2].startswith("canary judge: verdict FAIL after 12 looks, 21 s: why fail")
    assert "fast abort: weights c1=0, s1=100 written 2.5 ms after the verdict" in lines[2]
    assert out["looks"] == 12 and out["verdict"] == "fail" and out["progress"] == lines
    assert len(out["history"]) == 12


def test_a_failed_round_is_returned_as_it_is():
    out, calls, lines = run({"queries": {}, "interval": 2, "timeout": 30},
                            [round_result("continue", 5, 1, 8.0, {"n": 5}),
                             {"failed": True, "msg": "queries.canary: unreachable", "looks": 0}])
    assert out["failed"] and out["msg"] == "queries.canary: unreachable"
    assert len(calls) == 2 and len(lines) == 2 and out["progress"] == lines
    assert lines[1] == "canary judge: FAILED after 5 looks: queries.canary: unreachable"


def test_without_interval_one_call_and_no_line():
    out, calls, lines = run({"baseline": {"requests": 1}, "canary": {"requests": 1}},
                            [round_result("continue", 1, 0, 0.0, {"n": 1})])
    assert len(calls) == 1 and lines == [] and "looks" not in calls[0]


def test_no_round_starts_without_time_to_read_the_metrics():
    # every round costs 2.5 s of start-up on a busy machine: the time left is shared out so that no round gets less
    # than a second (a look without time to read would fail closed), and the analysis ends as 'continue'
    results = [round_result("continue", 1, 0, 0.0, {"n": 1}), round_result("continue", 1, 0, 2.5, {"n": 2}),
               round_result("continue", 1, 0, 5.0, {"n": 3}), round_result("continue", 1, 0, 7.5, {"n": 4})]
    out, calls, dummy = run({"queries": {}, "interval": 2, "timeout": 6, "progress": 10}, results, startup=2.5)
    assert [c["timeout"] for c in calls] == [6, 3.5, 1.0]
    assert out["verdict"] == "continue" and out["looks"] == 3 and out["progress"][-1].startswith(
        "canary judge: verdict CONTINUE")


def test_the_progress_line_gives_each_analysis_verdict_and_error_evidence():
    res = round_result("continue", 5, 1, 8.0, {"n": 5})
    res["result"]["analyses"] = {"events": {"verdict": "pass", "errors": {
        "e_fail": 0.5, "fail_threshold": 200.0, "e_pass": 31.0, "pass_threshold": 20.0}}}
    line = action.progress_line(res, 60, 40)
    assert "| events pass: errors e_fail 0.5/200 e_pass 31/20 |" in line, line
    assert "events" not in action.progress_line(round_result("continue", 5, 1, 8.0, {"n": 5}), 60, 40)
