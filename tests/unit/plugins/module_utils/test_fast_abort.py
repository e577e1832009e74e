# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fast abort (module_utils/fast_abort.py): checked before anything, written at once, never raises."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.stagegate.rollout.plugins.module_utils import fast_abort as fa
from tests.unit.plugins.module_utils.test_haproxy_runtime import FakeHAProxy


def spec(**kw):
    out = {"socket": "/run/haproxy/admin.sock", "backend": "app", "weights": {"s1": 100, "c1": 0}, "timeout": 2.0}
    out.update(kw)
    return out


def test_a_good_spec_passes_and_none_is_nothing():
    assert fa.check_on_fail(spec()) is None
    assert fa.check_on_fail(None) is None


def test_bad_specs_name_the_field_and_value():
    assert "on_fail.timeout: 0" in fa.check_on_fail(spec(timeout=0))
    msg = fa.check_on_fail(spec(weights={"c1": 999}))
    assert msg.startswith("on_fail: ") and "c1" in msg and "999" in msg
    msg = fa.check_on_fail(spec(backend="bad name"))
    assert msg.startswith("on_fail: ") and "bad name" in msg


def test_weights_written_in_one_change_and_timed():
    lb = FakeHAProxy({"s1": [50, 0, 2], "c1": [50, 0, 2]})
    decided = time.time()
    out = fa.abort_traffic(spec(), decided, client=lb)
    assert out["applied"] and out["changed"] and out["error"] is None
    assert lb.servers["c1"][0] == 0 and lb.servers["s1"][0] == 100
    assert out["after"] == {"s1": 100, "c1": 0}
    assert out["decided_at"] == decided <= out["applied_at"] and 0 <= out["ms_after_verdict"] < 1000
    assert sum(1 for line in lb.lines if "set server" in line) == 1   # one apply session
    assert "c1=0, s1=100 written" in fa.describe(out)


def test_already_at_zero_is_applied_without_change():
    lb = FakeHAProxy({"s1": [100, 0, 2], "c1": [0, 0, 2]})
    out = fa.abort_traffic(spec(), time.time(), client=lb)
    assert out["applied"] and not out["changed"]
    assert not any("set server" in line for line in lb.lines)


def test_an_unreachable_socket_is_reported_not_raised():
    lb = FakeHAProxy({"s1": [50, 0, 2], "c1": [50, 0, 2]})
    lb.fail_connect = True
    out = fa.abort_traffic(spec(), time.time(), client=lb)
    assert not out["applied"] and "HAProxy weights not written" in out["error"]
    assert fa.describe(out) == out["error"]
    assert lb.servers["c1"][0] == 50


def test_check_mode_sends_nothing():
    lb = FakeHAProxy({"s1": [50, 0, 2], "c1": [50, 0, 2]})
    out = fa.abort_traffic(spec(), time.time(), check_mode=True, client=lb)
    assert out["check_mode"] and not out["applied"] and lb.sessions == 0
    assert "check mode" in fa.describe(out)


KUBE = {"router": "gateway-api", "namespace": "codex", "name": "codex", "stable": "codex-stable", "canary": "codex-canary"}


def test_kubernetes_or_haproxy_not_both_nor_half(tmp_path):
    # the connection is made ahead (no request): a host, or a kubeconfig that must be readable
    assert fa.check_on_fail({"kubernetes": dict(KUBE, host="https://127.0.0.1:9"), "timeout": 2.0}) is None
    msg = fa.check_on_fail({"kubernetes": dict(KUBE, kubeconfig=str(tmp_path / "missing")), "timeout": 2.0})
    assert msg.startswith("on_fail.kubernetes: cannot connect to the cluster"), msg
    msg = fa.check_on_fail(dict(spec(), kubernetes=dict(KUBE)))
    assert msg.startswith("on_fail: kubernetes and socket, backend, weights are given"), msg
    msg = fa.check_on_fail({"socket": "/run/haproxy/admin.sock", "timeout": 2.0})
    assert msg.startswith("on_fail: backend, weights missing"), msg


def test_a_router_that_cannot_be_reached_is_reported_not_raised():
    kube = dict(KUBE, host="https://127.0.0.1:9", api_key="t0ken", validate_certs=False)
    decided = time.time()
    out = fa.abort_traffic({"kubernetes": kube, "timeout": 0.5}, decided)
    assert not out["applied"] and out["error"].startswith("router weight not written: HTTPRoute codex/codex:"), out
    assert "t0ken" not in out["error"]
    assert out["weights"] == {"codex-stable": 100, "codex-canary": 0} and out["backend"] == "codex/codex"
    assert out["ms_after_verdict"] >= 0
