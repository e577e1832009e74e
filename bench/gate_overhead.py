# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Metric gate overhead: how long a 10-check gate evaluation takes against a local Prometheus.

Starts the deterministic test exporter (tests/integration/metrics/exporter.py, two versions at
200 req/s each) and a real Prometheus scraping it every second on loopback, then measures

* in process: ``validate_checks`` + one ``run_gate`` evaluation of ten checks (the time spent
  inside the module), with the ``prometheus`` provider and with ``prometheus_text`` scraping
  the exporter directly (its first evaluation waits the window once; reported apart);
* through Ansible: ``ansible-playbook`` (local connection) running the same gate as tasks, the
  task's wall time from the json callback next to the module's own ``elapsed``, and a
  ``ansible.builtin.ping`` task as the floor every module pays.

The ten checks are drawn with a fixed seed (quantiles, thresholds, order), so every run
measures the same gate.

Usage::

    python bench/gate_overhead.py            # 200 in-process evaluations, 10 tasks of each kind
    python bench/gate_overhead.py --quick    # 30 evaluations, 4 tasks of each kind
    python bench/gate_overhead.py --write-results   # also (re)write the section of bench/RESULTS.md

Writes bench/out/gate_overhead.json.
"""

from __future__ import absolute_import, division, print_function

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for p in (os.path.join(ROOT, ".collections"), ROOT):
    if p not in sys.path:
        sys.path.insert(0, p)

from ansible_collections.stagegate.rollout.plugins.module_utils.gate_run import run_gate  # noqa: E402
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_checks import (  # noqa: E402
    evaluate_check, validate_checks)
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_providers import build_provider  # noqa: E402
from demo.stack.ports import free_port  # noqa: E402
from demo.stack.process import ManagedProcess  # noqa: E402
from demo.stack.prometheus import Prometheus  # noqa: E402

SEED = 20261125
WINDOW = "5s"
EXPORTER = os.path.join(ROOT, "tests", "integration", "metrics", "exporter.py")
SECTION = "## Metric gate overhead"


def gate_checks(seed):
    """Ten checks like the seeds' gates, drawn with a fixed seed."""
    rng = random.Random(seed)
    sel = 'service="shop",version="${version}"'
    base = 'service="shop",version="v1"'

    def quantile(q, labels):
        return ("histogram_quantile(%s, sum by (le) (rate(app_request_duration_seconds_bucket{%s}[${window}])))"
                % (q, labels))

    err = ('(sum(rate(app_requests_total{%s,code=~"5.."}[${window}])) or vector(0)) '
           '/ sum(rate(app_requests_total{%s}[${window}]))')
    checks = [
        {"name": "error_rate", "query": err % (sel, sel), "lt": rng.choice([0.05, 0.01]),
         "samples_query": "sum(increase(app_requests_total{%s}[${window}]))" % sel, "min_samples": 100},
        {"name": "stable_error_rate", "query": err % (base, base), "lt": 0.01},
        {"name": "latency_p50_ms", "query": quantile(0.5, sel) + " * 1000", "lt": rng.choice([100, 500])},
        {"name": "latency_p90_ms", "query": quantile(0.9, sel) + " * 1000", "lt": 1000},
        {"name": "latency_p95_ms", "query": quantile(0.95, sel) + " * 1000", "lt": rng.choice([3000, 5000])},
        {"name": "latency_p99_ms", "query": quantile(0.99, sel) + " * 1000", "lt": 10000},
        {"name": "p95_vs_stable", "query": quantile(0.95, sel), "max_increase": "10%",
         "baseline_query": quantile(0.95, base)},
        {"name": "p99_over_p95", "ratio": {"numerator": quantile(0.99, sel), "denominator": quantile(0.95, sel)},
         "le": 2.0},
        {"name": "throughput_vs_stable", "query": "sum(rate(app_requests_total{%s}[${window}]))" % sel,
         "max_decrease": "5%", "baseline_query": "sum(rate(app_requests_total{%s}[${window}]))" % base},
        {"name": "requests_in_window", "query": "sum(increase(app_requests_total{%s}[${window}]))" % sel,
         "ge": rng.choice([10, 100])},
    ]
    rng.shuffle(checks)
    return checks


def queries_per_evaluation(checks):
    n = 0
    for c in checks:
        n += 2 if c.get("ratio") else 1
        n += 1 if c.get("baseline_query") else 0
        n += 1 if c.get("samples_query") else 0
    return n


def pct(values, q):
    s = sorted(values)
    if not s:
        return float("nan")
    k = min(len(s) - 1, max(0, int(round(q * (len(s) - 1)))))
    return s[k]


def stats(values):
    return {"n": len(values), "median": pct(values, 0.5), "p95": pct(values, 0.95), "min": min(values),
            "max": max(values)}


