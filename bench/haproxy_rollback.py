# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""HAProxy rollback and blue-green benchmark (real HAProxy, real HTTP servers, loopback).

``.venv/bin/python bench/haproxy_rollback.py [--quick]``

Set-up (fixed): HAProxy (Debian 2.6) with backend ``app``: stable s1, s2 and
canary c1, each a Python HTTP server on loopback; health checks every 500 ms.

1. Rollback, canary at 10 % (weights 45/45/10) -> canary weight 0:
   * module via ansible-playbook: ``stagegate.rollout.haproxy_traffic`` with
     groups stable [s1, s2], canary [c1] and split stable 100 / canary 0, run by
     ``ansible-playbook`` (ansible_connection=local).  Reported: ``elapsed_ms``
     measured inside the module (start of its work -> HAProxy answered the
     change line, whose read-back shows weight 0), the playbook's wall time,
     and the time from launching ansible-playbook until an independent
     runtime-API poller (one ``show servers state`` session every ~1 ms) saw
     canary weight 0.
   * the same code in-process (``haproxy_runtime.change_traffic``, read +
     validate + apply + verify, no Ansible).
   * raw runtime API: one session ``set server app/c1 weight 0`` (connect, send,
     read HAProxy's answer) with the collection's ``RuntimeClient`` and nothing
     else (no read-back, no validation).
2. Fast abort, canary at 10 % -> the judge's fail verdict -> canary weight 0: ``stagegate.rollout.canary_judge``
   via ansible-playbook with counts that fail at the first look and ``on_fail`` (the weights 50/50/0).
   Reported: ``ms_after_verdict`` measured inside the module (its verdict -> HAProxy's answer to the change),
   and verdict -> the independent poller's first sight of weight 0 (both epoch clocks of this machine).
3. Blue-green flip under load: two client threads send requests back to back
   (each on a new connection) while the module (via ansible-playbook) flips
   stable 100 / canary 0 <-> stable 0 / canary 100; failed requests (non-2xx or
   connection errors) are counted over the whole run, and every client's
   sequence of answers must switch side exactly once per flip.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for p in (ROOT, os.path.join(ROOT, ".collections")):
    if p not in sys.path:
        sys.path.insert(0, p)

from ansible_collections.stagegate.rollout.plugins.module_utils import haproxy_runtime as hr  # noqa: E402
from tests.integration.haproxy.haproxy_kit import LB, Backends, Load, run_module  # noqa: E402

GROUPS = {"stable": ["s1", "s2"], "canary": ["c1"]}
CANARY_10 = {"s1": 45, "s2": 45, "c1": 10}
BAD_COUNTS = {"baseline": {"requests": 20000, "errors": 10}, "canary": {"requests": 20000, "errors": 400}}
FULL = {"module_runs": 20, "inproc_runs": 200, "raw_runs": 500, "flips": 10, "load_clients": 2, "settle_s": 0.5}
QUICK = {"module_runs": 4, "inproc_runs": 50, "raw_runs": 100, "flips": 2, "load_clients": 2, "settle_s": 0.3}


def pct(values, q):
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary(values):
    return {"n": len(values), "median": statistics.median(values), "p95": pct(values, 0.95), "max": max(values)}


class Watcher:
    """Polls ``show servers state app`` in a loop; records when c1's weight was first seen at 0."""

    def __init__(self, lb):
        self.lb = lb
        self.seen_zero = None
        self.seen_zero_epoch = None
        self.polls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        client = hr.RuntimeClient(self.lb.socket_path, timeout=2)
        while not self._stop.is_set():
            try:
                w = hr.read_servers(client, "app")["c1"]["weight"]
            except (hr.HAProxyError, ValueError, KeyError):
                continue
            self.polls += 1
            if w == 0 and self.seen_zero is None:
                self.seen_zero = time.perf_counter()
                self.seen_zero_epoch = time.time()
            time.sleep(0.001)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(5)


def bench_rollback(lb, work, cfg):
    rows = {}
    # module via ansible-playbook
    inside, wall, observed = [], [], []
    for i in range(cfg["module_runs"]):
        lb.set_weights(CANARY_10)
        watcher = Watcher(lb).start()
        time.sleep(0.02)
        t0 = time.perf_counter()
        res, w = run_module(os.path.join(work, "rb%d" % i), {
            "socket": lb.socket_path, "backend": "app", "groups": GROUPS, "split": {"stable": 100, "canary": 0}})
        watcher.stop()
        if res.get("failed") or lb.weights()["c1"] != 0:
            raise RuntimeError("rollback run %d failed: %s" % (i, res.get("msg")))
        inside.append(res["elapsed_ms"])
        wall.append(w * 1000.0)
        observed.append((watcher.seen_zero - t0) * 1000.0)
    rows["module via ansible-playbook: elapsed_ms inside the module"] = summary(inside)
    rows["module via ansible-playbook: launch -> poller sees weight 0"] = summary(observed)
    rows["module via ansible-playbook: playbook wall time"] = summary(wall)
    # in-process library call
    lib = []
    for i in range(cfg["inproc_runs"]):
        lb.set_weights(CANARY_10)
        t0 = time.perf_counter()
        res = hr.change_traffic(lb.socket_path, "app", groups=GROUPS, split={"stable": 100, "canary": 0})
        lib.append((time.perf_counter() - t0) * 1000.0)
        assert res["after"]["c1"]["weight"] == 0
    rows["change_traffic in-process (read, validate, apply, verify)"] = summary(lib)
    # raw runtime API
    raw = []
    for i in range(cfg["raw_runs"]):
        lb.set_weights(CANARY_10)
        t0 = time.perf_counter()
        hr.RuntimeClient(lb.socket_path, timeout=5).execute("set server app/c1 weight 0")   # one session, nothing else
        raw.append((time.perf_counter() - t0) * 1000.0)
    assert lb.weights()["c1"] == 0
    rows["raw runtime API: one 'set server app/c1 weight 0' session"] = summary(raw)
    return rows


def bench_fast_abort(lb, work, cfg):
    """The judge decides fail and writes weight 0 itself (on_fail): verdict -> weight 0, in milliseconds."""
    inside, observed = [], []
    for i in range(cfg["module_runs"]):
        lb.set_weights(CANARY_10)
        watcher = Watcher(lb).start()
        time.sleep(0.02)
        res, dummy = run_module(os.path.join(work, "abort%d" % i), dict(BAD_COUNTS, on_fail={
            "socket": lb.socket_path, "backend": "app", "weights": {"s1": 50, "s2": 50, "c1": 0}}),
            module="stagegate.rollout.canary_judge")
        watcher.stop()
        abort = res.get("on_fail") or {}
        if res.get("verdict") != "fail" or not abort.get("applied") or watcher.seen_zero is None:
            raise RuntimeError("fast abort run %d failed: %s" % (i, res.get("msg") or abort))
        inside.append(abort["ms_after_verdict"])
        observed.append((watcher.seen_zero_epoch - abort["decided_at"]) * 1000.0)
    return {"judge via ansible-playbook: ms_after_verdict inside the module": summary(inside),
            "judge via ansible-playbook: verdict -> poller sees weight 0": summary(observed)}


def bench_flip(lb, work, cfg):
    lb.set_weights({"s1": 50, "s2": 50, "c1": 0})
    load = Load(lb.port, clients=cfg["load_clients"]).start()
    flips = []
    time.sleep(cfg["settle_s"])
    for i in range(cfg["flips"]):
        split = {"stable": 0, "canary": 100} if i % 2 == 0 else {"stable": 100, "canary": 0}
        res, wall = run_module(os.path.join(work, "flip%d" % i), {
            "socket": lb.socket_path, "backend": "app", "groups": GROUPS, "split": split})
        if res.get("failed"):
            load.stop()
            raise RuntimeError("flip %d failed: %s" % (i, res.get("msg")))
        flips.append(res["elapsed_ms"])
        time.sleep(cfg["settle_s"])
    load.stop()
    requests = load.all
    failed = load.failed()
    switches = []
    for res_one in load.results:
        sides = ["canary" if who == "c1" else "stable" for (t0, t1, status, who) in res_one if status == 200]
        switches.append(sum(1 for a, b in zip(sides, sides[1:]) if a != b))
    return {"flips": cfg["flips"], "requests": len(requests), "failed": len(failed),
            "duration_s": requests[-1][1] - requests[0][0], "switches_per_client": switches,
            "flip_ms": summary(flips)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    ap.add_argument("--quick", action="store_true", help="fewer runs (a smoke test)")
    args = ap.parse_args(argv if argv is not None else sys.argv[1:])
    cfg = QUICK if args.quick else FULL
    if not shutil.which("haproxy"):
        print("haproxy not found (apt-get install haproxy); skipping")
        return 0
    work = tempfile.mkdtemp(prefix="haproxy-bench-")
    backends = Backends(["s1", "s2", "c1"]).start()
    lb = LB(os.path.join(work, "haproxy"), backends, {"s1": 50, "s2": 50, "c1": 0}).start()
    try:
        import subprocess
        version = subprocess.run(["haproxy", "-v"], capture_output=True, text=True, check=False).stdout.split("\n")[0]
        t_start = time.perf_counter()
        load_before = os.getloadavg()[0]
        rb = bench_rollback(lb, work, cfg)
        fa = bench_fast_abort(lb, work, cfg)
        fl = bench_flip(lb, work, cfg)
        load_after = os.getloadavg()[0]
        took = time.perf_counter() - t_start
    finally:
        lb.stop()
        backends.stop()
        shutil.rmtree(work, ignore_errors=True)

    print("\n%s; %d cores, load average %.1f before / %.1f after; parameters %s; %.0f s\n"
          % (version, os.cpu_count() or 0, load_before, load_after, cfg, took))
    print("Rollback: canary at 10 % (weights 45/45/10) -> canary weight 0 (milliseconds)\n")
    print("| path | runs | median | p95 | max |")
    print("|---|---:|---:|---:|---:|")
    for name, s in rb.items():
        print("| %s | %d | %.2f | %.2f | %.2f |" % (name, s["n"], s["median"], s["p95"], s["max"]))
    print("\nFast abort: canary at 10 % -> the judge's fail verdict -> canary weight 0 (milliseconds)\n")
    print("| path | runs | median | p95 | max |")
    print("|---|---:|---:|---:|---:|")
    for name, s in fa.items():
        print("| %s | %d | %.2f | %.2f | %.2f |" % (name, s["n"], s["median"], s["p95"], s["max"]))
    print("\nBlue-green flip under load (module via ansible-playbook, %d clients back to back)\n"
          % cfg["load_clients"])
    print("| flips | requests | failed requests | side switches seen per client | flip elapsed_ms median | "
          "p95 | max |")
    print("|---:|---:|---:|---|---:|---:|---:|")
    f = fl["flip_ms"]
    print("| %d | %d | %d | %s | %.2f | %.2f | %.2f |" % (
        fl["flips"], fl["requests"], fl["failed"], ", ".join(str(x) for x in fl["switches_per_client"]),
        f["median"], f["p95"], f["max"]))
    ok = fl["failed"] == 0 and all(x == fl["flips"] for x in fl["switches_per_client"])
    target = rb["module via ansible-playbook: elapsed_ms inside the module"]["max"] < 100
    abort_target = fa["judge via ansible-playbook: verdict -> poller sees weight 0"]["median"] <= 100
    print("\ntarget weight 0 < 100 ms inside the module: %s; fast abort verdict -> weight 0 <= 100 ms (median): %s; "
          "flips lost no request and switched cleanly: %s"
          % ("met" if target else "MISSED", "met" if abort_target else "MISSED", "yes" if ok else "NO"))
    target = target and abort_target
    return 0 if ok and target else 1


if __name__ == "__main__":
    sys.exit(main())
