# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fast abort: the traffic change a judging module makes itself, the moment it decides ``fail``.

``canary_judge`` and ``metric_gate`` take an ``on_fail`` option (``ON_FAIL_OPTIONS``): HAProxy's runtime
socket, the backend and the weights that give the canary no traffic; or (kind kubernetes) ``kubernetes``, the
router object whose canary weight goes to 0 (``kube_router``: one JSON patch of the HTTPRoute or the canary
Ingress, a few milliseconds). When a look or an evaluation decides
``fail``, the module writes those weights in the same process (one read and one apply session of
``haproxy_runtime.change_traffic``, about 2 ms) before it returns, so the canary stops taking traffic
without waiting for Ansible to fail the task, enter the rescue and include the rollback. The rollback
still writes the same weights (an idempotent no-op by then) and does everything else.

A failed write never fails the judging task (the verdict is what matters, and the rollback retries the
weights): it is reported in the result with the error, for the ledger.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.stagegate.rollout.plugins.module_utils.haproxy_runtime import (
    HAProxyError, change_traffic, validate_request)
from ansible_collections.stagegate.rollout.plugins.module_utils.kube_router import (
    KUBERNETES_OPTIONS, RouterError, prepare, set_canary_weight)

ON_FAIL_OPTIONS = dict(
    socket=dict(type="str"),
    backend=dict(type="str"),
    weights=dict(type="dict"),
    kubernetes=dict(type="dict", options=KUBERNETES_OPTIONS),
    timeout=dict(type="float", default=2.0),
)


def check_on_fail(spec):
    """Checks of an ``on_fail`` option before anything is read or written; returns an error text or None. For a
    cluster's router the connection is made here too (the client imported, the kubeconfig read; no request), so
    the abort itself is two requests."""
    if not spec:
        return None
    if spec["timeout"] is None or spec["timeout"] <= 0:
        return "on_fail.timeout: %r is not accepted; give a number of seconds above 0" % spec["timeout"]
    haproxy = [k for k in ("socket", "backend", "weights") if spec.get(k) not in (None, "", {})]
    if spec.get("kubernetes"):
        if haproxy:
            return ("on_fail: kubernetes and %s are given (accepted: socket, backend and weights for HAProxy, or "
                    "kubernetes for a cluster's router)" % ", ".join(haproxy))
        try:
            prepare(spec["kubernetes"])
        except RouterError as exc:
            return "on_fail.kubernetes: %s" % exc
        return None
    missing = [k for k in ("socket", "backend", "weights") if k not in haproxy]
    if missing:
        return ("on_fail: %s missing (accepted: socket, backend and weights for HAProxy, or kubernetes for a "
                "cluster's router)" % ", ".join(missing))
    try:
        validate_request(spec["backend"], weights=spec["weights"])
    except HAProxyError as exc:
        return "on_fail: %s" % exc.msg
    return None


def abort_traffic(spec, decided_at, check_mode=False, client=None):
    """Write ``spec['weights']`` now; ``decided_at`` is the ``time.time()`` of the fail verdict.

    Returns {applied, changed, weights, after, ms_after_verdict, decided_at, applied_at, error}; never raises.
    In check mode nothing is written (applied false, check_mode true).
    """
    kube = spec.get("kubernetes")
    if kube:
        out = {"weights": {kube["stable"]: 100, kube["canary"]: 0}, "backend": "%s/%s" % (kube["namespace"], kube["name"]),
               "decided_at": decided_at, "applied": False, "changed": False, "error": None}
    else:
        out = {"weights": dict(spec["weights"]), "backend": spec["backend"], "decided_at": decided_at,
               "applied": False, "changed": False, "error": None}
    if check_mode:
        out["check_mode"] = True
        return out
    if kube:
        try:
            res = set_canary_weight(kube, 0, timeout=spec["timeout"])
        except RouterError as exc:
            out["error"] = "router weight not written: %s" % exc
        else:
            out.update(applied=True, changed=res["changed"], after=dict(out["weights"]))
        out["applied_at"] = time.time()
        out["ms_after_verdict"] = round((out["applied_at"] - decided_at) * 1000.0, 1)
        return out
    try:
        res = change_traffic(spec["socket"], spec["backend"], weights=spec["weights"], timeout=spec["timeout"],
                             client=client)
    except HAProxyError as exc:
        out["error"] = "HAProxy weights not written: %s" % exc.msg
    else:
        out.update(applied=True, changed=res["changed"],
                   after={name: view.get("weight") for name, view in res["after"].items()})
    out["applied_at"] = time.time()
    out["ms_after_verdict"] = round((out["applied_at"] - decided_at) * 1000.0, 1)
    return out


def describe(result):
    """One line for messages: what the fast abort did."""
    if not result:
        return ""
    if result.get("check_mode"):
        return "check mode: canary weights not written"
    if result["applied"]:
        return "weights %s written %.1f ms after the verdict" % (
            ", ".join("%s=%s" % kv for kv in sorted(result["weights"].items())), result["ms_after_verdict"])
    return result["error"]
