# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deploy_kubernetes role run by ansible-playbook against the kmock Kubernetes emulator.

No cluster runs here. What these tests show: the role's kubernetes.core.helm calls (the real
Helm 3 binary) install, upgrade and uninstall the releases, its kubernetes.core.k8s /
k8s_json_patch / k8s_info calls create, patch and read the objects, in the right order, with
the right bodies -- asserted on the requests the emulator recorded and on every stored version
of the objects.

What they cannot show (see kube_emulator.py): that a Gateway API or ingress-nginx controller
splits requests by the weights, that a Service routes to the selected pods, that pods start
and pass their probes. Readiness is what the emulator's stand-in Deployment controller
reports: the tests decide whether and when a Deployment becomes ready; the role is shown to
wait for it and to refuse to move traffic when it never comes.
"""

import kubernetes_validate
import pytest

from kube_kit import helm_env

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

GW = "gateway.networking.k8s.io"
ROUTE = {"deploy_kubernetes_app": "web", "deploy_kubernetes_strategy": "canary",
         "deploy_kubernetes_traffic": "gateway-api",
         "deploy_kubernetes_route_parent_refs": [{"name": "public", "namespace": "gateway-system"}]}
FLAGS_V1 = {"CODEX_PUBLISH_ENABLED": True, "GRAPH_API_ENABLED": False}
FLAGS_V2 = {"CODEX_PUBLISH_ENABLED": True, "GRAPH_API_ENABLED": True, "CODEX_REPO_INCLUDE_LIST": ["acme/api", "acme/web"]}
BLUE_GREEN = {"deploy_kubernetes_app": "shop", "deploy_kubernetes_strategy": "blue_green"}


def step(base, action, **more):
    out = dict(base, deploy_kubernetes_action=action)
    out.update({"deploy_kubernetes_" + k: v for k, v in more.items()})
    return out


def weights(route):
    refs = route["spec"]["rules"][0]["backendRefs"]
    named = {ref["name"]: ref.get("weight", 1) for ref in refs}
    return named["web-stable"], named["web-canary"]


def changes(values):
    """Consecutive duplicates dropped: the sequence of distinct states an object went through."""
    out = []
    for value in values:
        if not out or out[-1] != value:
            out.append(value)
    return out


def writes(requests, plural=None, name=None, method=None):
    return [r for r in requests
            if r["method"] in ("POST", "PATCH", "PUT", "DELETE")
            and (plural is None or r["plural"] == plural)
            and (name is None or r["name"] == name or (isinstance(r["data"], dict) and r["data"].get("metadata", {}).get("name") == name))
            and (method is None or r["method"] == method)]


def assert_created_objects_validate(requests):
    """Every object the role or Helm created is schema-valid for Kubernetes 1.33 (strict)."""
    checked = 0
    for r in writes(requests, method="POST"):
        obj = r["data"]
        if obj.get("kind") in ("HTTPRoute", "Secret"):  # CRD without schema here / Helm's release record
            continue
        kubernetes_validate.validate(obj, "1.33", strict=True)
        checked += 1
    assert checked


def test_emulator_canary_weights(run_role, emulator):
    """stable 1.0.0 -> canary 2.0.0 at 10 % -> 50 % -> the same 50 % again -> rollback: the HTTPRoute goes
    100/0, 90/10, 50/50, 100/0; the canary release is created beside stable and removed by the rollback."""
    emulator.set_ready("web-canary", delay=2.0)  # the wait has to poll before the canary reports ready
    run = run_role([
        step(ROUTE, "stable", version="1.0.0", flags=FLAGS_V1),
        step(ROUTE, "canary", version="2.0.0", flags=FLAGS_V2, canary_weight=10),
        step(ROUTE, "canary", version="2.0.0", flags=FLAGS_V2, canary_weight=50),
        step(ROUTE, "canary", version="2.0.0", flags=FLAGS_V2, canary_weight=50),
        step(ROUTE, "rollback"),
    ])
    assert run.rc == 0, run
    stable, canary10, canary50, again, rollback = run.results
    assert stable["after"] == {"stable": 100, "canary": 0}
    assert canary10["before"] == {"stable": 100, "canary": 0} and canary10["after"] == {"stable": 90, "canary": 10}
    assert canary10["changed"] is True
    assert canary50["before"] == {"stable": 90, "canary": 10} and canary50["after"] == {"stable": 50, "canary": 50}
    assert again["changed"] is False, "a second identical canary step must change nothing"
    assert rollback["after"] == {"stable": 100, "canary": 0} and rollback["canary_removed"] is True

    route_history = [v for v in emulator.history("httproutes", "web", group=GW) if v is not None]
    assert changes([weights(v) for v in route_history]) == [(100, 0), (90, 10), (50, 50), (100, 0)]
    route = emulator.get("httproutes", "web", group=GW)
    assert route["spec"]["parentRefs"] == [{"name": "public", "namespace": "gateway-system"}]
    assert route["spec"]["rules"][0]["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]

    requests = emulator.requests()
    # weights move in single JSON patches that first test the backend names, then set both weights (integers)
    patches = writes(requests, "httproutes", "web", "PATCH")
    assert [r["content_type"] for r in patches] == ["application/json-patch+json"] * 4
    ops = patches[0]["data"]
    assert [op["op"] for op in ops] == ["test", "test", "add", "add"]
    assert ops[0] == {"op": "test", "path": "/spec/rules/0/backendRefs/0/name", "value": "web-stable"}
    assert ops[1] == {"op": "test", "path": "/spec/rules/0/backendRefs/1/name", "value": "web-canary"}
    assert ops[2:] == [{"op": "add", "path": "/spec/rules/0/backendRefs/0/weight", "value": 90},
                       {"op": "add", "path": "/spec/rules/0/backendRefs/1/weight", "value": 10}]
    # traffic moved only after the canary Deployment reported ready, and the role polled before that
    ready_at = emulator.call(lambda e: e.ready_marks["web-canary"])
    assert patches[0]["id"] > ready_at
    polls = [r for r in requests if r["method"] == "GET" and r["plural"] == "deployments" and r["name"] == "web-canary"]
    assert polls[0]["id"] < ready_at < polls[-1]["id"]

    # the canary release was created beside stable, with its flags, and removed by the rollback
    created = writes(requests, "deployments", "web-canary", "POST")
    assert len(created) == 1
    labels = created[0]["data"]["spec"]["template"]["metadata"]["labels"]
    assert labels["stagegate.io/track"] == "canary" and labels["app.kubernetes.io/version"] == "2.0.0"
    flags = emulator.history("configmaps", "web-canary-flags")[0]["data"]
    assert flags == {"CODEX_PUBLISH_ENABLED": "true", "GRAPH_API_ENABLED": "true", "CODEX_REPO_INCLUDE_LIST": "acme/api,acme/web"}
    assert emulator.get("deployments", "web-canary", group="apps") is None
    assert writes(requests, "deployments", "web-canary", "DELETE")
    deployments = emulator.objects("deployments", group="apps")
    assert sorted(name for _namespace, name in deployments) == ["web-stable"]
    assert deployments[("default", "web-stable")]["metadata"]["labels"]["app.kubernetes.io/version"] == "1.0.0"
    # rollback: weight 0 first, the uninstall after it
    last_patch = patches[-1]["id"]
    assert all(r["id"] > last_patch for r in writes(requests, "deployments", "web-canary", "DELETE"))
    assert_created_objects_validate(requests)
    assert emulator.call(lambda e: e.refused) == []


def test_emulator_canary_check_mode_changes_nothing(run_role, emulator):
    """--check on a canary step: the emulator answers server-side dry runs and stores nothing."""
    assert run_role([step(ROUTE, "stable", version="1.0.0"),
                     step(ROUTE, "canary", version="2.0.0", canary_weight=10)]).rc == 0
    before = {key: len(emulator.history(*key[:2], group=key[2])) for key in
              [("httproutes", "web", GW), ("deployments", "web-canary", "apps"), ("deployments", "web-stable", "apps")]}
    count = len(emulator.requests())

    run = run_role(step(ROUTE, "canary", version="2.1.0", canary_weight=50), check=True, diff=True)
    assert run.rc == 0, run
    assert run.result["after"] == {"stable": 50, "canary": 50}  # what it would do
    after = {key: len(emulator.history(*key[:2], group=key[2])) for key in before}
    assert after == before
    assert weights(emulator.get("httproutes", "web", group=GW)) == (90, 10)
    new = emulator.requests()[count:]
    assert all(r["params"].get("dryRun") == "All" for r in writes(new))
    assert emulator.call(lambda e: e.dry_runs)


def test_emulator_blue_green_selector_switch_after_green_ready(run_role, emulator):
    """blue 1.0.0 -> green 2.0.0 (switch only after the green Deployment reports ready) -> rollback to blue
    -> a second rollback changes nothing."""
    emulator.set_ready("shop-green", delay=3.0)
    run = run_role([
        step(BLUE_GREEN, "blue_green", version="1.0.0", flags=FLAGS_V1),
        step(BLUE_GREEN, "blue_green", version="2.0.0", flags=FLAGS_V2),
        step(BLUE_GREEN, "rollback"),
        step(BLUE_GREEN, "rollback"),
    ])
    assert run.rc == 0, run
    first, switch, rollback, again = run.results
    assert first["active_color"] == "blue" and first["previous_color"] == ""
    assert switch == {"action": "blue_green", "changed": True, "active_color": "green", "previous_color": "blue", "version": "2.0.0"}
    assert rollback["active_color"] == "blue" and rollback["previous_color"] == "green" and rollback["changed"] is True
    assert again == {}, "nothing recorded to roll back to: the second rollback must not flip again"

    history = [v for v in emulator.history("services", "shop") if v is not None]
    assert changes([v["spec"]["selector"]["stagegate.io/color"] for v in history]) == ["blue", "green", "blue"]
    assert changes([v["metadata"].get("annotations", {}).get("stagegate.io/previous-color") for v in history]) == [None, "blue", None]
    service = emulator.get("services", "shop")
    assert service["spec"]["selector"] == {"app.kubernetes.io/name": "shop", "stagegate.io/color": "blue"}
    assert "stagegate.io/switched-at" in service["metadata"]["annotations"]

    requests = emulator.requests()
    switches = writes(requests, "services", "shop", "PATCH")
    selector_patches = [r for r in switches if "spec" in (r["data"] or {})]
    assert [p["data"]["spec"]["selector"] for p in selector_patches] == [{"stagegate.io/color": "green"}, {"stagegate.io/color": "blue"}]
    ready_at = emulator.call(lambda e: e.ready_marks["shop-green"])
    assert selector_patches[0]["id"] > ready_at, "the Service was switched before green reported ready"
    polls = [r for r in requests if r["method"] == "GET" and r["plural"] == "deployments" and r["name"] == "shop-green"]
    assert polls[0]["id"] < ready_at
    green = emulator.get("deployments", "shop-green", group="apps")
    assert green["spec"]["template"]["metadata"]["labels"]["stagegate.io/color"] == "green"
    assert green["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"] == "2.0.0"
    assert green["status"]["availableReplicas"] == 2
    # both colours keep running (no scale-down asked), so the rollback was instant
    assert emulator.get("deployments", "shop-blue", group="apps")["spec"]["replicas"] == 2
    assert_created_objects_validate(requests)


def test_emulator_blue_green_green_never_ready_keeps_blue(run_role, emulator):
    """A green Deployment that never reports ready: the role fails after its wait and the Service still selects blue."""
    assert run_role(step(BLUE_GREEN, "blue_green", version="1.0.0")).rc == 0
    emulator.set_ready("shop-green", never=True)
    run = run_role(step(BLUE_GREEN, "blue_green", version="2.0.0", wait_timeout=4))
    assert run.rc != 0
    assert "Deployment shop-green in default did not report ready within 4 s" in run.stdout
    assert "traffic was not moved" in run.stdout
    assert emulator.get("services", "shop")["spec"]["selector"]["stagegate.io/color"] == "blue"
    requests = emulator.requests()
    assert not [r for r in writes(requests, "services", "shop", "PATCH") if "spec" in (r["data"] or {})]
    assert emulator.get("deployments", "shop-green", group="apps")["status"]["availableReplicas"] == 0
    # nothing was switched, so a rollback has nothing to undo
    rollback = run_role(step(BLUE_GREEN, "rollback"))
    assert rollback.rc == 0, rollback
    assert "No previous colour is recorded" in rollback.stdout
    assert emulator.get("services", "shop")["spec"]["selector"]["stagegate.io/color"] == "blue"


def test_emulator_blue_green_scaled_down_colour_comes_back_on_rollback(run_role, emulator):
    """With scale-down, the old colour goes to 0 replicas after the switch; a rollback scales it up, waits
    until it is ready again and only then switches back."""
    bg = dict(BLUE_GREEN, deploy_kubernetes_bg_scale_down=True, deploy_kubernetes_bg_scale_down_delay=0)
    run = run_role([step(bg, "blue_green", version="1.0.0"), step(bg, "blue_green", version="2.0.0")])
    assert run.rc == 0, run
    assert emulator.get("deployments", "shop-blue", group="apps")["spec"]["replicas"] == 0
    emulator.set_ready("shop-blue", delay=2.0)
    run = run_role(step(bg, "rollback"))
    assert run.rc == 0, run
    requests = emulator.requests()
    scale_up = [r for r in writes(requests, "deployments", "shop-blue", "PATCH") if r["data"].get("spec", {}).get("replicas") == 2]
    switch_back = [r for r in writes(requests, "services", "shop", "PATCH") if r["data"].get("spec", {}).get("selector") == {"stagegate.io/color": "blue"}]
    assert len(scale_up) == 1 and len(switch_back) == 1
    assert scale_up[0]["id"] < emulator.call(lambda e: e.ready_marks["shop-blue"]) < switch_back[0]["id"]
    assert emulator.get("services", "shop")["spec"]["selector"]["stagegate.io/color"] == "blue"


def test_emulator_ingress_nginx_canary_weight(run_role, emulator):
    """ingress-nginx: the canary Ingress' canary-weight annotation goes 0 -> 20 -> 0; the canary release stays
    when the rollback is asked to keep it."""
    nginx = {"deploy_kubernetes_app": "web", "deploy_kubernetes_traffic": "ingress-nginx",
             "deploy_kubernetes_ingress_host": "web.example.invalid", "deploy_kubernetes_rollback_remove_canary": False}
    run = run_role([step(nginx, "stable", version="1.0.0"),
                    step(nginx, "canary", version="2.0.0", canary_weight=20),
                    step(nginx, "rollback")])
    assert run.rc == 0, run
    assert [r["after"] for r in run.results[1:]] == [{"stable": 80, "canary": 20}, {"stable": 100, "canary": 0}]
    history = [v for v in emulator.history("ingresses", "web-canary", group="networking.k8s.io") if v]
    key = "nginx.ingress.kubernetes.io/canary-weight"
    assert changes([v["metadata"]["annotations"][key] for v in history]) == ["0", "20", "0"]
    assert all(v["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary"] == "true" for v in history)
    main = emulator.get("ingresses", "web", group="networking.k8s.io")
    assert main["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "web-stable"
    assert emulator.get("deployments", "web-canary", group="apps") is not None
    assert emulator.get("httproutes", "web", group=GW) is None


def test_emulator_promote(run_role, emulator, helm, tmp_path):
    """stable 1.0.0 + canary 2.0.0 at 50 % -> promote 2.0.0: stable runs 2.0.0 with the new flags, 100/0, no canary;
    `helm list` (real helm against the emulator) shows the releases the role left."""
    run = run_role([step(ROUTE, "stable", version="1.0.0", flags=FLAGS_V1),
                    step(ROUTE, "canary", version="2.0.0", flags=FLAGS_V2, canary_weight=50),
                    step(ROUTE, "promote", version="2.0.0", flags=FLAGS_V2)])
    assert run.rc == 0, run
    assert run.results[2]["after"] == {"stable": 100, "canary": 0}
    stable = emulator.get("deployments", "web-stable", group="apps")
    assert stable["metadata"]["labels"]["app.kubernetes.io/version"] == "2.0.0"
    assert stable["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":2.0.0")
    assert emulator.get("configmaps", "web-stable-flags")["data"]["GRAPH_API_ENABLED"] == "true"
    assert weights(emulator.get("httproutes", "web", group=GW)) == (100, 0)
    assert emulator.get("deployments", "web-canary", group="apps") is None

    listing = helm("list", "-n", "default", "-o", "json", env=helm_env(tmp_path, emulator.kubeconfig)).stdout
    assert '"name":"web-stable"' in listing and '"name":"web"' in listing and "web-canary" not in listing


def test_emulator_refusals_move_nothing(run_role, emulator):
    """A canary without a stable release, and a canary without Gateway parentRefs, fail with a clear message
    before any write."""
    run = run_role(step(ROUTE, "canary", version="2.0.0"))
    assert run.rc != 0
    assert "There is no Deployment web-stable in default" in run.stdout
    assert writes(emulator.requests()) == []

    no_parents = dict(ROUTE, deploy_kubernetes_route_parent_refs=[])
    run = run_role(step(no_parents, "stable", version="1.0.0"))
    assert run.rc != 0
    assert "deploy_kubernetes_route_parent_refs is empty" in run.stdout
    assert emulator.get("httproutes", "web", group=GW) is None
