# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollout target contract: where a rollout runs, validated once before any change.

``rollout_target`` (an inventory variable) says where a release goes:

* ``kind: hosts`` - app hosts of an inventory group reached over SSH, each running a ``stable`` and a
  ``canary`` slot on fixed ports (``hosts``), behind HAProxy (``load_balancer``);
* ``kind: kubernetes`` - a namespace of a cluster (``kubernetes``): the slots are the Helm releases
  ``<release>-stable`` and ``<release>-canary``, the traffic is split by a router (Gateway API HTTPRoute
  weights, an ingress-nginx canary Ingress, or a blue-green Service selector), driven from one inventory host
  (``kubernetes.controller``, default ``localhost``) with ``helm`` and the ``kubernetes.core`` modules;
* the metrics provider and the service's own metric names and selectors (``metrics``), from which the
  default gates and the canary judge's queries are built;
* optionally the NATS JetStream stream the service consumes (``nats``): retention per phase and replay
  after a rollback.

:func:`validate` checks types, choices and required fields (an argument spec, so secrets are known as
``no_log`` values), then what a spec cannot express (ports, server names, the inventory's groups and hosts),
and returns the target with its defaults filled in. Every error names the field, the value and what is
accepted. The other functions derive what the phases need from a validated target: the HAProxy server of
each host and slot, the weights of a canary share, the host batches of production, the queries.
Plain Python: no Ansible module object, no I/O.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import re

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.stagegate.rollout.plugins.module_utils.kube_router import CONNECTION_OPTIONS
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_spec import PROVIDER_OPTIONS
from ansible_collections.stagegate.rollout.plugins.module_utils.redact import url_secrets

KINDS = ("hosts", "kubernetes")
ROUTERS = ("gateway-api", "ingress-nginx", "blue-green")
SLOTS = ("stable", "canary")
FIELD = "rollout_target"

HOSTS_OPTIONS = dict(
    group=dict(type="str", required=True),
    command=dict(type="str", required=True),
    workdir=dict(type="str", default="{dir}"),
    base_dir=dict(type="str"),
    environment=dict(type="dict", default={}),
    env_file_name=dict(type="str", default="service.env"),
    supervisor=dict(type="str", choices=["auto", "supervisord", "systemd"], default="auto"),
    supervisord_bin=dict(type="str", default="supervisord"),
    supervisorctl_bin=dict(type="str", default="supervisorctl"),
    ports=dict(type="dict", required=True, options=dict(
        stable=dict(type="int", required=True),
        canary=dict(type="int", required=True),
    )),
    health_path=dict(type="str", default="/healthz"),
    health_host=dict(type="str", default="127.0.0.1"),
    health_retries=dict(type="int", default=30),
)
LOAD_BALANCER_OPTIONS = dict(
    type=dict(type="str", choices=["haproxy"], default="haproxy"),
    host=dict(type="str", required=True),
    socket=dict(type="str", required=True),
    backend=dict(type="str", required=True),
    servers=dict(type="raw", default="{host}_{slot}"),
)
METRICS_OPTIONS = dict(
    provider=dict(type="dict", required=True, options=PROVIDER_OPTIONS),
    requests=dict(type="str", required=True),
    latency_bucket=dict(type="str"),
    selector=dict(type="str", default=""),
    error_selector=dict(type="str", default='code=~"5.."'),
    stable_selector=dict(type="str", default='slot="stable"'),
    canary_selector=dict(type="str", default='slot="canary"'),
    version_label=dict(type="str", default=""),
)
KUBERNETES_OPTIONS = dict(
    namespace=dict(type="str"),
    release=dict(type="str"),
    controller=dict(type="str", default="localhost"),
    helm_binary=dict(type="str", default=""),
    chart=dict(type="str", default=""),
    chart_version=dict(type="str", default=""),
    values=dict(type="dict", default={}),
    router=dict(type="dict", required=True, options=dict(
        type=dict(type="str", required=True),
        parent_refs=dict(type="list", elements="dict", default=[]),
        hostnames=dict(type="list", elements="str", default=[]),
        path_prefix=dict(type="str", default="/"),
        ingress_host=dict(type="str", default=""),
        ingress_path=dict(type="str", default="/"),
        ingress_class=dict(type="str", default="nginx"),
    )),
    replicas=dict(type="dict", default={}, options=dict(
        stable=dict(type="int", default=2),
        canary=dict(type="int", default=1),
    )),
    wait_timeout=dict(type="int", default=300),
    # the connection: kubeconfig, context, host, api_key (no_log), ca_cert, validate_certs
    **CONNECTION_OPTIONS
)
# The keys of the NATS connection are the options of the collection's NATS modules (module_defaults).
NATS_CONNECTION_KEYS = ("servers", "user", "password", "token", "creds_file", "nkey_seed", "tls_ca", "tls_cert",
                        "tls_key", "connect_timeout")
NATS_OPTIONS = dict(
    servers=dict(type="list", elements="str", required=True),
    stream=dict(type="str", required=True),
    subjects=dict(type="list", elements="str", required=True),
    durable=dict(type="str", required=True),
    user=dict(type="str"),
    password=dict(type="str", no_log=True),
    token=dict(type="str", no_log=True),
    creds_file=dict(type="path"),
    nkey_seed=dict(type="str", no_log=True),
    tls_ca=dict(type="path"),
    tls_cert=dict(type="path"),
    tls_key=dict(type="path"),
    connect_timeout=dict(type="float", default=5.0),
    ack_wait=dict(type="str", default="30s"),
    max_ack_pending=dict(type="int", default=1000),
)
TARGET_SPEC = dict(
    kind=dict(type="str", required=True, choices=list(KINDS)),
    name=dict(type="str", required=True),
    hosts=dict(type="dict", options=HOSTS_OPTIONS),
    load_balancer=dict(type="dict", options=LOAD_BALANCER_OPTIONS),
    kubernetes=dict(type="dict", options=KUBERNETES_OPTIONS),
    metrics=dict(type="dict", required=True, options=METRICS_OPTIONS),
    nats=dict(type="dict", options=NATS_OPTIONS),
)

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}\Z")
# a DNS-1123 label: namespaces, and Helm release names (the slot's suffix makes them at most 53 characters)
DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")
SERVER_RE = re.compile(r"^[A-Za-z0-9_.:-]+\Z")
BATCH_RE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)%\Z")


