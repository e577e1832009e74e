# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The canary weight of a Kubernetes router, set in one request from Python (the fast abort on kind kubernetes).

``route_patch`` plans the JSON patch of a Gateway API HTTPRoute (as the deploy_kubernetes role's weights.yml does:
``test`` operations on both backend names first, so an HTTPRoute edited meanwhile makes the patch fail instead of
misrouting, then both weights); ``ingress_patch`` the canary Ingress' ``canary-weight`` annotation of
ingress-nginx. ``set_canary_weight`` reads the object and applies the patch with the ``kubernetes`` Python client
(the one ``kubernetes.core`` needs), connected from a kubeconfig (and context), a host and token, or the in-cluster
service account.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

GATEWAY = ("gateway.networking.k8s.io", "v1", "httproutes")
WEIGHT_ANNOTATION = "nginx.ingress.kubernetes.io/canary-weight"

# how to reach a cluster: a kubeconfig (and context), or a host and token; none of them = the in-cluster account
CONNECTION_OPTIONS = dict(
    kubeconfig=dict(type="path"),
    context=dict(type="str"),
    host=dict(type="str"),
    api_key=dict(type="str", no_log=True),
    ca_cert=dict(type="path"),
    validate_certs=dict(type="bool", default=True),
)
KUBERNETES_OPTIONS = dict(
    router=dict(type="str", choices=["gateway-api", "ingress-nginx"], default="gateway-api"),
    namespace=dict(type="str", required=True),
    name=dict(type="str", required=True),
    stable=dict(type="str", required=True),
    canary=dict(type="str", required=True),
    **CONNECTION_OPTIONS
)


# connections made ahead (prepare), by their options: the abort itself is then one GET and one PATCH
_CLIENTS = {}


class RouterError(Exception):
    """The weight could not be read or written; the message says which object and why."""


def _pointer(text):
    return text.replace("~", "~0").replace("/", "~1")


def route_patch(route, stable, canary, weight):
    """``(patch, before)``: the JSON patch giving ``canary`` ``weight`` % and ``stable`` the rest on the HTTPRoute
    rule that names both backends, and the canary's share before (percent). Raises RouterError without such a rule."""
    for i, rule in enumerate((route.get("spec") or {}).get("rules") or []):
        refs = rule.get("backendRefs") or []
        names = [r.get("name") for r in refs]
        if stable in names and canary in names:
            s, c = names.index(stable), names.index(canary)
            ws, wc = refs[s].get("weight", 1), refs[c].get("weight", 1)  # Gateway API: an omitted weight is 1
            before = int(round(100.0 * wc / (ws + wc))) if ws + wc > 0 else 0
            base = "/spec/rules/%d/backendRefs" % i
            return [{"op": "test", "path": "%s/%d/name" % (base, s), "value": stable},
                    {"op": "test", "path": "%s/%d/name" % (base, c), "value": canary},
                    {"op": "add", "path": "%s/%d/weight" % (base, s), "value": 100 - int(weight)},
                    {"op": "add", "path": "%s/%d/weight" % (base, c), "value": int(weight)}], before
    raise RouterError("HTTPRoute %s has no rule whose backendRefs name both %s and %s; weights not changed"
                      % ((route.get("metadata") or {}).get("name", "?"), stable, canary))


def ingress_patch(ingress, weight):
    """``(patch, before)``: the JSON patch of the canary Ingress' canary-weight annotation, and its value before."""
    annotations = (ingress.get("metadata") or {}).get("annotations") or {}
    if annotations.get("nginx.ingress.kubernetes.io/canary") != "true":
        raise RouterError("Ingress %s is not an ingress-nginx canary Ingress; weight not changed"
                          % (ingress.get("metadata") or {}).get("name", "?"))
    try:
        before = int(annotations.get(WEIGHT_ANNOTATION, "0"))
    except ValueError:
        before = None
    return [{"op": "add", "path": "/metadata/annotations/%s" % _pointer(WEIGHT_ANNOTATION), "value": str(int(weight))}], before


def prepare(spec):
    """Import the client and make the connection of ``spec`` now (reads a kubeconfig, sends no request), so that
    :func:`set_canary_weight` later spends its time on the two requests only. Raises RouterError."""
    key = tuple(spec.get(k) for k in sorted(CONNECTION_OPTIONS))
    if key not in _CLIENTS:
        _CLIENTS[key] = api_client(spec)
    return _CLIENTS[key]


def api_client(spec):
    """A ``kubernetes`` ApiClient from the connection options of ``spec``."""
    try:
        from kubernetes import client, config
    except ImportError:
        raise RouterError("the kubernetes Python client is not installed where this runs (pip install kubernetes)")
    try:
        if spec.get("host"):
            cfg = client.Configuration()
            cfg.host = spec["host"]
            if spec.get("api_key"):
                cfg.api_key = {"authorization": "Bearer %s" % spec["api_key"]}
            cfg.verify_ssl = spec.get("validate_certs", True)
            if spec.get("ca_cert"):
                cfg.ssl_ca_cert = spec["ca_cert"]
            return client.ApiClient(cfg)
        if spec.get("kubeconfig") or spec.get("context"):
            return config.new_client_from_config(config_file=spec.get("kubeconfig"), context=spec.get("context"))
        try:
            config.load_incluster_config()
            return client.ApiClient()
        except config.ConfigException:
            return config.new_client_from_config()
    except RouterError:
        raise
    except Exception as exc:  # pylint: disable=broad-except  # the client's many configuration errors
        raise RouterError("cannot connect to the cluster: %s" % exc)


def set_canary_weight(spec, weight, timeout=5.0, api=None):
    """Read the router object of ``spec`` and write the canary ``weight``; returns {before, after, changed}."""
    try:
        from kubernetes import client
    except ImportError:
        raise RouterError("the kubernetes Python client is not installed where this runs (pip install kubernetes)")
    api = api or prepare(spec)
    gateway = spec.get("router", "gateway-api") == "gateway-api"
    # the object that holds the weight: the HTTPRoute, or the canary Ingress of ingress-nginx
    what = "%s %s/%s" % (("HTTPRoute", spec["namespace"], spec["name"]) if gateway else ("Ingress", spec["namespace"], spec["canary"]))
    try:
        if gateway:
            objects = client.CustomObjectsApi(api)
            route = objects.get_namespaced_custom_object(GATEWAY[0], GATEWAY[1], spec["namespace"], GATEWAY[2], spec["name"],
                                                         _request_timeout=timeout)
            patch, before = route_patch(route, spec["stable"], spec["canary"], weight)
            if before != int(weight):
                objects.patch_namespaced_custom_object(GATEWAY[0], GATEWAY[1], spec["namespace"], GATEWAY[2], spec["name"],
                                                       patch, _request_timeout=timeout)
        else:
            net = client.NetworkingV1Api(api)
            ingress = net.read_namespaced_ingress(spec["canary"], spec["namespace"], _request_timeout=timeout)
            patch, before = ingress_patch(api.sanitize_for_serialization(ingress), weight)
            if before != int(weight):
                net.patch_namespaced_ingress(spec["canary"], spec["namespace"], patch, _request_timeout=timeout)
    except RouterError:
        raise
    except Exception as exc:  # pylint: disable=broad-except  # ApiException, connection and timeout errors
        first = (str(exc).strip().splitlines() or [repr(exc)])[0]
        raise RouterError("%s: %s" % (what, first))
    return {"before": before, "after": int(weight), "changed": before != int(weight)}
