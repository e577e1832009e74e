# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for the metric gate tests: a real exporter process and a real Prometheus (1 s scrape, loopback)."""
import json
import os
import subprocess
import sys
import time

import pytest

from demo.stack.ports import port_open
from demo.stack.prometheus import Prometheus

from gatekit import COLLECTIONS, HEALTHY, PLAYBOOK_BIN, Exporter, wait_for_data


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """One exporter ('app', service=shop, versions v1 and v2) and one 'doomed' exporter (service=doomed), both
    scraped every second by a real Prometheus."""
    work = str(tmp_path_factory.mktemp("metrics"))
    app = Exporter(work, "app", {"v1": HEALTHY, "v2": dict(HEALTHY, error_rate=0.01)}).start()
    doomed = Exporter(work, "doomed", {"v1": HEALTHY}).start()
    prom = Prometheus(os.path.join(work, "prometheus"),
                      {"app": [(app.target, {"service": "shop"})], "doomed": [(doomed.target, {"service": "doomed"})]})
    prom.start()
    try:
        for svc in ("shop", "doomed"):
            wait_for_data(prom.url, 'sum(rate(app_requests_total{service="%s"}[3s])) > 0' % svc)
        yield {"prometheus": prom, "app": app, "doomed": doomed, "work": work}
    finally:
        prom.stop()
        app.stop()
        doomed.stop()
        for port in (prom.port, app.port, doomed.port):
            assert not port_open(port), "port %d still open" % port


class PlaybookRun:
    def __init__(self, proc, elapsed):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.elapsed = elapsed
        self.doc = None
        try:
            self.doc = json.loads(proc.stdout)
        except ValueError:
            pass

    def task(self, name):
        """Result of the task called ``name`` on localhost (json callback)."""
        assert self.doc is not None, "no JSON output:\n%s\n%s" % (self.stdout[-3000:], self.stderr[-3000:])
        for play in self.doc["plays"]:
            for task in play["tasks"]:
                if task["task"]["name"] == name:
                    return task["hosts"]["localhost"]
        return None

    def __repr__(self):
        return "rc=%s\nstdout:\n%s\nstderr:\n%s" % (self.rc, self.stdout[-4000:], self.stderr[-2000:])


@pytest.fixture
def playbook(tmp_path):
    """Run a playbook of ``tasks`` on localhost (ansible_connection=local) through ansible-playbook."""

    def run(tasks, extra_args=(), json_output=True, timeout=180):
        play = [{"name": "metric gates", "hosts": "localhost", "gather_facts": False, "tasks": tasks}]
        path = tmp_path / ("play-%d.yml" % int(time.monotonic() * 1000))
        path.write_text(json.dumps(play, indent=1))
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOWS="1", ANSIBLE_FORCE_COLOR="0",
                   ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
                   ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-local"),
                   ANSIBLE_HOME=str(tmp_path / "ansible-home"), ANSIBLE_RETRY_FILES_ENABLED="0",
                   PYTHONDONTWRITEBYTECODE="1")
        if json_output:
            env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.builtin.json"
        cmd = [PLAYBOOK_BIN, "-i", "localhost,", "-e", "ansible_connection=local", str(path)] + list(extra_args)
        t0 = time.monotonic()
        proc = subprocess.run(cmd, env=env, cwd=str(tmp_path), capture_output=True, text=True, timeout=timeout,
                              check=False)
        return PlaybookRun(proc, time.monotonic() - t0)

    return run