class TargetError(ValueError):
    """A target description that cannot be used; the message names the field, the value and what is accepted."""


def _field(*path):
    return ".".join((FIELD,) + path)


def validate(target, groups=None, hosts=None):
    """Check ``target`` and return ``(normalized, no_log_values)``.

    ``groups`` (the inventory's ``groups``: name -> host names) and ``hosts`` (every inventory host name) are
    optional; with them the app host group and the load-balancer host are checked against the inventory.
    Raises :class:`TargetError` listing every problem found.
    """
    if not isinstance(target, dict):
        raise TargetError("%s must be a mapping with kind, name, hosts, load_balancer, metrics (and nats); got %s"
                          % (FIELD, type(target).__name__))
    result = ArgumentSpecValidator(TARGET_SPEC).validate(target)
    errors = ["%s: %s" % (FIELD, msg) for msg in result.error_messages]
    if errors:
        raise TargetError("; ".join(errors))
    t = result.validated_parameters
    errors = []
    if not NAME_RE.match(t["name"]):
        errors.append("%s: %r is not a service name (accepted: lower-case letters, digits, '_', '.', '-'; "
                      "starting with a letter or digit; at most 63 characters)" % (_field("name"), t["name"]))
    if t["kind"] == "hosts":
        errors.extend(_check_hosts(t, groups, hosts))
    else:
        errors.extend(_check_kubernetes(t, hosts))
    errors.extend(_check_metrics(t["metrics"]))
    if t.get("nats"):
        errors.extend(_check_nats(t["nats"]))
    if errors:
        raise TargetError("; ".join(errors))
    return t, set(result._no_log_values)


