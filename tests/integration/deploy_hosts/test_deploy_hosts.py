# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""deploy_hosts against a real HAProxy 2.6 (slots blue/green pre-declared) and a real supervisord.

The tests run in order and share one host state (module fixtures): v1 in blue, v2 beside it in green at weight 0,
blue-green to v3 under load, a failing v4 never flipped, removal of v2.
"""
import os

from demo.stack.ports import free_port
from demo.stack.haproxy import runtime_command
from tests.integration.deploy_hosts.deploy_kit import Loop, get, port_open, programs, run_role, service_extra, slots

PORTS = {}


def port(version):
    return PORTS.setdefault(version, free_port())


def test_deploy_v1_check_mode_then_deploy_then_idempotent(lb, base_dir):
    extra = service_extra(base_dir, lb, "v1", port("v1"), deploy_hosts_haproxy_server="blue",
                          deploy_hosts_flags={"CODEX_PUBLISH_ENABLED": True},
                          deploy_hosts_flag_schema={"CODEX_PUBLISH_ENABLED": {"type": "bool", "default": False}})
    before = slots(lb.socket_path)
    res = run_role(extra, check=True)
    assert res.stats["changed"] > 0
    assert not os.path.exists(os.path.join(base_dir, "v1")) and not port_open(port("v1"))
    assert slots(lb.socket_path) == before

    res = run_role(extra)
    assert res.stats["changed"] > 0
    assert get(port("v1")) == (200, "v1")
    with open(os.path.join(base_dir, "v1", "service.env")) as fh:
        assert "CODEX_PUBLISH_ENABLED=true" in fh.read()
    blue = slots(lb.socket_path)["blue"]
    assert blue["port"] == port("v1") and blue["weight"] == 0 and blue["admin"] == 0
    assert programs(base_dir) == {"demo-v1": "RUNNING"}

    again = run_role(extra)
    assert again.stats["changed"] == 0, again.output[-4000:]


def test_deploy_v2_beside_v1_at_weight_0(lb, base_dir):
    runtime_command(lb.socket_path, "set server app/blue weight 100")  # v1 goes live
    res = run_role(service_extra(base_dir, lb, "v2", port("v2"), deploy_hosts_haproxy_server="green"))
    assert res.stats["changed"] > 0
    s = slots(lb.socket_path)
    assert s["green"]["port"] == port("v2") and s["green"]["weight"] == 0 and s["green"]["admin"] == 0
    assert s["blue"]["weight"] == 100
    assert get(port("v1")) == (200, "v1") and get(port("v2")) == (200, "v2")
    assert set(r[1] for r in (get(lb.frontend_port) for dummy in range(20))) == {"v1"}
    assert programs(base_dir) == {"demo-v1": "RUNNING", "demo-v2": "RUNNING"}


def test_deploy_into_a_serving_slot_is_refused(lb, base_dir):
    res = run_role(service_extra(base_dir, lb, "v9", port("v9"), deploy_hosts_haproxy_server="blue"), expect_rc=2)
    assert "takes traffic" in res.output and slots(lb.socket_path)["blue"]["port"] == port("v1")


def test_blue_green_flip_under_load_loses_no_request(lb, base_dir):
    extra = service_extra(base_dir, lb, "v3", port("v3"), deploy_hosts_action="blue_green")
    with Loop(lb.frontend_port) as load:
        run_role(extra)
    assert load.failed() == [] and len(load.results) > 50
    assert set(load.versions()) <= {"v1", "v3"} and "v3" in load.versions()
    s = slots(lb.socket_path)
    assert s["green"]["port"] == port("v3") and s["green"]["weight"] == 100
    assert s["blue"]["weight"] == 0 and s["blue"]["admin"] & 1  # maint
    assert set(r[1] for r in (get(lb.frontend_port) for dummy in range(20))) == {"v3"}
    # blue (v1) removed after the keep window: no process, no directory
    assert not port_open(port("v1")) and not os.path.exists(os.path.join(base_dir, "v1"))
    assert "demo-v1" not in programs(base_dir)
    again = run_role(extra)
    assert again.stats["changed"] == 0


def test_failing_green_is_never_flipped(lb, base_dir):
    extra = service_extra(base_dir, lb, "v4", port("v4"), deploy_hosts_action="blue_green",
                          deploy_hosts_flags={"DEMO_FAULT_CRASH_ON_START": True}, deploy_hosts_health_retries=4)
    with Loop(lb.frontend_port) as load:
        res = run_role(extra, expect_rc=2)
    assert "flip back took" in res.output, res.output[-5000:]
    assert load.failed() == [] and set(load.versions()) == {"v3"}
    s = slots(lb.socket_path)
    assert s["green"]["port"] == port("v3") and s["green"]["weight"] == 100
    assert s["blue"]["weight"] == 0 and s["blue"]["admin"] & 1
    assert "demo-v4" not in programs(base_dir) and not port_open(port("v4"))


def test_remove_old_version_leaves_no_process_and_no_directory(lb, base_dir):
    extra = service_extra(base_dir, lb, "v2", port("v2"), deploy_hosts_action="remove")
    res = run_role(extra)
    assert res.stats["changed"] > 0
    assert not port_open(port("v2")) and not os.path.exists(os.path.join(base_dir, "v2"))
    assert "demo-v2" not in programs(base_dir)
    assert not os.path.exists(os.path.join(base_dir, "supervisor", "conf.d", "demo-v2.conf"))
    assert get(lb.frontend_port) == (200, "v3")
    assert run_role(extra).stats["changed"] == 0


def test_removing_the_live_version_is_refused(lb, base_dir):
    res = run_role(service_extra(base_dir, lb, "v3", port("v3"), deploy_hosts_action="remove"), expect_rc=2)
    assert "still takes traffic" in res.output and port_open(port("v3"))
