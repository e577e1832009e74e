# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""deploy_hosts slot mode (deploy_hosts_instance) against a real supervisord and a real HAProxy 2.6 whose backend
declares the servers ``stable`` and ``canary`` statically at fixed ports (no runtime registration).

The tests run in order and share one host state (module fixtures): v1 into canary (check mode first, then for real,
then idempotent), stable v1, v2 into canary replacing v1, canary stopped, a prune that must leave the instances alone.
"""
import http.client
import json
import os
import re
import time

from demo.stack.ports import free_port
from tests.integration.deploy_hosts.deploy_kit import get, port_open, programs, run_role, service_extra

V1_FLAGS = {"MERMAID_GRAPHS_ENABLED": True, "CODEX_OWNERS_ENABLED": False}
V2_FLAGS = {"CODEX_OWNERS_ENABLED": True}
RECORDED = {}


def slot_extra(base_dir, lb, version, instance="canary", **kw):
    kw.setdefault("deploy_hosts_instance", instance)
    extra = service_extra(base_dir, lb, version, lb.slot_ports[instance], **kw)
    extra["deploy_hosts_command"] += " --slot {instance}"
    return extra


def health(port):
    status, body = get(port, "/healthz")
    assert status == 200, body
    return body


def fetch(port, path="/healthz"):
    """The whole JSON document (get() only returns the version)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        return json.loads(conn.getresponse().read().decode())
    finally:
        conn.close()


def read(base_dir, *parts):
    with open(os.path.join(base_dir, *parts)) as fh:
        return fh.read()


def record(base_dir, instance="canary"):
    return json.loads(read(base_dir, instance, "deploy.json"))


def conf_d(base_dir):
    return sorted(os.listdir(os.path.join(base_dir, "supervisor", "conf.d")))


def through_lb(lb, n=20):
    return set(get(lb.frontend_port)[1] for dummy in range(n))


def wait_lb(lb, want, seconds=15):
    """HAProxy's own health checks decide which static server takes requests: wait until they agree with `want`."""
    deadline = time.monotonic() + seconds
    seen = through_lb(lb)
    while seen != want and time.monotonic() < deadline:
        time.sleep(0.5)
        seen = through_lb(lb)
    return seen


def test_canary_check_mode_changes_nothing(slot_lb, base_dir):
    res = run_role(slot_extra(base_dir, slot_lb, "v1", deploy_hosts_flags=V1_FLAGS), check=True)
    assert res.stats["changed"] > 0
    assert os.listdir(base_dir) == []
    assert not port_open(slot_lb.slot_ports["canary"])


def test_canary_v1_deploy_then_idempotent(slot_lb, base_dir):
    cport = slot_lb.slot_ports["canary"]
    extra = slot_extra(base_dir, slot_lb, "v1", deploy_hosts_flags=V1_FLAGS)
    res = run_role(extra)
    assert res.stats["changed"] > 0
    doc = fetch(cport)
    assert (doc["version"], doc["slot"]) == ("v1", "canary")
    assert sorted(os.listdir(base_dir)) == ["canary", "supervisor"]
    assert programs(base_dir) == {"demo-canary": "RUNNING"}
    assert conf_d(base_dir) == ["demo-canary.conf"]
    rec = record(base_dir)
    RECORDED["v1"] = rec
    assert {k: v for k, v in rec.items() if k != "deployed_at"} == {
        "version": "v1", "port": cport, "program": "demo-canary", "instance": "canary"}
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$", rec["deployed_at"])
    env = read(base_dir, "canary", "service.env")
    assert "MERMAID_GRAPHS_ENABLED=true" in env and "CODEX_OWNERS_ENABLED=false" in env
    # HAProxy routes to the statically declared canary server; stable is not running yet
    assert wait_lb(slot_lb, {"v1"}) == {"v1"}

    files = dict((name, read(base_dir, "canary", name)) for name in ("deploy.json", "service.env"))
    pid = doc["pid"]
    again = run_role(extra)
    assert again.stats["changed"] == 0, again.output[-4000:]
    assert dict((name, read(base_dir, "canary", name)) for name in files) == files
    assert fetch(cport)["pid"] == pid