def _check_hosts(t, groups, hosts):
    errors = []
    for section in ("hosts", "load_balancer"):
        if not t.get(section):
            errors.append("%s: required for kind hosts (see docs/targets.md)" % _field(section))
    if errors:
        return errors
    h, lb = t["hosts"], t["load_balancer"]
    if not h["base_dir"]:
        h["base_dir"] = "/opt/%s" % t["name"]
    for slot in SLOTS:
        port = h["ports"][slot]
        if not 1 <= port <= 65535:
            errors.append("%s: %d is not a TCP port (accepted: 1..65535)" % (_field("hosts", "ports", slot), port))
    if h["ports"]["stable"] == h["ports"]["canary"]:
        errors.append("%s: stable and canary both use port %d (each slot needs its own port)"
                      % (_field("hosts", "ports"), h["ports"]["stable"]))
    if "{port}" not in h["command"]:
        errors.append("%s: %r does not contain {port} (each slot runs on its own port; placeholders: {version} "
                      "{port} {env_file} {dir} {instance} {service})" % (_field("hosts", "command"), h["command"]))
    if not h["health_path"].startswith("/"):
        errors.append("%s: %r must start with /" % (_field("hosts", "health_path"), h["health_path"]))
    app_hosts = []
    if groups is not None:
        if h["group"] not in groups:
            errors.append("%s: %r is not a group of the inventory (groups: %s)"
                          % (_field("hosts", "group"), h["group"], ", ".join(sorted(groups)) or "none"))
        else:
            app_hosts = list(groups[h["group"]])
            if not app_hosts:
                errors.append("%s: group %r has no hosts (the app hosts of the rollout)"
                              % (_field("hosts", "group"), h["group"]))
    if hosts is not None and lb["host"] not in hosts and lb["host"] not in ("localhost", "127.0.0.1"):
        errors.append("%s: %r is not a host of the inventory (accepted: an inventory host that can reach the "
                      "HAProxy runtime socket, or localhost)" % (_field("load_balancer", "host"), lb["host"]))
    errors.extend(_check_servers(lb["servers"], app_hosts))
    return errors


def _check_kubernetes(t, hosts):
    k = t.get("kubernetes")
    if not k:
        return ["%s: required for kind kubernetes (namespace, router, ...; see docs/targets.md)" % _field("kubernetes")]
    errors = []
    for section in ("hosts", "load_balancer"):
        if t.get(section):
            errors.append("%s: not used by kind kubernetes (the releases and the router are in %s)"
                          % (_field(section), _field("kubernetes")))
    if not k["namespace"]:
        errors.append("%s: required for kind kubernetes (the namespace of the releases)" % _field("kubernetes", "namespace"))
    elif not DNS_LABEL_RE.match(k["namespace"]):
        errors.append("%s: %r is not a namespace name (accepted: a DNS-1123 label: lower-case letters, digits and "
                      "'-', at most 63 characters)" % (_field("kubernetes", "namespace"), k["namespace"]))
    if not k["release"]:
        k["release"] = t["name"]
    if not DNS_LABEL_RE.match(k["release"]) or len(k["release"]) > 46:
        errors.append("%s: %r is not a Helm release name (accepted: lower-case letters, digits and '-', at most 46 "
                      "characters: '-stable' and '-canary' are added)" % (_field("kubernetes", "release"), k["release"]))
    r = k["router"]
    if r["type"] not in ROUTERS:
        errors.append("%s: %r is not a router (accepted: %s)"
                      % (_field("kubernetes", "router", "type"), r["type"], ", ".join(ROUTERS)))
    elif r["type"] == "gateway-api" and not r["parent_refs"]:
        errors.append("%s: the Gateways the HTTPRoute attaches to are needed for router gateway-api (for example "
                      "[{name: public, namespace: gateway-system}])" % _field("kubernetes", "router", "parent_refs"))
    elif r["type"] == "ingress-nginx" and not r["ingress_host"]:
        errors.append("%s: the host the Ingress pair serves is needed for router ingress-nginx"
                      % _field("kubernetes", "router", "ingress_host"))
    for slot in SLOTS:
        n = k["replicas"][slot]
        if not 1 <= n <= 1000:
            errors.append("%s: %d replicas (accepted: 1..1000; a slot out of use is scaled to 0 by the phases)"
                          % (_field("kubernetes", "replicas", slot), n))
    if k["wait_timeout"] < 1:
        errors.append("%s: %d (accepted: seconds > 0)" % (_field("kubernetes", "wait_timeout"), k["wait_timeout"]))
    if hosts is not None and k["controller"] not in hosts and k["controller"] not in ("localhost", "127.0.0.1"):
        errors.append("%s: %r is not a host of the inventory (accepted: localhost, or an inventory host with helm and "
                      "access to the cluster)" % (_field("kubernetes", "controller"), k["controller"]))
    return errors


def release_names(target):
    """The Helm release of each slot of a kubernetes target: ``{"stable": "<release>-stable", ...}``."""
    return dict((slot, "%s-%s" % (target["kubernetes"]["release"], slot)) for slot in SLOTS)


