# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers for the deploy_hosts tests: run the role, read HAProxy's slots, send traffic."""

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time

from ansible_collections.stagegate.rollout.plugins.module_utils.haproxy_client import parse_servers_state

from demo.stack.haproxy import runtime_command
from tests.integration.playbook_run import run_playbook

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
VENV_BIN = os.path.dirname(sys.executable)
PLAYBOOK = os.path.join(os.path.dirname(__file__), "deploy.yml")


def slots(sock):
    """{server: {"port": int, "weight": int, "admin": int}} from 'show servers state app'."""
    return dict((s["server"], {"port": s["port"], "weight": s["weight"], "admin": s["admin_flags"]})
                for s in parse_servers_state(runtime_command(sock, "show servers state app")))


def run_role(extra, check=False, expect_rc=0, timeout=420):
    """deploy.yml (the role on localhost) with ``extra`` through tests/integration/playbook_run.py -> PlaybookRun,
    after asserting its rc. Ansible's temp dirs go beside the role's base dir (``<base_dir>-ansible``), not into it."""
    workdir = extra["deploy_hosts_base_dir"].rstrip(os.sep) + "-ansible"
    os.makedirs(workdir, exist_ok=True)
    run = run_playbook(PLAYBOOK, workdir, extra_vars=extra, check=check, timeout=timeout)
    assert run.rc == expect_rc, "rc %d (wanted %d)\n%r" % (run.rc, expect_rc, run)
    return run


def service_extra(base_dir, lb, version, port, **kw):
    extra = {
        "deploy_hosts_service": "demo",
        "deploy_hosts_version": version,
        "deploy_hosts_port": port,
        "deploy_hosts_base_dir": base_dir,
        "deploy_hosts_command": sys.executable + " -m demo.service --env-file {env_file} --port {port} --version {version}",
        "deploy_hosts_workdir": ROOT,
        "deploy_hosts_supervisor": "supervisord",
        "deploy_hosts_supervisord_bin": os.path.join(VENV_BIN, "supervisord"),
        "deploy_hosts_supervisorctl_bin": os.path.join(VENV_BIN, "supervisorctl"),
        "deploy_hosts_haproxy_socket": lb.socket_path,
        "deploy_hosts_haproxy_backend": "app",
        "deploy_hosts_health_retries": 20,
        "deploy_hosts_health_delay": 1,
        "deploy_hosts_bluegreen_keep_seconds": 1,
    }
    extra.update(kw)
    return extra


def programs(base_dir):
    """{program: state} from 'supervisorctl status' of the role's supervisord under base_dir."""
    conf = os.path.join(base_dir, "supervisor", "supervisord.conf")
    p = subprocess.run([os.path.join(VENV_BIN, "supervisorctl"), "-c", conf, "status"], capture_output=True, check=False,
                       text=True, timeout=30)
    return dict((ln.split()[0], ln.split()[1]) for ln in p.stdout.splitlines() if ln.strip())


def get(port, path="/healthz", timeout=5.0):
    """One GET on a new connection -> (status, version or error)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read().decode("utf-8", "replace")
        try:
            return resp.status, json.loads(body).get("version")
        except ValueError:
            return resp.status, body[:80]
    except Exception as exc:  # pylint: disable=broad-except
        return 0, "%s: %s" % (type(exc).__name__, exc)
    finally:
        conn.close()


class Loop:
    """Client threads sending GET /healthz through the load balancer until stop()."""

    def __init__(self, port, clients=2):
        self.port, self.clients = port, clients
        self.results = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []

    def _run(self):
        while not self._stop.is_set():
            r = get(self.port)
            with self._lock:
                self.results.append(r)
            time.sleep(0.005)

    def __enter__(self):
        for dummy in range(self.clients):
            th = threading.Thread(target=self._run, daemon=True)
            th.start()
            self._threads.append(th)
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for th in self._threads:
            th.join(10)

    def failed(self):
        return [r for r in self.results if r[0] != 200]

    def versions(self):
        out = {}
        for status, version in self.results:
            if status == 200:
                out[version] = out.get(version, 0) + 1
        return out


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False
