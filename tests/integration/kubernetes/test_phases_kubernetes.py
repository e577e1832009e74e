# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The four FQCN phase playbooks on a user's ``kind: kubernetes`` inventory, against the kmock Kubernetes
emulator with the real Helm 3 binary, and a real Prometheus.

A good release, v2, goes install (v1) -> staging -> canary -> production -> advanced: the slot releases, the
HTTPRoute's weights at each step, the flags in each slot's ConfigMap, the stable release's version at the end
and the canary scaled to 0. A bad release, v3 (20 % errors once it takes traffic), is rolled back at the canary:
the router's canary weight 0 before anything else, the canary release scaled to 0 with the stable flags, the
ledger verifying; the judging module wrote that weight 0 itself the moment it decided (the fast abort). A
kubernetes target that is not right is refused before any request reaches the cluster.

What the emulator cannot show (kube_emulator.py): no pod runs, no controller reads the HTTPRoute (nothing is
routed), there are no probes, and the Deployment controller is a stand-in that reports ready. The service's
metrics come from a stand-in exporter in this file whose numbers the test controls: it serves
``http_requests_total{track, code}`` split by the HTTPRoute's live weights, with the error ratio the test sets
for the version each Deployment runs (its ``app.kubernetes.io/version`` label), and no requests for a slot
scaled to 0; Prometheus scrapes it every second and the judge and gates query Prometheus as on hosts.
"""
import http.server
import json
import os
import sys
import threading
import time

import pytest
import yaml

from demo.run_demo import verify_ledger
from demo.stack.ports import free_port
from demo.stack.prometheus import Prometheus
from kube_emulator import EmulatorThread
from kube_kit import VENV_BIN, helm_binary, helm_env
from tests.integration.example_check import check_play
from tests.integration.playbook_run import run_playbook

NAMESPACE = "codex"
GW = "gateway.networking.k8s.io"
# the error ratio of each version once it takes traffic (v3 is the bad release)
ERRORS = {"v1": 0.002, "v2": 0.002, "v3": 0.2}
SCHEMA = {
    "PUBLISH_ENABLED": {"type": "bool", "default": True, "description": "kill switch"},
    "PUBLISH_PORTAL": {"type": "enum", "choices": ["build-only", "external"], "default": "build-only",
                       "min_phase": "canary", "description": "where it publishes"},
    "GRAPH_API_ENABLED": {"type": "bool", "default": False, "min_phase": "advanced", "description": "graph API"},
}


class StandInExporter:
    """http_requests_total per track and code, advanced at every scrape from the cluster's live state."""

    def __init__(self, emulator, rate=3000.0):
        self.emulator, self.rate = emulator, rate
        self.counts = {(t, c): 0.0 for t in ("stable", "canary") for c in ("200", "500")}
        self.last = time.monotonic()
        self.lock = threading.Lock()
        exporter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                body = exporter.scrape().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def slot(self, track):
        d = self.emulator.get("deployments", "codex-%s" % track, group="apps", namespace=NAMESPACE)
        if not d or not d["spec"].get("replicas"):
            return None
        return d["metadata"]["labels"].get("app.kubernetes.io/version")

    def canary_share(self):
        route = self.emulator.get("httproutes", "codex", group=GW, namespace=NAMESPACE)
        if not route:
            return 0.0
        refs = dict((r["name"], r.get("weight", 1)) for r in route["spec"]["rules"][0]["backendRefs"])
        total = refs.get("codex-stable", 0) + refs.get("codex-canary", 0)
        return refs.get("codex-canary", 0) / float(total) if total else 0.0

    def scrape(self):
        with self.lock:
            now = time.monotonic()
            dt, self.last = now - self.last, now
            share = self.canary_share()
            for track, part in (("stable", 1.0 - share), ("canary", share)):
                version = self.slot(track)
                if version is None or part <= 0:
                    continue
                n = self.rate * part * dt
                self.counts[(track, "500")] += n * ERRORS[version]
                self.counts[(track, "200")] += n * (1 - ERRORS[version])
            lines = ["# TYPE http_requests_total counter"]
            lines += ['http_requests_total{track="%s",code="%s"} %d' % (t, c, int(v)) for (t, c), v in sorted(self.counts.items())]
            return "\n".join(lines) + "\n"