def _check_servers(servers, app_hosts):
    where = _field("load_balancer", "servers")
    if isinstance(servers, str):
        if "{slot}" not in servers:
            return ["%s: pattern %r does not contain {slot} (accepted: a pattern with {slot} and {host}, such as "
                    "'{host}_{slot}', or a mapping host -> {stable: server, canary: server})" % (where, servers)]
        if "{host}" not in servers and len(app_hosts) > 1:
            return ["%s: pattern %r does not contain {host} but there are %d app hosts (each needs its own servers)"
                    % (where, servers, len(app_hosts))]
        return []
    if not isinstance(servers, dict):
        return ["%s: %r is neither a pattern nor a mapping (accepted: '{host}_{slot}' or "
                "{host: {stable: server, canary: server}})" % (where, servers)]
    errors = []
    for host in app_hosts:
        entry = servers.get(host)
        if not isinstance(entry, dict) or not all(isinstance(entry.get(s), str) and entry.get(s) for s in SLOTS):
            errors.append("%s.%s: needs a stable and a canary server name (got %r)" % (where, host, entry))
    return errors


def _check_metrics(m):
    errors = []
    p = m["provider"]
    if p["type"] in ("prometheus", "http_json") and not p.get("url"):
        errors.append("%s: required for provider type %s" % (_field("metrics", "provider", "url"), p["type"]))
    if not re.match(r"^[a-zA-Z_:][a-zA-Z0-9_:]*\Z", m["requests"]):
        errors.append("%s: %r is not a metric name" % (_field("metrics", "requests"), m["requests"]))
    if m.get("latency_bucket") and not re.match(r"^[a-zA-Z_:][a-zA-Z0-9_:]*_bucket\Z", m["latency_bucket"]):
        errors.append("%s: %r is not the name of a histogram's buckets (accepted: <name>_bucket)"
                      % (_field("metrics", "latency_bucket"), m["latency_bucket"]))
    if m["version_label"] and not re.match(r"^[a-zA-Z_][a-zA-Z0-9_]*\Z", m["version_label"]):
        errors.append("%s: %r is not a label name" % (_field("metrics", "version_label"), m["version_label"]))
    for key in ("selector", "error_selector", "stable_selector", "canary_selector"):
        sel = m[key]
        if sel.strip().startswith("{") or sel.strip().endswith("}"):
            errors.append("%s: %r must be label matchers without braces, such as 'job=\"web\",slot=\"canary\"'"
                          % (_field("metrics", key), sel))
    return errors


def _check_nats(n):
    errors = []
    if not n["servers"]:
        errors.append("%s: at least one server URL is needed" % _field("nats", "servers"))
    if not n["subjects"]:
        errors.append("%s: at least one subject is needed" % _field("nats", "subjects"))
    return errors


# ----- what the phases derive from a validated target ---------------------------------------------------


def servers(target, app_hosts):
    """``{host: {"stable": server, "canary": server}}`` for every app host, checked unique."""
    spec = target["load_balancer"]["servers"]
    out = {}
    for host in app_hosts:
        if isinstance(spec, str):
            out[host] = dict((slot, spec.replace("{host}", host).replace("{slot}", slot)) for slot in SLOTS)
        else:
            out[host] = dict((slot, spec[host][slot]) for slot in SLOTS)
    seen = {}
    for host, pair in out.items():
        for slot, name in pair.items():
            if not SERVER_RE.match(name):
                raise TargetError("%s: %r (host %s, slot %s) is not an HAProxy server name"
                                  % (_field("load_balancer", "servers"), name, host, slot))
            if name in seen:
                raise TargetError("%s: server %r is used twice (%s and %s %s)"
                                  % (_field("load_balancer", "servers"), name, seen[name], host, slot))
            seen[name] = "%s %s" % (host, slot)
    return out


def check_backend(server_map, backend, backend_servers):
    """Every server of ``server_map`` must be a server of the HAProxy backend (``backend_servers``)."""
    missing = ["%s server %r of host %s" % (slot, name, host)
               for host, pair in sorted(server_map.items()) for slot, name in sorted(pair.items())
               if name not in backend_servers]
    if missing:
        raise TargetError("%s: %s not in HAProxy backend %r (its servers: %s); declare them in haproxy.cfg or fix "
                          "the names" % (_field("load_balancer", "servers"), ", ".join(missing), backend,
                                         ", ".join(sorted(backend_servers)) or "none"))


