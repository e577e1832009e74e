# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""stagegate.rollout.rollout_target through ansible-playbook, with an inventory written the way docs/targets.md
tells a user to, against a real HAProxy whose backend has one server per app host and slot.

A good target gives the app hosts, their servers and per-step weights; bad ones (unknown kind, no app hosts,
missing or unknown load-balancer host, a canary server that is not in the backend) fail before anything
changes, naming the field; HAProxy's weights are the same before and after."""
import pytest
import yaml

from tests.integration.haproxy.haproxy_kit import LB, Backends
from tests.integration.playbook_run import run_playbook

SERVERS = ["app1_stable", "app1_canary", "app2_stable", "app2_canary"]
PLAY = """
- name: Check the rollout target
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Validate the target against the inventory
      stagegate.rollout.rollout_target:
        target: "{{ rollout_target }}"
        groups: "{{ groups }}"
        hosts: "{{ groups.all }}"

    - name: Read the HAProxy backend on the load-balancer host
      stagegate.rollout.haproxy_traffic:
        socket: "{{ rollout_target.load_balancer.socket }}"
        backend: "{{ rollout_target.load_balancer.backend }}"
      delegate_to: "{{ rollout_target.load_balancer.host }}"
      register: lb

    - name: Check the servers against the backend and derive the plan
      stagegate.rollout.rollout_target:
        target: "{{ rollout_target }}"
        groups: "{{ groups }}"
        hosts: "{{ groups.all }}"
        backend_servers: "{{ lb.before | list }}"
        canary_weights: [10, 50]
        batches: [1, "100%"]
"""
PLAN = "Check the servers against the backend and derive the plan"


@pytest.fixture(scope="module")
def lb(tmp_path_factory):
    backends = Backends(SERVERS).start()
    h = LB(str(tmp_path_factory.mktemp("haproxy")), backends, {s: (100 if "stable" in s else 0) for s in SERVERS})
    h.start()
    yield h
    h.stop()
    backends.stop()


def target(lb, **over):
    t = {"kind": "hosts", "name": "codex",
         "hosts": {"group": "app", "command": "/opt/codex/{version}/bin/codex --port {port}",
                   "ports": {"stable": 8101, "canary": 8102}},
         "load_balancer": {"host": "localhost", "socket": lb.socket_path, "backend": "app"},
         "metrics": {"provider": {"url": "http://127.0.0.1:9", "password": "prom-secret", "username": "ops"},
                     "requests": "http_requests_total"}}
    for key, value in over.items():
        section, dummy, field = key.partition("__")
        if field:
            t[section] = dict(t[section], **{field: value})
        elif value is None:
            t.pop(section)
        else:
            t[section] = value
    return t


def run(tmp_path, rollout_target, app_hosts=("app1", "app2")):
    inv = tmp_path / "my-site"
    (inv / "group_vars" / "all").mkdir(parents=True)
    hosts = {"all": {"children": {"app": {"hosts": {h: {"ansible_connection": "local"} for h in app_hosts}}}}}
    (inv / "hosts.yml").write_text(yaml.safe_dump(hosts))
    (inv / "group_vars" / "all" / "target.yml").write_text(yaml.safe_dump({"rollout_target": rollout_target}))
    (tmp_path / "play.yml").write_text(PLAY)
    run = run_playbook(tmp_path / "play.yml", tmp_path, inventory=inv, verbosity=3)  # -vvv: no secret even there
    assert "prom-secret" not in run.output
    return run.rc, (run.task(PLAN) if run.rc == 0 else None), run.output


def test_a_good_target_gives_hosts_servers_weights_and_batches(tmp_path, lb):
    rc, plan, text = run(tmp_path, target(lb))
    assert rc == 0, text[-3000:]
    assert plan["app_hosts"] == ["app1", "app2"]
    assert plan["servers"]["app2"] == {"stable": "app2_stable", "canary": "app2_canary"}
    assert plan["weights"]["10"] == {"app1_canary": 10, "app1_stable": 90, "app2_canary": 10, "app2_stable": 90}
    assert plan["host_batches"] == [["app1"], ["app2"]]
    assert "password" not in plan["target"]["metrics"]["provider"]


@pytest.mark.parametrize("over,hosts,expected", [
    ({"kind": "vm"}, ("app1", "app2"), "value of kind must be one of: hosts, kubernetes, got: vm"),
    ({}, (), "rollout_target.hosts.group: group 'app' has no hosts"),
    ({"hosts__group": "web"}, ("app1",), "rollout_target.hosts.group: 'web' is not a group of the inventory"),
    ({"load_balancer__host": "lb9"}, ("app1", "app2"), "rollout_target.load_balancer.host: 'lb9' is not a host"),
    ({"load_balancer__servers": {"app1": {"stable": "app1_stable", "canary": "app1_canary"},
                                 "app2": {"stable": "app2_stable", "canary": "app2_green"}}}, ("app1", "app2"),
     "canary server 'app2_green' of host app2 not in HAProxy backend 'app'"),
    ({"load_balancer": {"socket": "/run/x.sock", "backend": "app"}}, ("app1", "app2"),
     "missing required arguments: host found in load_balancer"),
], ids=["unknown kind", "no app hosts", "unknown group", "unknown LB host", "canary server not in the backend", "missing LB host"])
def test_bad_targets_fail_before_any_change_naming_the_field(tmp_path, lb, over, hosts, expected):
    before = lb.weights()
    rc, plan, text = run(tmp_path, target(lb, **over), app_hosts=hosts)
    assert rc != 0 and plan is None
    assert expected in text, text[-3000:]
    assert lb.weights() == before