class Cluster:
    """The emulator, the exporter, Prometheus and a user's inventory for them; ``play`` runs a FQCN playbook."""

    def __init__(self, workdir):
        self.workdir = workdir
        os.makedirs(str(workdir / "emulator"))
        self.emulator = EmulatorThread(workdir / "emulator").start()
        self.exporter = StandInExporter(self.emulator).start()
        self.prometheus = Prometheus(str(workdir / "prometheus"),
                                     {"codex": [("127.0.0.1:%d" % self.exporter.port, {})]}).start()
        self.state = workdir / "state"
        self.ledger = self.state / "ledger.jsonl"
        self.inventory = workdir / "my-cluster"
        self.env = helm_env(workdir, self.emulator.kubeconfig)
        self.write_inventory()

    def target(self, **kubernetes):
        return {
            "kind": "kubernetes", "name": "codex",
            "kubernetes": dict({
                "namespace": NAMESPACE, "kubeconfig": str(self.emulator.kubeconfig), "helm_binary": helm_binary(),
                "router": {"type": "gateway-api", "parent_refs": [{"name": "public", "namespace": "gateway-system"}]},
                "replicas": {"stable": 2, "canary": 1}, "wait_timeout": 30,
                "values": {"image": {"repository": "registry.example.invalid/codex"}},
            }, **kubernetes),
            "metrics": {"provider": {"type": "prometheus", "url": self.prometheus.url},
                        "requests": "http_requests_total", "selector": 'job="codex"',
                        "stable_selector": 'track="stable"', "canary_selector": 'track="canary"'},
        }

    def write_inventory(self, **kubernetes):
        gv = self.inventory / "group_vars" / "all"
        os.makedirs(str(gv), exist_ok=True)
        (self.inventory / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {
            "ansible_connection": "local", "ansible_python_interpreter": os.path.join(VENV_BIN, "python")}}}}))
        (gv / "target.yml").write_text(yaml.safe_dump({"rollout_target": self.target(**kubernetes)}))
        (gv / "rollout.yml").write_text(yaml.safe_dump({
            "rollout_state_dir": str(self.state), "rollout_ledger_path": str(self.ledger), "rollout_flag_schema": SCHEMA,
            "rollout_install_flags": {"PUBLISH_ENABLED": True, "PUBLISH_PORTAL": "external"},
            "rollout_staging": {"flags": {"PUBLISH_PORTAL": "build-only"}, "bake_seconds": 2},
            "rollout_canary": {"flags": {"PUBLISH_PORTAL": "external"},
                               "thresholds": {"error_rate": 0.05},
                               "steps": [{"weight": 20, "analysis_seconds": 10}, {"weight": 50, "analysis_seconds": 10},
                                         {"weight": 100, "analysis_seconds": 3, "judge": False}],
                               "judge": {"alpha": 0.01, "interval": 2}},
            "rollout_production": {"flags": {"PUBLISH_PORTAL": "external"}, "batches": ["100%"], "analysis_seconds": 5,
                                   "thresholds": {"error_rate": 0.01}},
            "rollout_advanced": {"flags": {"PUBLISH_PORTAL": "external", "GRAPH_API_ENABLED": True},
                                 "batches": ["100%"], "analysis_seconds": 5, "thresholds": {"error_rate": 0.01}},
        }))

    def play(self, name, version, timeout=600, extra=()):
        run = run_playbook("stagegate.rollout.%s" % name, self.workdir, inventory=self.inventory, callback=None,
                           env=self.env, timeout=timeout,
                           extra_args=["-e", "rollout_version=%s" % version, "-e", "rollout_auto_approve=true"]
                           + list(extra))
        return run.rc, run.output

    def stop(self):
        self.prometheus.stop()
        self.exporter.stop()
        self.emulator.stop()

    # what the cluster holds
    def deployment(self, slot):
        return self.emulator.get("deployments", "codex-%s" % slot, group="apps", namespace=NAMESPACE)

    def version(self, slot):
        d = self.deployment(slot)
        return (d["metadata"]["labels"]["app.kubernetes.io/version"], d["spec"]["replicas"]) if d else None

    def flags(self, slot):
        return self.emulator.get("configmaps", "codex-%s-flags" % slot, namespace=NAMESPACE)["data"]

    def route_weights(self):
        return [route_weights(v) for v in self.emulator.history("httproutes", "codex", group=GW, namespace=NAMESPACE)
                if v is not None]

    def entries(self, release, phase):
        with open(str(self.ledger), encoding="utf-8") as fh:
            return [e for e in map(json.loads, fh) if (e["release"], e["phase"]) == (release, phase)]


def route_weights(route):
    refs = dict((r["name"], r.get("weight", 1)) for r in route["spec"]["rules"][0]["backendRefs"])
    return refs["codex-stable"], refs["codex-canary"]


def changes(seq):
    out = []
    for item in seq:
        if not out or out[-1] != item:
            out.append(item)
    return out


def assert_ok(rc, out):
    assert rc == 0, out[-6000:]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("phases-kubernetes"))
    try:
        yield c
    finally:
        c.stop()