def weights(server_map, canary_percent, hosts=None):
    """HAProxy weights giving the canary slots ``canary_percent`` % of the traffic of ``hosts`` (default all).

    Every host's canary server gets the percentage and its stable server the rest, so the canary's share of
    the whole backend is the same percentage whatever the number of hosts.
    """
    try:
        pct = int(canary_percent)
    except (TypeError, ValueError):
        raise TargetError("canary weight %r is not a whole number of percent (accepted: 0..100)" % (canary_percent,))
    if not 0 <= pct <= 100 or str(canary_percent).strip() not in (str(pct), "%d.0" % pct):
        raise TargetError("canary weight %r is not a whole number of percent (accepted: 0..100)" % (canary_percent,))
    out = {}
    for host in (server_map if hosts is None else hosts):
        if host not in server_map:
            raise TargetError("host %r is not an app host of the target (app hosts: %s)"
                              % (host, ", ".join(sorted(server_map))))
        out[server_map[host]["canary"]] = pct
        out[server_map[host]["stable"]] = 100 - pct
    return out


def batches(hosts, sizes, field="rollout_production.batches"):
    """Split ``hosts`` into batches as Ansible's ``serial`` does: a list of sizes (a count or a percentage of all
    hosts, rounded down, at least 1), the last size repeated until every host is in a batch. ``[1, '25%', '100%']``
    over 10 hosts gives batches of 1, 2 and 7 hosts."""
    hosts = list(hosts)
    if not isinstance(sizes, (list, tuple)) or not sizes:
        raise TargetError("%s: %r is not a list of batch sizes (accepted: counts or percentages, such as "
                          "[1, '25%%', '100%%'])" % (field, sizes))
    counts = []
    for i, size in enumerate(sizes):
        text = str(size).strip()
        m = BATCH_RE.match(text)
        if m:
            pct = float(m.group(1))
            if not 0 < pct <= 100:
                raise TargetError("%s[%d]: %r is not a percentage within 0..100" % (field, i, size))
            counts.append(max(1, int(math.floor(len(hosts) * pct / 100.0))))
        elif text.isdigit() and int(text) > 0 and not isinstance(size, bool):
            counts.append(int(text))
        else:
            raise TargetError("%s[%d]: %r is not a batch size (accepted: a count > 0 or a percentage such as '25%%')"
                              % (field, i, size))
    out, i, k = [], 0, 0
    while i < len(hosts):
        n = counts[min(k, len(counts) - 1)]
        out.append(hosts[i:i + n])
        i += n
        k += 1
    return out


def nats_connection(nats):
    """The NATS connection options (``module_defaults`` of ``group/stagegate.rollout.nats``) of a target's ``nats``."""
    if not nats:
        return {}
    return dict((k, nats[k]) for k in NATS_CONNECTION_KEYS if nats.get(k) not in (None, "", []))


def _selector(*parts):
    return "{%s}" % ",".join(p.strip().strip(",") for p in parts if p and p.strip())


def slot_selector(metrics, slot, version=""):
    """PromQL label matchers (with braces) of the series of one slot, optionally of one version."""
    parts = [metrics["selector"], metrics["%s_selector" % slot]]
    if version and metrics["version_label"]:
        parts.append('%s="%s"' % (metrics["version_label"], version.replace("\\", "\\\\").replace('"', '\\"')))
    return _selector(*parts)


def judge_queries(metrics, version=""):
    """Cumulative counter queries of the canary judge: baseline = the stable slot, canary = the canary slot."""
    out = {}
    for arm, slot in (("baseline", "stable"), ("canary", "canary")):
        sel = slot_selector(metrics, slot, version if arm == "canary" else "")
        err = _selector(sel[1:-1], metrics["error_selector"])
        q = {"requests": "sum(%s%s)" % (metrics["requests"], sel),
             "errors": "sum(%s%s) or vector(0)" % (metrics["requests"], err)}
        if metrics.get("latency_bucket"):
            q["latency_buckets"] = "sum by (le) (%s%s)" % (metrics["latency_bucket"], sel)
        out[arm] = q
    return out


