# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fast abort against a real HAProxy: canary_judge and metric_gate write the canary's weight 0 themselves.

Each playbook holds one task, the judging module with ``on_fail`` (ansible-playbook, local connection, the
collection from .collections), so a weight 0 seen afterwards was written by that module, in its own process,
the moment it decided ``fail``. How fast (verdict -> weight 0) is measured in bench/haproxy_rollback.py.
"""

import time

import pytest

from demo.stack.ports import free_port
from tests.integration.haproxy.haproxy_kit import run_module

pytestmark = pytest.mark.slow

CANARY_10 = {"s1": 45, "s2": 45, "c1": 10}
ABORT = {"s1": 50, "s2": 50, "c1": 0}
# direct counts: the canary's error rate is 40 times the baseline's - fail at the first look
BAD = {"baseline": {"requests": 20000, "errors": 10}, "canary": {"requests": 20000, "errors": 400}}
GOOD = {"baseline": {"requests": 1000, "errors": 10}, "canary": {"requests": 1000, "errors": 10}}


def on_fail(lb, **kw):
    return dict({"socket": lb.socket_path, "backend": "app", "weights": ABORT}, **kw)


def test_judge_fail_writes_weight_zero_before_the_task_returns(lb, tmp_path):
    lb.set_weights(CANARY_10)
    t0 = time.time()
    res, dummy = run_module(str(tmp_path / "a"), dict(BAD, on_fail=on_fail(lb)), module="stagegate.rollout.canary_judge")
    assert res["verdict"] == "fail", res
    abort = res["on_fail"]
    assert abort["applied"] and abort["changed"] and abort["error"] is None, abort
    assert abort["after"] == ABORT and lb.weights() == ABORT
    assert t0 <= abort["decided_at"] <= abort["applied_at"] <= time.time()
    assert abort["ms_after_verdict"] >= 0 and res["changed"]


def test_judge_without_a_fail_leaves_the_traffic_alone(lb, tmp_path):
    lb.set_weights(CANARY_10)
    res, dummy = run_module(str(tmp_path / "a"), dict(GOOD, on_fail=on_fail(lb)), module="stagegate.rollout.canary_judge")
    assert res["verdict"] in ("continue", "pass") and "on_fail" not in res
    assert lb.weights() == CANARY_10


def test_judge_in_check_mode_writes_nothing(lb, tmp_path):
    lb.set_weights(CANARY_10)
    res, dummy = run_module(str(tmp_path / "a"), dict(BAD, on_fail=on_fail(lb)), check=True,
                            module="stagegate.rollout.canary_judge")
    assert res["verdict"] == "fail" and res["on_fail"]["check_mode"] and not res["on_fail"]["applied"]
    assert lb.weights() == CANARY_10


def test_bad_on_fail_refused_before_the_first_look(lb, tmp_path):
    lb.set_weights(CANARY_10)
    res, dummy = run_module(str(tmp_path / "a"), dict(BAD, on_fail=on_fail(lb, weights={"s1": 50, "c1": 999})),
                            module="stagegate.rollout.canary_judge")
    assert res["failed"] and res["msg"].startswith("on_fail: ") and "999" in res["msg"], res
    assert "verdict" not in res and lb.weights() == CANARY_10


def test_unknown_server_is_reported_and_nothing_changes(lb, tmp_path):
    # a server the backend does not have: HAProxy's state is read first, so nothing is sent
    lb.set_weights(CANARY_10)
    res, dummy = run_module(str(tmp_path / "a"), dict(BAD, on_fail=on_fail(lb, weights={"s1": 50, "c9": 0})),
                            module="stagegate.rollout.canary_judge")
    assert res["verdict"] == "fail" and not res["on_fail"]["applied"]
    assert "c9" in res["on_fail"]["error"] and lb.weights() == CANARY_10


def test_gate_that_fails_closed_writes_weight_zero(lb, tmp_path):
    # the metrics source is unreachable: the check fails (closed), and the gate aborts the canary itself
    lb.set_weights(CANARY_10)
    args = {"provider": {"type": "prometheus", "url": "http://127.0.0.1:%d" % free_port(), "retries": 0},
            "checks": [{"name": "canary error rate", "query": "sum(rate(errors[1m]))", "lt": 0.01}],
            "timeout": 5, "on_fail": on_fail(lb)}
    res, dummy = run_module(str(tmp_path / "a"), args, module="stagegate.rollout.metric_gate")
    assert res["failed"] and res["verdict"] == "fail", res
    assert res["on_fail"]["applied"] and lb.weights() == ABORT
    assert "fast abort: weights c1=0, s1=50, s2=50 written" in res["msg"]
