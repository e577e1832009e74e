# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible over real SSH to three app hosts (sshd on 127.0.0.11-13, see conftest.py).

Ping answers from every host through sshd (its log shows the key login) and a host whose sshd is stopped is
UNREACHABLE; the deploy_hosts role installs the demo service on all three in parallel, each bound to its own
address on the same port, and removes it again without leaving a process behind.
"""
import http.client
import json
import os
import re
import subprocess
import sys
import time
import types

import pytest

from tests.integration.deploy_hosts.deploy_kit import VENV_BIN, service_extra
from tests.integration.hosts.ssh_hosts import accepts, alive
from tests.integration.playbook_run import ansible_env

pytestmark = pytest.mark.slow

PORT = 8101


def ansible(tool, workdir, *args, expect_rc=0, timeout=300):
    """``tool`` (ansible, ansible-playbook) with ``args`` in the harness's environment
    (tests/integration/playbook_run.py), the default callback's output; asserts its rc."""
    p = subprocess.run([os.path.join(VENV_BIN, tool)] + list(args), env=ansible_env(workdir), cwd=str(workdir),
                       capture_output=True, text=True, timeout=timeout, check=False)
    out = p.stdout + p.stderr
    assert p.returncode == expect_rc, "%s rc %d (wanted %d)\n%s" % (tool, p.returncode, expect_rc, out[-6000:])
    return out


def inventory(hosts, tmp_path, **host_vars):
    path = tmp_path / "hosts.yml"
    inv = hosts.inventory_hosts(sys.executable)
    for name in inv:
        inv[name].update(host_vars)
    path.write_text(json.dumps({"all": {"hosts": inv}}, indent=2))  # JSON is YAML
    return str(path)


def healthz(addr, port):
    conn = http.client.HTTPConnection(addr, port, timeout=5)
    try:
        conn.request("GET", "/healthz")
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read()).get("version")
    finally:
        conn.close()


def wait_gone(pids, seconds=15):
    deadline = time.monotonic() + seconds
    while [p for p in pids if alive(p)] and time.monotonic() < deadline:
        time.sleep(0.1)
    return [p for p in pids if alive(p)]


def test_ping_reaches_every_host_over_ssh_and_a_stopped_sshd_is_unreachable(ssh_hosts, tmp_path):
    inv = inventory(ssh_hosts, tmp_path)
    out = ansible("ansible", tmp_path, "all", "-i", inv, "-f", "3", "-m", "ansible.builtin.ping")
    for name in ssh_hosts.hosts:
        assert re.search(r"^%s \| SUCCESS => " % name, out, re.M), out
        # Ansible logged in through this host's own sshd, with the generated key, as root (the login stays
        # open as the ssh control master, so a later run of this module adds no second line)
        assert re.search(r"Accepted publickey for root from 127\.\S+ port \d+ ssh2: ED25519",
                         ssh_hosts.log(name)), ssh_hosts.log(name)[-2000:]

    ssh_hosts.stop_host("app3")
    try:
        out = ansible("ansible", tmp_path, "all", "-i", inv, "-f", "3", "-m", "ansible.builtin.ping", expect_rc=4)
        assert re.search(r"^app3 \| UNREACHABLE! => ", out, re.M), out
        assert re.search(r"^app1 \| SUCCESS => ", out, re.M) and re.search(r"^app2 \| SUCCESS => ", out, re.M), out
    finally:
        ssh_hosts.start_host("app3")


@pytest.fixture
def base_root(tmp_path):
    """Per-host base dirs <tmp>/<host>/; any supervisord still running there is stopped (it stops its programs)."""
    yield tmp_path
    for pid_file in tmp_path.glob("*/supervisor/supervisord.pid"):
        try:
            pid = int(pid_file.read_text().strip())
            os.kill(pid, 15)
            wait_gone([pid])
        except (OSError, ValueError):
            pass


def test_deploy_hosts_installs_and_removes_the_demo_on_three_ssh_hosts_in_parallel(ssh_hosts, base_root):
    addrs = sorted(ssh_hosts.hosts.values())
    assert not [a for a in addrs if accepts(a, PORT)], "port %d already taken" % PORT
    extra = service_extra(str(base_root) + "/{{ inventory_hostname }}", types.SimpleNamespace(socket_path=""),
                          "v1", PORT, deploy_hosts_health_host="{{ ansible_host }}")
    extra["deploy_hosts_command"] += " --host {{ ansible_host }}"
    play = [{"name": "Demo service on every app host", "hosts": "all", "gather_facts": False, "vars": extra,
             "roles": [{"role": "stagegate.rollout.deploy_hosts"}]}]
    playbook = base_root / "deploy.yml"
    playbook.write_text(json.dumps(play, indent=2))
    inv = inventory(ssh_hosts, base_root)

    out = ansible("ansible-playbook", base_root, "-i", inv, "-f", "3", str(playbook))
    for name in ssh_hosts.hosts:
        assert re.search(r"^%s\s*: ok=\d+\s+changed=[1-9]\d*\s+unreachable=0\s+failed=0" % name, out, re.M), out
    assert [healthz(a, PORT) for a in addrs] == [(200, "v1")] * 3

    supervisorctl = os.path.join(VENV_BIN, "supervisorctl")
    supervisords, services = [], []
    for name in ssh_hosts.hosts:
        sup = base_root / name / "supervisor"
        supervisords.append(int((sup / "supervisord.pid").read_text().strip()))
        pid = subprocess.run([supervisorctl, "-c", str(sup / "supervisord.conf"), "pid", "demo-v1"],
                             capture_output=True, text=True, timeout=30, check=True).stdout.strip()
        services.append(int(pid))
    assert len(set(supervisords)) == 3 and len(set(services)) == 3 and all(alive(p) for p in supervisords + services)

    out = ansible("ansible-playbook", base_root, "-i", inv, "-f", "3", "-e", "deploy_hosts_action=remove", str(playbook))
    assert not re.search(r"unreachable=[1-9]|failed=[1-9]", out), out
    assert wait_gone(services) == [] and not [a for a in addrs if accepts(a, PORT)]
    assert not list(base_root.glob("*/v1"))
    # the role leaves supervisord running (it serves the other versions); stop it over SSH too
    conf = str(base_root) + "/{{ inventory_hostname }}/supervisor/supervisord.conf"
    ansible("ansible", base_root, "all", "-i", inv, "-f", "3", "-m", "ansible.builtin.command",
            "-a", "%s -c %s shutdown" % (supervisorctl, conf))
    assert wait_gone(supervisords) == []