def gate_queries(metrics, slot, version=""):
    """The default gates' queries over ``$window`` for one slot: error ratio and (with a histogram) p99 in ms."""
    sel = slot_selector(metrics, slot, version)
    err = _selector(sel[1:-1], metrics["error_selector"])
    out = {"error_rate": "(sum(increase(%s%s[$window])) or vector(0)) / sum(increase(%s%s[$window]))"
                         % (metrics["requests"], err, metrics["requests"], sel)}
    if metrics.get("latency_bucket"):
        out["p99_latency_ms"] = ("1000 * histogram_quantile(0.99, sum by (le) (rate(%s%s[$window])))"
                                 % (metrics["latency_bucket"], sel))
    return out


def plan(target, groups=None, hosts=None, backend_servers=None, canary_weights=None, batch_sizes=None,
         version="", weights_field="canary_weights", batches_field="batches"):
    """Validate ``target`` and derive what the phases use; returns ``(plan, no_log_values)``.

    ``plan`` holds the normalized target without its secrets (``target``), the app hosts, their HAProxy
    servers, the NATS connection keys that are set (names only) and the default queries (``queries``, for
    ``version``); with ``canary_weights`` (percentages) the HAProxy weights of each (``weights``), with
    ``batch_sizes`` the host batches of production (``host_batches``). ``weights_field`` and ``batches_field``
    name where the weights and the batch sizes come from, in error messages.
    """
    t, secrets = validate(target, groups=groups, hosts=hosts)
    out = {"kind": t["kind"], "name": t["name"]}
    if t["kind"] == "hosts":
        app_hosts = list(groups[t["hosts"]["group"]]) if groups is not None else []
        server_map = servers(t, app_hosts)
        if backend_servers is not None:
            check_backend(server_map, t["load_balancer"]["backend"], backend_servers)
        out.update(app_hosts=app_hosts, servers=server_map)
        out["weights"] = {}
        for p in canary_weights or []:
            try:
                out["weights"][str(p)] = weights(server_map, p)
            except TargetError as exc:
                raise TargetError("%s: %s" % (weights_field, exc))
        if batch_sizes is not None:
            out["host_batches"] = batches(app_hosts, batch_sizes, field=batches_field)
    else:
        # one "app host": the inventory host that drives the cluster; its two "servers" are the slot releases
        k = t["kubernetes"]
        server_map = {k["controller"]: release_names(t)}
        out.update(app_hosts=[k["controller"]], servers=server_map, releases=release_names(t),
                   router=k["router"]["type"])
        out["weights"] = {}
        for p in canary_weights or []:
            if k["router"]["type"] == "blue-green" and str(p) not in ("0", "100"):
                raise TargetError("%s: a canary share of %s %% on router blue-green (a blue-green Service sends all "
                                  "the traffic to one colour; accepted: no steps, or weights 0 and 100, or router "
                                  "gateway-api / ingress-nginx)" % (weights_field, p))
            try:
                out["weights"][str(p)] = weights(server_map, p)
            except TargetError as exc:
                raise TargetError("%s: %s" % (weights_field, exc))
        if batch_sizes is not None:
            out["host_batches"] = [[k["controller"]]]
    out["nats_connection_keys"] = sorted(nats_connection(t.get("nats")))
    m = t["metrics"]
    out["queries"] = {"judge": judge_queries(m, version),
                      "gates": dict((slot, gate_queries(m, slot, version)) for slot in SLOTS),
                      # the report's plots: this version's canary, and the stable slot whatever it serves (the
                      # previous version until a promotion)
                      "report": {"canary": gate_queries(m, "canary", version), "stable": gate_queries(m, "stable")}}
    out["target"] = _without_secrets(t)
    return out, secrets


SECRET_KEYS = ("password", "token", "nkey_seed", "api_key")


def secret_values(value):
    """Every secret in a target, whatever its shape (checked or not): values of password/token/nkey_seed keys
    and what the URLs carry in their userinfo (``redact.url_secrets``), so a caller can mark them no_log before
    anything is reported."""
    found = set()
    if isinstance(value, dict):
        for k, v in value.items():
            if k in SECRET_KEYS and isinstance(v, str) and v:
                found.add(v)
            else:
                found |= secret_values(v)
    elif isinstance(value, list):
        for v in value:
            found |= secret_values(v)
    elif isinstance(value, str):
        found.update(url_secrets(value))
    return found


def _without_secrets(value):
    if isinstance(value, dict):
        return dict((k, _without_secrets(v)) for k, v in value.items() if k not in SECRET_KEYS)
    if isinstance(value, list):
        return [_without_secrets(v) for v in value]
    return value