def test_a_good_release_goes_through_the_four_phases(cluster):
    rc, out = cluster.play("install", "v1")
    assert_ok(rc, out)
    assert cluster.version("stable") == ("v1", 2)
    assert cluster.route_weights()[-1] == (100, 0)
    assert cluster.flags("stable") == {"PUBLISH_ENABLED": "true", "PUBLISH_PORTAL": "external", "GRAPH_API_ENABLED": "false"}

    rc, out = cluster.play("staging", "v2")
    assert_ok(rc, out)
    # the build-only version ran in the canary release, then was scaled to 0; no traffic went to it
    assert cluster.version("canary") == ("v2", 0)
    assert cluster.flags("canary")["PUBLISH_PORTAL"] == "build-only"
    assert set(cluster.route_weights()) == {(100, 0)}

    rc, out = cluster.play("canary", "v2")
    assert_ok(rc, out)
    assert changes(cluster.route_weights()) == [(100, 0), (80, 20), (50, 50), (0, 100)]
    assert cluster.version("canary") == ("v2", 1) and cluster.version("stable") == ("v1", 2)
    assert cluster.flags("canary")["PUBLISH_PORTAL"] == "external"
    judged = [e for e in cluster.entries("v2", "canary") if e["event"] == "judge"]
    # the judge looked at each judged step, fed by the canary's share of the route (proof of a pass needs more
    # requests than 10 s give: an inconclusive step goes on when its gates pass, the step's default policy)
    assert [e["evidence"]["weight"] for e in judged] == [20, 50], judged
    assert all(e["decision"] in ("continue", "promote_if_gates_pass") for e in judged), judged
    assert all(e["evidence"]["errors"]["canary_requests"] > 0 for e in judged), judged
    assert [e["event"] for e in cluster.entries("v2", "canary")][-1] == "promote"

    for phase in ("production", "advanced"):
        rc, out = cluster.play(phase, "v2")
        assert_ok(rc, out)
        gates = [e for e in cluster.entries("v2", phase) if e["event"] == "gate"]
        assert gates and all(e["decision"] == "pass" for e in gates), gates
        assert [e["event"] for e in cluster.entries("v2", phase)][-1] == "promote"
    # v2 is the stable release with the advanced flags, the canary is scaled to 0, all the traffic on stable
    assert cluster.version("stable") == ("v2", 2)
    assert cluster.version("canary")[1] == 0
    assert cluster.route_weights()[-1] == (100, 0)
    assert cluster.flags("stable") == {"PUBLISH_ENABLED": "true", "PUBLISH_PORTAL": "external", "GRAPH_API_ENABLED": "true"}
    assert verify_ledger(str(cluster.ledger))["verified"]
    # stagegate.rollout.status reads the same from the cluster and the ledger
    before = [r for r in cluster.emulator.requests() if r["method"] not in ("GET",)]
    rc, out = cluster.play("status", "v2")
    assert_ok(rc, out)
    assert [r for r in cluster.emulator.requests() if r["method"] not in ("GET",)] == before, "status wrote to the cluster"
    report = "".join(out.split())  # the debug output of the report, without its indentation
    assert '"hosts":{"localhost":{"canary":null,"stable":"v2"}}' in report, out[-3000:]
    assert '"weights":{"codex-canary":0,"codex-stable":100}' in report, out[-3000:]


def test_a_bad_release_is_rolled_back_at_the_canary_weight_0_first(cluster):
    stable_flags = cluster.flags("stable")
    rc, out = cluster.play("staging", "v3")
    assert_ok(rc, out)
    before = len(cluster.emulator.requests())
    rc, out = cluster.play("canary", "v3")
    assert rc != 0 and "rolled back" in out, out[-6000:]
    entries = cluster.entries("v3", "canary")
    events = [e["event"] for e in entries]
    assert "rollback" in events and "promote" not in events, events
    failed = [e for e in entries if e["event"] in ("judge", "gate") and e["decision"] == "rollback"]
    assert failed, events
    # the fast abort: whichever decided fail wrote the router's canary weight 0 itself (one JSON patch), before
    # its task returned
    abort = failed[0]["evidence"]["fast_abort"]
    assert abort and abort["applied"] and abort["weights"] == {"codex-stable": 100, "codex-canary": 0}, failed[0]
    assert abort["ms_after_verdict"] <= 1000, abort
    sys.stderr.write("fast abort on the cluster: %s ms after the verdict\n" % abort["ms_after_verdict"])
    rollback = next(e for e in entries if e["event"] == "rollback")
    assert rollback["evidence"]["left"] == [], rollback
    # the router's canary weight 0 first, then the canary release scaled to 0 with the stable release's flags
    requests = cluster.emulator.requests()[before:]
    route_patches = [r for r in requests if r["plural"] == "httproutes" and r["method"] == "PATCH"]
    weights = [(op["path"].rsplit("/", 2)[-2], op["value"]) for r in route_patches for op in r["data"] if op["op"] == "add"]
    assert weights[-2:] == [("0", 100), ("1", 0)], weights
    zero_at = route_patches[-1]["id"]
    scaled = [r for r in requests if r["plural"] == "deployments" and r["name"] == "codex-canary"
              and r["method"] in ("PUT", "PATCH") and r["id"] > zero_at]
    assert scaled, "the canary release was not changed after the weight 0"
    assert not [r for r in requests if r["plural"] == "deployments" and r["name"] == "codex-canary"
                and r["method"] in ("PUT", "PATCH", "POST") and route_patches[0]["id"] < r["id"] < zero_at
                and (r["data"] or {}).get("spec", {}).get("replicas") == 0], "scaled down before the weight 0"
    assert cluster.version("canary") == ("v3", 0) and cluster.version("stable") == ("v2", 2)
    assert cluster.flags("canary") == stable_flags
    assert cluster.route_weights()[-1] == (100, 0)
    assert verify_ledger(str(cluster.ledger))["verified"]


