# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stagegate-service chart with the real Helm 3 binary: `helm lint`, `helm template`
for the stable, canary, blue/green and router releases, and the rendered manifests
validated with kubernetes-validate (Kubernetes 1.33 schemas, strict: unknown fields are
errors). HTTPRoute is a CRD that kubernetes-validate has no schema for; it is checked
against HTTPROUTE_SCHEMA below, a subset of the Gateway API v1 CRD's constraints written
out by hand (the fields the chart renders), not the upstream CRD itself."""

import copy

import jsonschema
import kubernetes_validate
import pytest
import yaml

from kube_kit import CHART

K8S_VERSION = "1.33"

_NAME = {"type": "string", "minLength": 1, "maxLength": 253}
_GROUP = {"type": "string", "maxLength": 253, "pattern": r"^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"}
_KIND = {"type": "string", "minLength": 1, "maxLength": 63, "pattern": r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$"}
HTTPROUTE_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "gateway.networking.k8s.io/v1"},
        "kind": {"const": "HTTPRoute"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "parentRefs": {
                    "type": "array", "minItems": 1, "maxItems": 32,
                    "items": {
                        "type": "object", "required": ["name"], "additionalProperties": False,
                        "properties": {"name": _NAME, "namespace": {"type": "string", "maxLength": 63},
                                       "group": _GROUP, "kind": _KIND, "sectionName": {"type": "string"},
                                       "port": {"type": "integer", "minimum": 1, "maximum": 65535}},
                    },
                },
                "hostnames": {"type": "array", "maxItems": 16, "items": {"type": "string", "minLength": 1, "maxLength": 253}},
                "rules": {
                    "type": "array", "maxItems": 16,
                    "items": {
                        "type": "object", "additionalProperties": False,
                        "properties": {
                            "matches": {
                                "type": "array", "maxItems": 64,
                                "items": {"type": "object", "properties": {"path": {
                                    "type": "object", "additionalProperties": False,
                                    "properties": {"type": {"enum": ["Exact", "PathPrefix", "RegularExpression"]},
                                                   "value": {"type": "string", "maxLength": 1024, "pattern": "^/"}}}}},
                            },
                            "backendRefs": {
                                "type": "array", "maxItems": 16,
                                "items": {
                                    "type": "object", "required": ["name", "port"], "additionalProperties": False,
                                    "properties": {"group": _GROUP, "kind": _KIND, "name": _NAME,
                                                   "namespace": {"type": "string", "maxLength": 63},
                                                   "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                                                   "weight": {"type": "integer", "minimum": 0, "maximum": 1000000}},
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}

STABLE = {"appName": "web", "track": "stable", "version": "1.4.2", "replicaCount": 3,
          "flags": {"CODEX_PUBLISH_ENABLED": True, "CODEX_PUBLISH_PORTAL": "build-only",
                    "CODEX_REPO_INCLUDE_LIST": ["acme/api", "acme/web"], "GRAPH_API_ENABLED": False,
                    "MAX_BATCH": 1000000}}
CANARY = dict(STABLE, track="canary", version="1.5.0-rc.1",
              flags=dict(STABLE["flags"], GRAPH_API_ENABLED=True))
ROUTER = {"appName": "web", "workload": {"enabled": False},
          "router": {"route": {"enabled": True, "parentRefs": [{"name": "public", "namespace": "gateway-system"}],
                               "hostnames": ["web.example.invalid"], "weights": {"stable": 90, "canary": 10}},
                     "ingress": {"enabled": True, "host": "web.example.invalid", "canaryWeight": 10},
                     "activeService": {"enabled": True, "color": "green"}}}


def validate(manifest):
    """kubernetes-validate (strict) for builtin kinds, the HTTPRoute subset schema otherwise."""
    if manifest["kind"] == "HTTPRoute":
        jsonschema.validate(manifest, HTTPROUTE_SCHEMA)
    else:
        kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def by_kind(manifests):
    out = {}
    for manifest in manifests:
        out.setdefault(manifest["kind"], []).append(manifest)
    return out


def one(manifests, kind, name=None):
    found = [m for m in manifests if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)]
    assert len(found) == 1, "expected one %s %s, found %d" % (kind, name or "", len(found))
    return found[0]


def test_helm_lint_passes_for_every_kind_of_release(helm, tmp_path):
    """`helm lint --strict` (warnings are failures) with the default values and the stable, canary and router values."""
    out = helm("lint", "--strict", CHART).stdout
    assert "1 chart(s) linted, 0 chart(s) failed" in out
    for name, values in (("stable", STABLE), ("canary", CANARY), ("router", ROUTER),
                         ("blue", dict(STABLE, color="blue"))):
        values_file = tmp_path / ("%s.yaml" % name)
        values_file.write_text(yaml.safe_dump(values))
        out = helm("lint", "--strict", CHART, "--values", str(values_file)).stdout
        assert "0 chart(s) failed" in out, out


@pytest.mark.parametrize("values,release", [(STABLE, "web-stable"), (CANARY, "web-canary"),
                                            (dict(STABLE, color="green"), "web-green"), (ROUTER, "web")])
def test_helm_template_manifests_validate(render, values, release):
    manifests = render(values, release)
    assert manifests
    for manifest in manifests:
        validate(manifest)
        assert manifest["metadata"]["namespace"] == "rollout"


def test_workload_release_renders_deployment_configmap_service_pdb(render):
    for values, slot in ((STABLE, "stable"), (CANARY, "canary")):
        manifests = render(values, "web-%s" % slot)
        assert sorted(by_kind(manifests)) == ["ConfigMap", "Deployment", "PodDisruptionBudget", "Service"]
        names = {m["metadata"]["name"] for m in manifests}
        assert names == {"web-%s" % slot, "web-%s-flags" % slot}


def test_flags_end_up_in_the_configmap_the_container_reads(render):
    manifests = render(CANARY, "web-canary")
    config_map = one(manifests, "ConfigMap")
    assert config_map["metadata"]["name"] == "web-canary-flags"
    assert config_map["data"] == {
        "CODEX_PUBLISH_ENABLED": "true",
        "CODEX_PUBLISH_PORTAL": "build-only",
        "CODEX_REPO_INCLUDE_LIST": "acme/api,acme/web",
        "GRAPH_API_ENABLED": "true",
        "MAX_BATCH": "1000000",
    }
    container = one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["envFrom"] == [{"configMapRef": {"name": "web-canary-flags"}}]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["SERVICE_VERSION"] == "1.5.0-rc.1" and env["ROLLOUT_SLOT"] == "canary"
    # stable and canary differ in one flag, so their pod templates carry different checksums (pods roll on a flag change)
    stable_pod = one(render(STABLE, "web-stable"), "Deployment")["spec"]["template"]["metadata"]["annotations"]
    canary_pod = one(manifests, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert stable_pod["checksum/flags"] != canary_pod["checksum/flags"]
    same = render(dict(CANARY, version="9.9.9"), "web-canary")
    assert one(same, "Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/flags"] == canary_pod["checksum/flags"]


def test_no_flags_renders_an_empty_configmap(render):
    config_map = one(render(dict(STABLE, flags={}), "web-stable"), "ConfigMap")
    assert config_map["data"] == {}
    validate(config_map)


def test_version_label_probes_resources_and_pdb(render):
    manifests = render(CANARY, "web-canary")
    deployment = one(manifests, "Deployment")
    pod = deployment["spec"]["template"]
    for labels in (deployment["metadata"]["labels"], pod["metadata"]["labels"]):
        assert labels["app.kubernetes.io/version"] == "1.5.0-rc.1"
        assert labels["stagegate.io/version"] == "1.5.0-rc.1"
        assert labels["stagegate.io/track"] == "canary"
    assert deployment["spec"]["replicas"] == 3
    container = pod["spec"]["containers"][0]
    assert container["image"] == "registry.example.invalid/stagegate/service:1.5.0-rc.1"
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["periodSeconds"] == 5
    assert container["resources"]["requests"] == {"cpu": "100m", "memory": "128Mi"}
    assert container["resources"]["limits"] == {"cpu": "500m", "memory": "256Mi"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    # the selector never contains the version (Deployment selectors are immutable)
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector == {"app.kubernetes.io/name": "web", "app.kubernetes.io/instance": "web-canary"}
    assert selector.items() <= pod["metadata"]["labels"].items()
    pdb = one(manifests, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == selector
    service = one(manifests, "Service")
    assert service["spec"]["selector"] == selector
    assert service["spec"]["ports"][0]["targetPort"] == "http"

    percent = one(render(dict(CANARY, pdb={"enabled": True, "minAvailable": None, "maxUnavailable": "50%"}), "web-canary"),
                  "PodDisruptionBudget")
    assert percent["spec"] == {"maxUnavailable": "50%", "selector": {"matchLabels": selector}}
    validate(percent)
    assert "PodDisruptionBudget" not in by_kind(render(dict(CANARY, pdb={"enabled": False}), "web-canary"))


def test_stable_and_canary_services_select_disjoint_pods(render):
    stable = render(STABLE, "web-stable")
    canary = render(CANARY, "web-canary")
    stable_pods = one(stable, "Deployment")["spec"]["template"]["metadata"]["labels"]
    canary_pods = one(canary, "Deployment")["spec"]["template"]["metadata"]["labels"]
    for service, mine, other in ((one(stable, "Service"), stable_pods, canary_pods),
                                 (one(canary, "Service"), canary_pods, stable_pods)):
        selector = service["spec"]["selector"]
        assert selector.items() <= mine.items()
        assert not selector.items() <= other.items()


def test_router_renders_weighted_httproute_ingress_pair_and_active_service(render):
    manifests = render(ROUTER, "web")
    assert sorted(by_kind(manifests)) == ["HTTPRoute", "Ingress", "Service"]
    route = one(manifests, "HTTPRoute", "web")
    rule = route["spec"]["rules"][0]
    assert [(b["name"], b["port"], b["weight"]) for b in rule["backendRefs"]] == [("web-stable", 80, 90), ("web-canary", 80, 10)]
    assert route["spec"]["parentRefs"] == [{"name": "public", "namespace": "gateway-system"}]
    # the backendRefs name the Services the stable and canary releases render
    assert one(render(STABLE, "web-stable"), "Service")["metadata"]["name"] == "web-stable"
    assert one(render(CANARY, "web-canary"), "Service")["metadata"]["name"] == "web-canary"

    main = one(manifests, "Ingress", "web")
    canary = one(manifests, "Ingress", "web-canary")
    assert "annotations" not in main["metadata"]
    assert canary["metadata"]["annotations"] == {
        "nginx.ingress.kubernetes.io/canary": "true",
        "nginx.ingress.kubernetes.io/canary-weight": "10",
        "nginx.ingress.kubernetes.io/canary-weight-total": "100",
    }
    assert main["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "web-stable"
    assert canary["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "web-canary"

    active = one(manifests, "Service", "web")
    green = one(render(dict(STABLE, color="green"), "web-green"), "Deployment")["spec"]["template"]["metadata"]["labels"]
    blue = one(render(dict(STABLE, color="blue"), "web-blue"), "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert active["spec"]["selector"] == {"app.kubernetes.io/name": "web", "stagegate.io/color": "green"}
    assert active["spec"]["selector"].items() <= green.items()
    assert not active["spec"]["selector"].items() <= blue.items()


def test_blue_green_slots_are_named_by_colour(render):
    manifests = render(dict(STABLE, color="blue"), "web-blue")
    assert {m["metadata"]["name"] for m in manifests} == {"web-blue", "web-blue-flags"}
    assert one(manifests, "Deployment")["spec"]["template"]["metadata"]["labels"]["stagegate.io/color"] == "blue"


@pytest.mark.parametrize("change,message", [
    ({"flags": {"lower_case": True}}, "lower_case"),
    ({"track": "beta"}, "track"),
    ({"color": "red"}, "color"),
    ({"version": "1.0 final"}, "version"),
    ({"pdb": {"enabled": True, "minAvailable": 1, "maxUnavailable": 1}}, "set only one of pdb.minAvailable and pdb.maxUnavailable"),
    ({"pdb": {"enabled": True, "minAvailable": None, "maxUnavailable": None}}, "set one of pdb.minAvailable and pdb.maxUnavailable"),
    ({"workload": {"enabled": False}, "router": {"route": {"enabled": True, "parentRefs": [], "weights": {"stable": 100, "canary": 0}}}},
     "router.route.parentRefs"),
    ({"workload": {"enabled": False}, "router": {"route": {"enabled": True, "parentRefs": [{"name": "gw"}], "weights": {"stable": 0, "canary": 0}}}},
     "both 0"),
    ({"workload": {"enabled": False}, "router": {"route": {"enabled": True, "parentRefs": [{"name": "gw"}], "weights": {"stable": 100, "canary": 101}}}},
     "canary"),
])
def test_chart_refuses_bad_values_with_a_clear_message(helm, tmp_path, change, message):
    values = copy.deepcopy(STABLE)
    values.update(change)
    values_file = tmp_path / "bad.yaml"
    values_file.write_text(yaml.safe_dump(values))
    proc = helm("template", "web-stable", CHART, "--values", str(values_file), check=False)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr
