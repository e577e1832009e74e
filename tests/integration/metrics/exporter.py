# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small real HTTP exporter for the metric gate tests (prometheus_client start_http_server).

It simulates requests of several versions at a steady rate and exports

* ``app_requests_total{version, code}`` (counter; code 200 or 500),
* ``app_request_duration_seconds{version}`` (histogram, fine buckets around 100 ms).

What each version does is read from a JSON control file the test rewrites while
the exporter runs::

    {"v1": {"rps": 200, "error_rate": 0.0, "latency_ms": 100, "tail": 0.0, "tail_factor": 4}}

Everything is deterministic (no random numbers): errors are spread evenly
(one request fails each time the error rate adds up to 1) and latencies cycle through
100 evenly spaced values in [0.8, 1.2] x ``latency_ms``; a share ``tail`` of them is
multiplied by ``tail_factor``.  Known data, known quantiles.

    python exporter.py --port 9123 --control control.json
"""
import argparse
import json
import os
import signal
import sys
import time

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.11, 0.12, 0.13, 0.14, 0.15, 0.175, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75,
           1.0, 2.5, 5.0, 10.0)
TICK = 0.05
# a fixed permutation of 0..99, so the tail is spread through each cycle of 100 requests
ORDER = [(i * 37) % 100 for i in range(100)]


class Version:
    def __init__(self, name, requests, duration):
        self.name = name
        self.requests = requests
        self.duration = duration
        self.n = 0
        self.errors = 0
        self.carry = 0.0
        self.err_acc = 0.0
        self.conf = {}

    def step(self, dt):
        rps = float(self.conf.get("rps", 0))
        self.carry += rps * dt
        count = int(self.carry)
        self.carry -= count
        error_rate = float(self.conf.get("error_rate", 0.0))
        base = float(self.conf.get("latency_ms", 100.0)) / 1000.0
        tail = float(self.conf.get("tail", 0.0))
        factor = float(self.conf.get("tail_factor", 4.0))
        for dummy in range(count):
            self.n += 1
            # spread errors evenly from the moment the rate was set: one each time the share adds up to 1
            self.err_acc += error_rate
            if self.err_acc >= 1.0 - 1e-9:
                self.err_acc -= 1.0
                self.errors += 1
                self.requests.labels(self.name, "500").inc()
            else:
                self.requests.labels(self.name, "200").inc()
            k = ORDER[self.n % 100]
            latency = base * (0.8 + 0.4 * k / 99.0)
            if k >= 100 - round(tail * 100):
                latency *= factor
            self.duration.labels(self.name).observe(latency)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--control", required=True)
    args = ap.parse_args(argv)
    registry = CollectorRegistry()
    requests = Counter("app_requests", "Requests by version and status code", ["version", "code"], registry=registry)
    duration = Histogram("app_request_duration_seconds", "Request latency", ["version"], buckets=BUCKETS,
                         registry=registry)
    versions = {}
    mtime = None
    running = [True]
    signal.signal(signal.SIGTERM, lambda *a: running.__setitem__(0, False))
    start_http_server(args.port, addr="127.0.0.1", registry=registry)
    last = time.monotonic()
    while running[0]:
        try:
            m = os.stat(args.control).st_mtime_ns
            if m != mtime:
                with open(args.control) as fh:
                    conf = json.load(fh)
                mtime = m
                for name, c in conf.items():
                    if name not in versions:
                        versions[name] = Version(name, requests, duration)
                        requests.labels(name, "200")
                    versions[name].conf = c
        except (OSError, ValueError):
            pass
        now = time.monotonic()
        dt, last = now - last, now
        for v in versions.values():
            v.step(dt)
        time.sleep(TICK)
    return 0


if __name__ == "__main__":
    sys.exit(main())