def test_a_person_rolls_the_advanced_phase_back_the_stable_release_gets_its_flags_back(cluster):
    """stagegate.rollout.rollback of v2's advanced phase: weight 0 (already), the canary stays at 0, and the stable
    release gets back the version and flags it had before the advanced phase (production's: no graph API)."""
    rc, out = cluster.play("rollback", "v2", extra=("-e", "rollout_phase=advanced", "-e", "reason=a person decided"))
    assert_ok(rc, out)
    assert cluster.version("stable") == ("v2", 2) and cluster.version("canary")[1] == 0
    assert cluster.flags("stable") == {"PUBLISH_ENABLED": "true", "PUBLISH_PORTAL": "external", "GRAPH_API_ENABLED": "false"}
    assert cluster.route_weights()[-1] == (100, 0)
    rollback = [e for e in cluster.entries("v2", "advanced") if e["event"] == "rollback"]
    assert len(rollback) == 1 and rollback[0]["evidence"]["left"] == [], rollback
    assert verify_ledger(str(cluster.ledger))["verified"]


@pytest.mark.parametrize("over,expected", [
    ({"namespace": ""}, "rollout_target.kubernetes.namespace: required for kind kubernetes"),
    ({"router": {"type": "istio"}},
     "rollout_target.kubernetes.router.type: 'istio' is not a router (accepted: gateway-api, ingress-nginx, blue-green)"),
    ({"router": {"type": "blue-green"}}, "rollout_canary.steps: a canary share of 20 % on router blue-green"),
], ids=["no namespace", "unknown router", "weights on a blue-green router"])
def test_a_bad_kubernetes_target_is_refused_before_any_change(cluster, over, expected):
    before = (len(cluster.emulator.requests()), cluster.ledger.read_text())
    try:
        cluster.write_inventory(**over)
        rc, out = cluster.play("canary", "v4", timeout=300)
    finally:
        cluster.write_inventory()
    assert rc != 0 and expected in out, out[-4000:]
    assert (len(cluster.emulator.requests()), cluster.ledger.read_text()) == before


EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "inventories", "examples", "kubernetes")


def test_the_example_inventory_validates(tmp_path):
    """inventories/examples/kubernetes: the installed rollout_target accepts its target (one controller, the two
    slot releases, the step weights) and feature_flags every phase's flags against its schema; nothing runs
    against a cluster."""
    play = check_play(tmp_path / "plan.json")
    (tmp_path / "check.yml").write_text(json.dumps(play))
    env = helm_env(tmp_path, os.devnull)  # the collection from .collections, as the other tests here
    run = run_playbook(tmp_path / "check.yml", tmp_path, inventory=EXAMPLE, callback=None, env=env)
    assert_ok(run.rc, run.output)
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert plan["kind"] == "kubernetes" and plan["router"] == "gateway-api"
    assert plan["servers"] == {"localhost": {"stable": "codex-stable", "canary": "codex-canary"}}
    assert plan["weights"]["25"] == {"codex-canary": 25, "codex-stable": 75}
    assert plan["host_batches"] == [["localhost"]]
    # the same inventory as the hosts example but for the target block
    hosts_example = os.path.join(EXAMPLE, "..", "hosts", "group_vars", "all")
    for name in ("rollout.yml",):
        with open(os.path.join(EXAMPLE, "group_vars", "all", name), encoding="utf-8") as a, \
                open(os.path.join(hosts_example, name), encoding="utf-8") as b:
            assert a.read() == b.read(), name
