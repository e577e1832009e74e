import base64
import copy

import pytest

from ansible_collections.stagegate.rollout.plugins.module_utils import rollout_target as rt

GROUPS = {"all": ["app1", "app2", "app3", "lb1"], "app": ["app1", "app2", "app3"], "lb": ["lb1"], "empty": [],
          "ungrouped": []}
HOSTS = GROUPS["all"]
BACKEND = ["app1_stable", "app1_canary", "app2_stable", "app2_canary", "app3_stable", "app3_canary"]


def target(**over):
    t = {
        "kind": "hosts",
        "name": "codex",
        "hosts": {"group": "app", "command": "/opt/codex/releases/{version}/bin/codex --port {port}",
                  "ports": {"stable": 8101, "canary": 8102}},
        "load_balancer": {"host": "lb1", "socket": "/run/haproxy/admin.sock", "backend": "app"},
        "metrics": {"provider": {"type": "prometheus", "url": "http://prom:9090", "token": "s3cr3t-token"},
                    "requests": "http_requests_total", "latency_bucket": "http_request_duration_seconds_bucket",
                    "selector": 'job="codex"'},
        "nats": {"servers": ["nats://nats:4222"], "stream": "EVENTS", "subjects": ["events.>"], "durable": "codex",
                 "user": "codex", "password": "nats-pass"},
    }
    for path, value in over.items():
        node = t
        keys = path.split("__")
        for k in keys[:-1]:
            node = node[k]
        if value == DELETE:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value
    return t


DELETE = "__delete__"


def test_a_good_target_is_normalized_with_defaults():
    t, secrets = rt.validate(target(), GROUPS, HOSTS)
    assert t["hosts"]["base_dir"] == "/opt/codex"
    assert t["hosts"]["health_path"] == "/healthz"
    assert t["hosts"]["supervisor"] == "auto"
    assert t["load_balancer"]["servers"] == "{host}_{slot}"
    assert t["metrics"]["canary_selector"] == 'slot="canary"'
    assert t["nats"]["ack_wait"] == "30s"
    assert {"s3cr3t-token", "nats-pass"} <= secrets


def test_plan_derives_servers_and_drops_secrets():
    plan, secrets = rt.plan(target(), GROUPS, HOSTS, backend_servers=BACKEND)
    assert plan["app_hosts"] == ["app1", "app2", "app3"]
    assert plan["servers"]["app2"] == {"stable": "app2_stable", "canary": "app2_canary"}
    assert "password" not in plan["target"]["nats"] and "token" not in plan["target"]["metrics"]["provider"]
    assert "s3cr3t-token" not in repr(plan) and "nats-pass" not in repr(plan)
    assert plan["nats_connection_keys"] == ["connect_timeout", "password", "servers", "user"]


def test_explicit_server_map():
    servers = {h: {"stable": "%s-blue" % h, "canary": "%s-green" % h} for h in GROUPS["app"]}
    plan = rt.plan(target(load_balancer__servers=servers), GROUPS, HOSTS)[0]
    assert plan["servers"]["app3"]["canary"] == "app3-green"


BAD = [
    ("unknown kind", dict(kind="vm"), "rollout_target: value of kind must be one of: hosts, kubernetes, got: vm"),
    ("no app hosts group", dict(hosts__group="web"), "rollout_target.hosts.group: 'web' is not a group"),
    ("empty app hosts group", dict(hosts__group="empty"), "rollout_target.hosts.group: group 'empty' has no hosts"),
    ("missing LB host", dict(load_balancer__host=DELETE), "missing required arguments: host found in load_balancer"),
    ("LB host not in the inventory", dict(load_balancer__host="lb9"),
     "rollout_target.load_balancer.host: 'lb9' is not a host of the inventory"),
    ("no load balancer", dict(load_balancer=DELETE), "rollout_target.load_balancer: required for kind hosts"),
    ("same port twice", dict(hosts__ports={"stable": 8101, "canary": 8101}),
     "rollout_target.hosts.ports: stable and canary both use port 8101"),
    ("port out of range", dict(hosts__ports={"stable": 8101, "canary": 70000}),
     "rollout_target.hosts.ports.canary: 70000 is not a TCP port"),
    ("command without port", dict(hosts__command="/bin/app"), "rollout_target.hosts.command: '/bin/app' does not"),
    ("pattern without slot", dict(load_balancer__servers="{host}"), "pattern '{host}' does not contain {slot}"),
    ("pattern without host", dict(load_balancer__servers="s_{slot}"), "does not contain {host} but there are 3"),
    ("server map missing a host", dict(load_balancer__servers={"app1": {"stable": "a", "canary": "b"}}),
     "rollout_target.load_balancer.servers.app2: needs a stable and a canary server name"),
    ("bad service name", dict(name="Codex Service"), "rollout_target.name: 'Codex Service' is not a service name"),
    ("no metrics", dict(metrics=DELETE), "missing required arguments: metrics"),
    ("prometheus without url", dict(metrics__provider={"type": "prometheus"}),
     "rollout_target.metrics.provider.url: required for provider type prometheus"),
    ("unknown provider type", dict(metrics__provider={"type": "datadog"}), "value of type must be one of"),
    ("bad metric name", dict(metrics__requests="http requests"), "rollout_target.metrics.requests: 'http requests'"),
    ("bucket name", dict(metrics__latency_bucket="http_duration"), "is not the name of a histogram's buckets"),
    ("selector with braces", dict(metrics__selector='{job="x"}'), "rollout_target.metrics.selector"),
    ("no nats subjects", dict(nats__subjects=[]), "rollout_target.nats.subjects: at least one subject"),
    ("nats without stream", dict(nats__stream=DELETE), "missing required arguments: stream found in nats"),
    ("unknown field", dict(hosts__prots=1), "prots. Supported parameters include"),
    ("unknown supervisor", dict(hosts__supervisor="runit"), "value of supervisor must be one of"),
]


