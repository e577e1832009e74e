# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers of the metric gate tests: the exporter process, direct Prometheus queries."""
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from demo.stack.ports import free_port
from demo.stack.process import ManagedProcess

HERE = os.path.dirname(os.path.abspath(__file__))

HEALTHY = {"rps": 200, "error_rate": 0.0, "latency_ms": 100, "tail": 0.0}


class Exporter:
    """The exporter of exporter.py in its own process; ``set(version, **conf)`` changes it while it runs."""

    def __init__(self, workdir, name, versions):
        self.workdir = workdir
        self.name = name
        self.port = free_port()
        self.target = "127.0.0.1:%d" % self.port
        self.url = "http://%s/metrics" % self.target
        self.control = os.path.join(workdir, "%s-control.json" % name)
        self.conf = {v: dict(c) for v, c in versions.items()}
        self._write()
        self.proc = ManagedProcess(name, [sys.executable, os.path.join(HERE, "exporter.py"), "--port", str(self.port),
                                          "--control", self.control],
                                   os.path.join(workdir, "%s.log" % name), port=self.port)

    def _write(self):
        tmp = self.control + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(self.conf, fh)
        os.replace(tmp, self.control)

    def set(self, version, **conf):
        self.conf.setdefault(version, dict(HEALTHY)).update(conf)
        self._write()

    def reset(self, version):
        self.conf[version] = dict(HEALTHY)
        self._write()

    def start(self):
        self.proc.start()
        return self

    def stop(self):
        self.proc.stop()


def prom_query(url, query):
    """Query Prometheus directly (urllib): returns the decoded JSON body, also for errors."""
    data = urllib.parse.urlencode({"query": query}).encode()
    try:
        with urllib.request.urlopen(url + "/api/v1/query", data=data, timeout=5) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())


def wait_for_data(url, query, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = prom_query(url, query)
        if body.get("status") == "success" and body["data"]["result"]:
            return body
        time.sleep(0.25)
    raise AssertionError("Prometheus at %s has no data for %s after %ss" % (url, query, timeout))