def in_process(checks, provider_spec, variables, evaluations):
    """Time validate + one evaluation round; a fresh provider each time (prometheus), or one provider whose
    scrape history persists (prometheus_text: the first evaluation waits the window)."""
    times, first, verdicts, requests = [], None, [], []
    keep = build_provider(provider_spec) if provider_spec["type"] == "prometheus_text" else None
    for i in range(evaluations + (1 if keep else 0)):
        t0 = time.perf_counter()
        normalized = validate_checks(checks, provider=provider_spec, variables=variables)
        prov = keep or build_provider(provider_spec)
        before = prov.http.requests
        run = run_gate(normalized, lambda c: evaluate_check(c, prov), before_round=prov.begin_round)
        dt = time.perf_counter() - t0
        if keep and i == 0:
            first = dt
            continue
        times.append(dt)
        verdicts.append(run["verdict"])
        requests.append(prov.http.requests - before)
    return {"seconds": stats(times), "first_seconds": first, "verdicts": sorted(set(verdicts)),
            "http_requests": stats(requests)}


def through_ansible(checks, prom_spec, text_spec, variables, tasks, workdir):
    gate = {"checks": checks, "vars": variables, "fail_on_violation": False, "fail_on_inconclusive": False}
    plays = []
    for kind, spec in (("ping", None), ("prometheus", prom_spec), ("prometheus_text", text_spec)):
        for i in range(tasks):
            if kind == "ping":
                plays.append({"name": "ping %d" % i, "ansible.builtin.ping": {}})
            else:
                plays.append({"name": "%s %d" % (kind, i), "stagegate.rollout.metric_gate": dict(gate, provider=spec)})
    path = os.path.join(workdir, "bench.yml")
    with open(path, "w") as fh:
        json.dump([{"name": "gate overhead", "hosts": "localhost", "gather_facts": False, "tasks": plays}], fh)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"),
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_PYTHON_INTERPRETER=sys.executable,
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_NOCOWS="1", ANSIBLE_LOCAL_TEMP=os.path.join(workdir, "tmp"),
               ANSIBLE_HOME=os.path.join(workdir, "home"))
    t0 = time.perf_counter()
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
                           "-e", "ansible_connection=local", path], env=env, capture_output=True, text=True,
                          cwd=workdir, check=False)
    total = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit("ansible-playbook failed (rc %d):\n%s\n%s" % (proc.returncode, proc.stdout[-3000:],
                                                                       proc.stderr[-3000:]))
    doc = json.loads(proc.stdout)
    out = {"total_seconds": total}
    for kind in ("ping", "prometheus", "prometheus_text"):
        walls, inside, verdicts = [], [], []
        for t in doc["plays"][0]["tasks"]:
            name = t["task"]["name"]
            if not name.startswith(kind + " "):
                continue
            d = t["task"]["duration"]
            wall = _ts(d["end"]) - _ts(d["start"])
            res = t["hosts"]["localhost"]
            walls.append(wall)
            if "elapsed" in res:
                inside.append(res["elapsed"])
                verdicts.append(res["verdict"])
        out[kind] = {"wall": stats(walls), "inside": stats(inside) if inside else None,
                     "outside": stats([w - i for w, i in zip(walls, inside)]) if inside else None,
                     "verdicts": sorted(set(verdicts))}
    return out


def _ts(text):
    from datetime import datetime
    return datetime.strptime(text.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def ms(x):
    return "%.1f" % (x * 1000.0)


def render(result):
    r = result
    lines = [SECTION, "",
             "`bench/gate_overhead.py` (%s; seed %d). A real Prometheus %s on loopback scrapes the deterministic "
             "test exporter (two versions, 200 req/s each) every second; the gate has %d checks (%d PromQL "
             "queries per evaluation: error rates with `or vector(0)`, P50/P90/P95/P99, P95 vs stable, "
             "P99/P95, throughput vs stable, samples), window `%s`. %s, Python %s, %s CPU(s)."
             % (r["mode"], r["seed"], r["prometheus_version"], r["checks"], r["queries"], WINDOW,
                r["platform"], r["python"], r["cpus"]), "",
             "### Inside the module (validate + one evaluation of the 10 checks)", "",
             "| provider | evaluations | median ms | p95 ms | max ms | HTTP requests / evaluation | verdicts |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for kind in ("prometheus", "prometheus_text"):
        s = r["in_process"][kind]
        lines.append("| %s | %d | %s | %s | %s | %d | %s |" % (
            kind, s["seconds"]["n"], ms(s["seconds"]["median"]), ms(s["seconds"]["p95"]), ms(s["seconds"]["max"]),
            s["http_requests"]["median"], ", ".join(s["verdicts"])))
    t = r["in_process"]["prometheus_text"]["first_seconds"]
    lines += ["", "`prometheus_text`: the first evaluation of a run waits the `%s` window for its second scrape "
              "(%.2f s here); later evaluations reuse the scrape history and scrape once per evaluation." % (WINDOW, t),
              "", "### Through Ansible (`ansible-playbook`, local connection, one task per gate)", "",
              "| task | tasks | task wall median ms | p95 ms | evaluation inside the module (`elapsed`) median ms | "
              "the rest (Ansible, module start) median ms |",
              "|---|---:|---:|---:|---:|---:|"]
    a = r["ansible"]
    for kind, label in (("ping", "`ansible.builtin.ping` (floor)"), ("prometheus", "metric_gate, prometheus"),
                        ("prometheus_text", "metric_gate, prometheus_text")):
        s = a[kind]
        lines.append("| %s | %d | %s | %s | %s | %s |" % (
            label, s["wall"]["n"], ms(s["wall"]["median"]), ms(s["wall"]["p95"]),
            ms(s["inside"]["median"]) if s["inside"] else "-",
            ms(s["outside"]["median"]) if s["outside"] else ms(s["wall"]["median"])))
    lines += ["", "Each `prometheus_text` task is a new process with no scrape history, so each waits the `%s` window "
              "once (with a Prometheus server the history is Prometheus's)." % WINDOW, "",
              "So a 10-check gate costs about %s ms of querying inside the module and about %s ms per gate task in "
              "all; the rest of a task's time is Ansible starting a module (the `ping` row). Repeated evaluation "
              "(`interval`/`duration`) pays the module start once and the querying once per interval."
              % (ms(r["in_process"]["prometheus"]["seconds"]["median"]), ms(a["prometheus"]["wall"]["median"])), ""]
    return "\n".join(lines)


def write_results(text):
    path = os.path.join(HERE, "RESULTS.md")
    with open(path) as fh:
        content = fh.read()
    if SECTION in content:
        start = content.index(SECTION)
        nxt = content.find("\n## ", start + len(SECTION))
        content = content[:start] + text.rstrip() + "\n" + (content[nxt:] if nxt >= 0 else "")
    else:
        content = content.rstrip() + "\n\n" + text.rstrip() + "\n"
    with open(path, "w") as fh:
        fh.write(content)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--evaluations", type=int)
    ap.add_argument("--tasks", type=int)
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    evaluations = args.evaluations or (30 if args.quick else 200)
    tasks = args.tasks or (4 if args.quick else 10)
    if not shutil.which("prometheus"):
        print("prometheus is not installed (make setup)")
        return 1
    work = tempfile.mkdtemp(prefix="gate-overhead-")
    port = free_port()
    control = os.path.join(work, "control.json")
    with open(control, "w") as fh:
        json.dump({"v1": {"rps": 200, "error_rate": 0.0, "latency_ms": 100},
                   "v2": {"rps": 200, "error_rate": 0.01, "latency_ms": 100}}, fh)
    exporter = ManagedProcess("exporter", [sys.executable, EXPORTER, "--port", str(port), "--control", control],
                              os.path.join(work, "exporter.log"), port=port)
    prom = Prometheus(os.path.join(work, "prometheus"), {"app": [("127.0.0.1:%d" % port, {"service": "shop"})]})
    try:
        exporter.start()
        prom.start()
        prom_spec = {"type": "prometheus", "url": prom.url}
        text_spec = {"type": "prometheus_text", "url": "http://127.0.0.1:%d/metrics" % port,
                     "labels": {"service": "shop"}}
        variables = {"version": "v2", "window": WINDOW}
        checks = gate_checks(args.seed)
        probe = build_provider(prom_spec)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if probe.query('sum(rate(app_requests_total{version="v1"}[%s])) > 0' % WINDOW):
                break
            time.sleep(0.5)
        time.sleep(float(WINDOW[:-1]))      # a full window of data
        result = {
            "seed": args.seed, "mode": "quick" if args.quick else "full", "checks": len(checks),
            "queries": queries_per_evaluation(checks), "cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.system(),
            "prometheus_version": subprocess.run(["prometheus", "--version"], capture_output=True, text=True,
                                                 check=False).stdout.split("\n")[0].split(" ")[2],
            "in_process": {
                "prometheus": in_process(checks, prom_spec, variables, evaluations),
                "prometheus_text": in_process(checks, text_spec, variables, evaluations),
            },
            "ansible": through_ansible(checks, prom_spec, text_spec, variables, tasks, work),
        }
    finally:
        prom.stop()
        exporter.stop()
        shutil.rmtree(work, ignore_errors=True)
    out_dir = os.path.join(HERE, "out")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "gate_overhead.json"), "w") as fh:
        json.dump(result, fh, indent=1)
    text = render(result)
    print(text)
    if args.write_results:
        write_results(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
