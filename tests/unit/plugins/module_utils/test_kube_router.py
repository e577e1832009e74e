# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The router patches of module_utils/kube_router.py (the fast abort on kind kubernetes); the requests themselves
are tested against the Kubernetes emulator (tests/integration/kubernetes/test_phases_kubernetes.py)."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.stagegate.rollout.plugins.module_utils import kube_router as kr


def route(*rules):
    return {"metadata": {"name": "codex"}, "spec": {"rules": [{"backendRefs": refs} for refs in rules]}}


def test_the_rule_with_both_backends_is_patched_after_testing_their_names():
    r = route([{"name": "other"}], [{"name": "codex-canary", "weight": 25}, {"name": "codex-stable", "weight": 75}])
    patch, before = kr.route_patch(r, "codex-stable", "codex-canary", 0)
    assert before == 25
    assert patch == [{"op": "test", "path": "/spec/rules/1/backendRefs/1/name", "value": "codex-stable"},
                     {"op": "test", "path": "/spec/rules/1/backendRefs/0/name", "value": "codex-canary"},
                     {"op": "add", "path": "/spec/rules/1/backendRefs/1/weight", "value": 100},
                     {"op": "add", "path": "/spec/rules/1/backendRefs/0/weight", "value": 0}]


def test_omitted_weights_are_one_each():
    assert kr.route_patch(route([{"name": "s"}, {"name": "c"}]), "s", "c", 0)[1] == 50


def test_a_route_without_both_backends_is_refused():
    with pytest.raises(kr.RouterError, match="HTTPRoute codex has no rule whose backendRefs name both s and c"):
        kr.route_patch(route([{"name": "s"}], [{"name": "c"}]), "s", "c", 0)


def test_the_canary_ingress_weight_annotation():
    annotations = {"nginx.ingress.kubernetes.io/canary": "true", kr.WEIGHT_ANNOTATION: "40"}
    ing = {"metadata": {"name": "codex-canary", "annotations": annotations}}
    patch, before = kr.ingress_patch(ing, 0)
    assert before == 40
    assert patch == [{"op": "add", "path": "/metadata/annotations/nginx.ingress.kubernetes.io~1canary-weight", "value": "0"}]
    with pytest.raises(kr.RouterError, match="not an ingress-nginx canary Ingress"):
        kr.ingress_patch({"metadata": {"name": "codex", "annotations": {}}}, 0)