@pytest.mark.parametrize("over,expected", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_targets_are_refused_naming_the_field(over, expected):
    t = target(**copy.deepcopy(over))
    with pytest.raises(rt.TargetError) as exc:
        rt.plan(t, GROUPS, HOSTS)
    assert expected in str(exc.value)
    assert "s3cr3t-token" not in str(exc.value) and "nats-pass" not in str(exc.value)


def test_a_canary_server_not_in_the_backend_is_refused():
    with pytest.raises(rt.TargetError) as exc:
        rt.plan(target(), GROUPS, HOSTS, backend_servers=[s for s in BACKEND if s != "app2_canary"])
    assert "canary server 'app2_canary' of host app2 not in HAProxy backend 'app'" in str(exc.value)


def test_not_a_mapping():
    with pytest.raises(rt.TargetError, match="rollout_target must be a mapping"):
        rt.validate("hosts")


def test_duplicate_server_names_are_refused():
    servers = {h: {"stable": "same", "canary": "%s_c" % h} for h in GROUPS["app"]}
    with pytest.raises(rt.TargetError, match="server 'same' is used twice"):
        rt.plan(target(load_balancer__servers=servers), GROUPS, HOSTS)


def test_weights_give_the_canary_the_same_share_on_every_host():
    servers = rt.servers(rt.validate(target())[0], GROUPS["app"])
    w = rt.weights(servers, 25)
    assert w == {"app1_canary": 25, "app1_stable": 75, "app2_canary": 25, "app2_stable": 75,
                 "app3_canary": 25, "app3_stable": 75}
    assert rt.weights(servers, "100", hosts=["app2"]) == {"app2_canary": 100, "app2_stable": 0}
    for bad in (101, -1, "ten", 12.5, None):
        with pytest.raises(rt.TargetError, match="not a whole number of percent"):
            rt.weights(servers, bad)
    with pytest.raises(rt.TargetError, match="'app9' is not an app host"):
        rt.weights(servers, 10, hosts=["app9"])


def test_batches_follow_ansible_serial():
    hosts = ["h%d" % i for i in range(10)]
    assert [len(b) for b in rt.batches(hosts, [1, "25%", "100%"])] == [1, 2, 7]
    assert [len(b) for b in rt.batches(hosts, [3])] == [3, 3, 3, 1]
    assert rt.batches(["a"], [1, "25%", "100%"]) == [["a"]]
    assert sum(rt.batches(hosts, ["30%"]), []) == hosts
    for bad in ([], [0], ["0%"], ["150%"], ["x"], [True], "1"):
        with pytest.raises(rt.TargetError, match="rollout_production.batches"):
            rt.batches(hosts, bad)


def test_queries_use_the_service_metric_names_and_selectors():
    m = rt.validate(target(metrics__version_label="version"))[0]["metrics"]
    q = rt.judge_queries(m, "v2")
    assert q["baseline"]["requests"] == 'sum(http_requests_total{job="codex",slot="stable"})'
    assert q["canary"]["errors"] == ('sum(http_requests_total{job="codex",slot="canary",version="v2",code=~"5.."})'
                                     ' or vector(0)')
    assert q["canary"]["latency_buckets"] == \
        'sum by (le) (http_request_duration_seconds_bucket{job="codex",slot="canary",version="v2"})'
    g = rt.gate_queries(m, "stable", "v2")
    assert g["error_rate"].startswith('(sum(increase(http_requests_total{job="codex",slot="stable",version="v2",'
                                      'code=~"5.."}[$window])) or vector(0))')
    assert "histogram_quantile(0.99" in g["p99_latency_ms"]


def test_no_latency_histogram_no_latency_queries():
    m = rt.validate(target(metrics__latency_bucket=DELETE))[0]["metrics"]
    assert "latency_buckets" not in rt.judge_queries(m)["canary"]
    assert list(rt.gate_queries(m, "canary")) == ["error_rate"]


def test_a_target_may_read_its_metrics_with_prometheus_text():
    provider = {"type": "prometheus_text", "targets": [
        {"url": "http://10.0.0.11:8101/metrics", "labels": {"job": "codex", "slot": "stable"}},
        {"url": "http://10.0.0.11:8102/metrics", "labels": {"job": "codex", "slot": "canary"}}]}
    t = rt.validate(target(metrics__provider=provider), GROUPS, HOSTS)[0]
    assert t["metrics"]["provider"]["type"] == "prometheus_text"
    assert len(t["metrics"]["provider"]["targets"]) == 2


def test_secret_values_are_found_in_any_shape():
    t = target(metrics__provider={"type": "prometheus", "url": "https://ops:pw0rd@prom:9090"})
    found = rt.secret_values(t)
    assert {"nats-pass", "ops:pw0rd", "pw0rd"} <= found
    assert rt.secret_values({"x": [{"token": "tk"}]}) == {"tk"}
    # a URL anywhere in a string, its percent-decoded password and the basic header made of it
    found = rt.secret_values({"command": "run --db postgres://app:p%40ss@db/x"})
    assert {"app:p%40ss", "p%40ss", "p@ss"} <= found and base64.b64encode(b"app:p@ss").decode() in found


def test_nats_connection_keeps_only_the_set_connection_options():
    n = rt.validate(target())[0]["nats"]
    conn = rt.nats_connection(n)
    assert conn == {"servers": ["nats://nats:4222"], "user": "codex", "password": "nats-pass", "connect_timeout": 5.0}
    assert rt.nats_connection(None) == {}


def test_plan_returns_step_weights_batches_and_queries():
    plan = rt.plan(target(), GROUPS, HOSTS, canary_weights=[10, 100], batch_sizes=[1, "100%"], version="v2")[0]
    assert plan["weights"]["10"]["app3_canary"] == 10 and plan["weights"]["100"]["app1_stable"] == 0
    assert plan["host_batches"] == [["app1"], ["app2", "app3"]]
    assert plan["queries"]["gates"]["canary"]["error_rate"].startswith("(sum(increase(http_requests_total{")
    assert plan["queries"]["judge"]["baseline"]["requests"] == 'sum(http_requests_total{job="codex",slot="stable"})'
    # the report: the canary of this version, the stable slot whichever version serves there
    report = rt.plan(target(metrics__version_label="version"), GROUPS, HOSTS, version="v2")[0]["queries"]["report"]
    assert 'slot="canary"' in report["canary"]["error_rate"] and 'version="v2"' in report["canary"]["error_rate"]
    assert "version=" not in report["stable"]["error_rate"] and 'slot="stable"' in report["stable"]["error_rate"]
    with pytest.raises(rt.TargetError, match=r"rollout_canary.steps: canary weight 150 is not a whole number"):
        rt.plan(target(), GROUPS, HOSTS, canary_weights=[150], weights_field="rollout_canary.steps")
    with pytest.raises(rt.TargetError, match=r"rollout_production.batches\[0\]: 'x' is not a batch size"):
        rt.plan(target(), GROUPS, HOSTS, batch_sizes=["x"], batches_field="rollout_production.batches")


def kube_target(**over):
    kube = over.pop("kubernetes", {})
    t = target(**over)
    for section in ("hosts", "load_balancer"):
        t.pop(section, None)
    t["kind"] = "kubernetes"
    t["kubernetes"] = dict({"namespace": "codex", "api_key": "kube-t0ken",
                            "router": {"type": "gateway-api", "parent_refs": [{"name": "public"}]}},
                           **kube)
    t["metrics"]["stable_selector"], t["metrics"]["canary_selector"] = 'track="stable"', 'track="canary"'
    return t


def test_a_kubernetes_target_has_one_controller_whose_servers_are_the_slot_releases():
    plan, secrets = rt.plan(kube_target(), GROUPS, HOSTS, canary_weights=[0, 10, 100], batch_sizes=[1, "100%"])
    assert plan["kind"] == "kubernetes" and plan["router"] == "gateway-api"
    assert plan["app_hosts"] == ["localhost"]
    assert plan["releases"] == {"stable": "codex-stable", "canary": "codex-canary"}
    assert plan["servers"] == {"localhost": plan["releases"]}
    assert plan["weights"]["10"] == {"codex-canary": 10, "codex-stable": 90}
    assert plan["host_batches"] == [["localhost"]]
    k = plan["target"]["kubernetes"]
    assert k["release"] == "codex" and k["replicas"] == {"stable": 2, "canary": 1} and k["validate_certs"] is True
    assert "kube-t0ken" in secrets and "kube-t0ken" not in repr(plan) and "api_key" not in k
    assert plan["queries"]["judge"]["canary"]["requests"] == 'sum(http_requests_total{job="codex",track="canary"})'


def test_a_kubernetes_target_may_name_its_release_and_controller():
    plan = rt.plan(kube_target(kubernetes={"release": "web", "controller": "lb1", "namespace": "prod",
                                           "router": {"type": "ingress-nginx", "ingress_host": "web.example"}}),
                   GROUPS, HOSTS)[0]
    assert plan["servers"] == {"lb1": {"stable": "web-stable", "canary": "web-canary"}} and plan["router"] == "ingress-nginx"


KUBE_BAD = [
    ("no namespace", {"namespace": ""}, "rollout_target.kubernetes.namespace: required for kind kubernetes"),
    ("bad namespace", {"namespace": "Prod_1"}, "rollout_target.kubernetes.namespace: 'Prod_1' is not a namespace"),
    ("unknown router", {"router": {"type": "istio"}},
     "rollout_target.kubernetes.router.type: 'istio' is not a router (accepted: gateway-api, ingress-nginx, blue-green)"),
    ("gateway without parents", {"router": {"type": "gateway-api"}},
     "rollout_target.kubernetes.router.parent_refs: the Gateways the HTTPRoute attaches to are needed"),
    ("ingress without host", {"router": {"type": "ingress-nginx"}},
     "rollout_target.kubernetes.router.ingress_host: the host the Ingress pair serves is needed"),
    ("no router", {"router": DELETE}, "missing required arguments: router found in kubernetes"),
    ("zero replicas", {"replicas": {"canary": 0}}, "rollout_target.kubernetes.replicas.canary: 0 replicas"),
    ("long release", {"release": "r" * 47}, "rollout_target.kubernetes.release: '%s' is not a Helm release" % ("r" * 47)),
    ("controller not in the inventory", {"controller": "kube9"},
     "rollout_target.kubernetes.controller: 'kube9' is not a host of the inventory"),
]


@pytest.mark.parametrize("over,expected", [b[1:] for b in KUBE_BAD], ids=[b[0] for b in KUBE_BAD])
def test_bad_kubernetes_targets_are_refused_naming_the_field(over, expected):
    t = kube_target()
    for k, v in over.items():
        if v == DELETE:
            del t["kubernetes"][k]
        else:
            t["kubernetes"][k] = v
    with pytest.raises(rt.TargetError) as exc:
        rt.plan(t, GROUPS, HOSTS)
    assert expected in str(exc.value)
    assert "kube-t0ken" not in str(exc.value)


def test_a_kubernetes_target_without_its_section_or_with_a_load_balancer_is_refused():
    t = kube_target()
    del t["kubernetes"]
    with pytest.raises(rt.TargetError, match=r"rollout_target.kubernetes: required for kind kubernetes"):
        rt.validate(t, GROUPS, HOSTS)
    t = kube_target()
    t["load_balancer"] = {"host": "lb1", "socket": "/s", "backend": "app"}
    with pytest.raises(rt.TargetError, match=r"rollout_target.load_balancer: not used by kind kubernetes"):
        rt.validate(t, GROUPS, HOSTS)


def test_canary_steps_on_a_blue_green_router_are_refused():
    t = kube_target(kubernetes={"namespace": "codex", "router": {"type": "blue-green"}})
    assert rt.plan(t, GROUPS, HOSTS, canary_weights=[0, 100])[0]["weights"]["100"]["codex-canary"] == 100
    with pytest.raises(rt.TargetError) as exc:
        rt.plan(t, GROUPS, HOSTS, canary_weights=[0, 100, 25], weights_field="rollout_canary.steps")
    assert "rollout_canary.steps: a canary share of 25 % on router blue-green" in str(exc.value)