def test_v2_into_canary_replaces_v1(slot_lb, base_dir):
    cport, sport = slot_lb.slot_ports["canary"], slot_lb.slot_ports["stable"]
    res = run_role(slot_extra(base_dir, slot_lb, "v1", instance="stable"))
    assert res.stats["changed"] > 0 and health(sport) == "v1"
    assert programs(base_dir) == {"demo-canary": "RUNNING", "demo-stable": "RUNNING"}
    v1_pid = fetch(cport)["pid"]
    v1_env = read(base_dir, "canary", "service.env")

    extra = slot_extra(base_dir, slot_lb, "v2", deploy_hosts_flags=V2_FLAGS)
    chk = run_role(extra, check=True)
    assert chk.stats["changed"] > 0
    doc = fetch(cport)
    assert (doc["version"], doc["pid"]) == ("v1", v1_pid)
    assert record(base_dir) == RECORDED["v1"] and read(base_dir, "canary", "service.env") == v1_env

    res = run_role(extra)
    assert res.stats["changed"] > 0
    doc = fetch(cport)
    assert (doc["version"], doc["slot"]) == ("v2", "canary") and doc["pid"] != v1_pid
    assert health(sport) == "v1"
    # one program per slot: v2 replaced v1 in demo-canary, no demo-v2 and no v2 directory
    assert programs(base_dir) == {"demo-canary": "RUNNING", "demo-stable": "RUNNING"}
    assert conf_d(base_dir) == ["demo-canary.conf", "demo-stable.conf"]
    assert sorted(os.listdir(base_dir)) == ["canary", "stable", "supervisor"]
    env = read(base_dir, "canary", "service.env")
    assert "CODEX_OWNERS_ENABLED=true" in env and "MERMAID_GRAPHS_ENABLED" not in env
    flags = fetch(cport, "/api/flags")["flags"]
    assert flags["CODEX_OWNERS_ENABLED"] is True and flags["MERMAID_GRAPHS_ENABLED"] is False
    rec = record(base_dir)
    assert {k: v for k, v in rec.items() if k != "deployed_at"} == {
        "version": "v2", "port": cport, "program": "demo-canary", "instance": "canary"}
    assert rec["deployed_at"] > RECORDED["v1"]["deployed_at"]
    # the program section names the version even where the command would not
    assert "; instance canary: demo v2 (port %d)" % cport in read(base_dir, "supervisor", "conf.d", "demo-canary.conf")
    assert wait_lb(slot_lb, {"v1", "v2"}) == {"v1", "v2"}


def test_stop_canary_keeps_its_files(slot_lb, base_dir):
    cport, sport = slot_lb.slot_ports["canary"], slot_lb.slot_ports["stable"]
    files = dict((name, read(base_dir, "canary", name)) for name in ("deploy.json", "service.env"))
    section = read(base_dir, "supervisor", "conf.d", "demo-canary.conf")
    extra = slot_extra(base_dir, slot_lb, "", deploy_hosts_action="stop")

    chk = run_role(extra, check=True)
    assert chk.stats["changed"] > 0
    assert health(cport) == "v2" and programs(base_dir)["demo-canary"] == "RUNNING"

    res = run_role(extra)
    assert res.stats["changed"] > 0
    assert not port_open(cport)
    assert programs(base_dir) == {"demo-canary": "STOPPED", "demo-stable": "RUNNING"}
    assert dict((name, read(base_dir, "canary", name)) for name in files) == files
    assert os.path.exists(os.path.join(base_dir, "canary", "service.log"))
    assert read(base_dir, "supervisor", "conf.d", "demo-canary.conf") == section
    assert health(sport) == "v1"
    assert wait_lb(slot_lb, {"v1"}) == {"v1"}

    again = run_role(extra)
    assert again.stats["changed"] == 0, again.output[-4000:]
    assert not port_open(cport) and programs(base_dir)["demo-canary"] == "STOPPED"

    never = run_role(slot_extra(base_dir, slot_lb, "", deploy_hosts_action="stop", deploy_hosts_instance="nope"))
    assert never.stats["changed"] == 0, never.output[-4000:]
    assert "nope" not in os.listdir(base_dir) and "demo-nope" not in programs(base_dir)


def test_prune_removes_versions_not_instances(slot_lb, base_dir):
    ports = {"x1": free_port(), "x2": free_port()}
    for version in ("x1", "x2"):
        run_role(service_extra(base_dir, slot_lb, version, ports[version]))
        assert health(ports[version]) == version
    canary_files = sorted(os.listdir(os.path.join(base_dir, "canary")))
    # without the HAProxy socket no port is protected as live: only the instance rule keeps canary and stable
    res = run_role(service_extra(base_dir, slot_lb, "", 0, deploy_hosts_action="prune", deploy_hosts_instance="canary",
                                 deploy_hosts_keep_versions=1, deploy_hosts_haproxy_socket=""))
    assert res.stats["changed"] > 0
    removed = [item["__deploy_hosts_version"] for task in res.results if task["_task"].endswith(": Remove the old versions")
               for item in task.get("results", [])]
    assert removed == ["x1"], res
    assert sorted(os.listdir(base_dir)) == ["canary", "stable", "supervisor", "x2"]
    assert not port_open(ports["x1"]) and health(ports["x2"]) == "x2"
    assert sorted(os.listdir(os.path.join(base_dir, "canary"))) == canary_files
    assert programs(base_dir) == {"demo-canary": "STOPPED", "demo-stable": "RUNNING", "demo-x2": "RUNNING"}
    assert conf_d(base_dir) == ["demo-canary.conf", "demo-stable.conf", "demo-x2.conf"]
    assert health(slot_lb.slot_ports["stable"]) == "v1"
