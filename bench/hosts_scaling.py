# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sizes: the cost of a staging + canary + production rollout over 1, 3 and 10 SSH app hosts.

``.venv/bin/python -m bench.hosts_scaling [--hosts 1,3,10] [--analysis 6] [--quick]`` (root: sshd on port 22)

For each size a site of tests/integration/hosts/site_kit.py (the collection built from ``git archive HEAD``
and installed; real sshd app hosts on 127.0.0.101.. - distinct from the tests' .11-.13, .21 and .31-.32 -, HAProxy,
Prometheus, NATS, the load generator at 20 req/s with a fixed seed) installs v1, then v2 goes through
staging, canary (10 -> 25 -> 50 -> 100 %, the judge on the first three steps) and production in the batches a
user would declare (``[1, '25%', '100%']``: 1 host, then 25 % of them, then the rest). Per phase:

* wall time of ``ansible-playbook``;
* deliberate waits, **subtracted**: the staging bake, each judged step's own elapsed seconds (from the ledger's
  judge entries), the unjudged 100 % step's observation, and per production batch its observation plus the two
  settle waits (``rollout_settle_seconds``, 1 s). Declared windows are short (``--analysis`` s per step or
  batch, staging bake 3 s); ``orchestration = wall - waits``;
* controller CPU: user+sys of the ``ansible-playbook`` process tree (``os.wait4`` on it: the workers, the
  modules run on the controller, the ssh clients), plus the ssh ControlMaster processes of the inventory (they
  detach from the tree; sampled from /proc every 0.2 s). The sshd, the "remote" modules, supervisord, the
  services, HAProxy, Prometheus and NATS are not counted (they would be other machines);
* the machine's busy CPU over the phase (/proc/stat: everything, incl. the "hosts"' side of the work - on
  this 2-core machine the hosts' work competes with the controller, which real hosts would not);
* tasks: the TASK headers printed, and the host-task results of the PLAY RECAP (ok + skipped + failed).

Then (``--sync-hosts``, default 10,30,100) the controller-only cost of one sync point of the installed collection
(``roles/rollout_phase/tasks/sync.yml``), of a trivial per-host task and of the sync point's host-error check
over N inventory hosts that are never connected to (``sync_cost``).

``os.getloadavg()`` is recorded before and after each size: other work may run on this machine.
Results go to stdout (tables) and ``bench/out/hosts_scaling.json``. Not part of ``make test``.
"""

import argparse
import json
import os
import pathlib
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _p in (ROOT, os.path.join(ROOT, ".collections")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import pytest  # noqa: E402  (site_kit skips with pytest.skip; so does this bench, with its message)

from demo.loadgen import LoadGen  # noqa: E402
from demo.stack.local import SUBJECT_PREFIX  # noqa: E402
from tests.integration.hosts.site_kit import (  # noqa: E402
    BIN, Site, ansible_env, skip_unless_a_site_can_run)

SEED = 20261203
ADDRESS_BASE = "127.0.0.%d"
FIRST_ADDRESS = 101            # 127.0.0.101..: the tests use .11-.13 (hosts), .21 (faults), .31-.32 (blue_green)
SIZES = (1, 3, 10)
QUICK_SIZES = (1, 3)
BATCHES = [1, "25%", "100%"]
CANARY_WEIGHTS = (10, 25, 50, 100)   # the last step unjudged (observed), as in the site's plan
BAKE_SECONDS = 3                     # the site's staging bake
SETTLE_SECONDS = 1                   # rollout_settle_seconds' default, twice per production batch
PHASES = ("staging", "canary", "production")


# ----- measuring ---------------------------------------------------------------------------------------------
def machine_busy():
    """CPU seconds the whole machine was busy (all cores), from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / float(os.sysconf("SC_CLK_TCK"))


class MasterSampler:
    """CPU of the ssh ControlMaster processes of this site (cmdline mentions its control path directory): they
    are forked by an ssh client of a worker and detach (ControlPersist), so ``wait4`` never counts them."""

    def __init__(self, marker, period=0.2):
        self.marker, self.period = marker, period
        self.cpu = {}                                 # pid -> last seen utime+stime (s)
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.tick = float(os.sysconf("SC_CLK_TCK"))

    def start(self):
        self.thread.start()
        return self

    def sample(self):
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            pid = int(p)
            try:
                with open("/proc/%d/stat" % pid, encoding="ascii") as fh:
                    f = fh.read().rsplit(")", 1)[1].split()
                if pid not in self.cpu:
                    # a master: an ssh with this site's ControlPath whose parent is not an ansible-playbook worker
                    # (the clients are the workers' children: wait4 counts them)
                    if self.marker.encode() not in _cmdline(pid) or not _cmdline(pid).startswith(b"ssh"):
                        continue
                    if b"ansible-playbook" in _cmdline(int(f[1])):
                        continue
            except OSError:
                continue
            with self.lock:
                self.cpu[pid] = (int(f[11]) + int(f[12])) / self.tick

    def total(self):
        self.sample()
        with self.lock:
            return sum(self.cpu.values())

    def _run(self):
        while not self.stopped.wait(self.period):
            self.sample()

    def stop(self):
        self.stopped.set()
        self.thread.join(5)


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as fh:
            return fh.read()
    except OSError:
        return b""


def run_measured(site, name, version, timeout, sampler):
    """``ansible-playbook stagegate.rollout.<name>`` as Site.play runs it, measured. -> dict."""
    argv = site.command(name, version)
    busy0, masters0, t0 = machine_busy(), sampler.total(), time.monotonic()
    proc = subprocess.Popen(argv, cwd=site.workdir, env=ansible_env(site.collections_path),  # pylint: disable=consider-using-with
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    killer = threading.Timer(timeout, proc.kill)
    killer.start()
    lines = []
    try:
        for line in proc.stdout:
            lines.append((time.monotonic() - t0, line.rstrip("\n")))
    finally:
        killer.cancel()
        dummy, status, usage = os.wait4(proc.pid, 0)   # the rusage of the process and every descendant it reaped
        proc.returncode = os.waitstatus_to_exitcode(status)
        proc.stdout.close()
    wall = time.monotonic() - t0
    masters, busy = sampler.total() - masters0, machine_busy() - busy0
    out = "".join(line + "\n" for dummy, line in lines)
    site.lines = lines
    site.record(name, version, proc.returncode, out, wall)
    recap = dict((k, 0) for k in ("ok", "skipped", "failed", "unreachable"))
    for m in re.finditer(r"^\S+\s+: ok=(\d+)\s+changed=\d+\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)", out, re.M):
        recap["ok"] += int(m.group(1))
        recap["unreachable"] += int(m.group(2))
        recap["failed"] += int(m.group(3))
        recap["skipped"] += int(m.group(4))
    return {"phase": name, "rc": proc.returncode, "wall": wall, "cpu_tree": usage.ru_utime + usage.ru_stime,
            "cpu_user": usage.ru_utime, "cpu_sys": usage.ru_stime, "cpu_masters": masters, "machine_busy": busy,
            "tasks": sum(1 for dummy, line in lines if line.startswith("TASK [")),
            "host_tasks": recap["ok"] + recap["skipped"] + recap["failed"], "recap": recap,
            "task_times": task_times(lines), "task_hosts": task_hosts(line for dummy, line in lines)}


def task_times(lines):
    """{task name: seconds} from one TASK header to the next (or the recap): where the wall time went."""
    out, cur, start = {}, None, 0.0
    for t, line in lines:
        if line.startswith(("TASK [", "PLAY [", "PLAY RECAP")):
            if cur is not None:
                out[cur] = out.get(cur, 0.0) + t - start
            cur = line[6:].split("]", 1)[0] if line.startswith("TASK [") else None
            start = t
    return out


def task_hosts(lines):
    """{task name: the most hosts that ran it (ok, changed or failed) in one occurrence}: 1 of N is a once-per-step
    task (the leader, delegated), N of N a per-host one, 0 a task skipped everywhere."""
    out, cur, seen = {}, None, set()
    for line in list(lines) + ["PLAY RECAP"]:
        if line.startswith(("TASK [", "PLAY [", "PLAY RECAP")):
            if cur is not None:
                out[cur] = max(out.get(cur, 0), len(seen))
            cur, seen = (line[6:].split("]", 1)[0] if line.startswith("TASK [") else None), set()
            continue
        m = re.match(r"^(ok|changed|failed|fatal): \[([^\]]+?)(?: -> [^\]]+)?\]", line)
        if m and cur is not None:
            seen.add(m.group(2))
        elif line.startswith("included: ") and " for " in line and cur is not None:
            seen.update(h.strip() for h in line.rsplit(" for ", 1)[1].split(","))
    return out


def where_it_went(res):
    """Seconds of wall time of one size by kind of task: per host (some occurrence ran on more than one host),
    once per step (never more than one host: the leader, delegated to the controller or the load-balancer host;
    the deliberate waits are among them) and skipped everywhere (the cost of evaluating a task no host runs).
    Meaningful when a production batch has more than one host (10 hosts: batches 1, 2, 7)."""
    most = {}
    for p in res["phases"]:
        for name, n in p.get("task_hosts", {}).items():
            most[name] = max(most.get(name, 0), n)
    split = {"per host": 0.0, "once per step": 0.0, "skipped everywhere": 0.0}
    for p in res["phases"]:
        for name, secs in p["task_times"].items():
            n = most.get(name, 0)
            split["skipped everywhere" if n == 0 else "per host" if n > 1 else "once per step"] += secs
    return split


def waits(site, phase, analysis, hosts):
    """Deliberate waits of one phase (seconds): declared, or for the judge the elapsed seconds it recorded."""
    if phase == "staging":
        return float(BAKE_SECONDS)
    if phase == "canary":
        judged = [e for e in site.ledger() if e["release"] == "v2" and e["phase"] == "canary" and e["event"] == "judge"]
        return sum(float(e["evidence"].get("seconds") or analysis) for e in judged) + analysis  # + the 100 % step
    return len(batches(hosts)) * (analysis + 2 * SETTLE_SECONDS)


def batches(hosts):
    """The production batches of ``BATCHES`` over ``hosts`` hosts (as rollout_target.batches computes them)."""
    from ansible_collections.stagegate.rollout.plugins.module_utils.rollout_target import batches as split
    return split(["h%d" % i for i in range(hosts)], BATCHES)


# ----- one size ----------------------------------------------------------------------------------------------
def build_from_head(tmp):
    """The collection of ``git archive HEAD`` (what is committed, not whatever is being edited in the checkout)
    built and installed in ``<tmp>/collections``. -> (collections path, commit)."""
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True,
                            timeout=30).stdout.strip()
    src = tmp / "src"
    src.mkdir()
    archive = subprocess.run(["git", "archive", "--format=tar", commit], cwd=ROOT, capture_output=True, check=True,
                             timeout=120).stdout
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True, timeout=120)
    env = ansible_env(None)
    subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(tmp)],
                   cwd=str(src), env=env, capture_output=True, check=True, timeout=300)
    tarball = next(tmp.glob("stagegate-rollout-*.tar.gz"))
    path = tmp / "collections"
    subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", str(tarball), "-p", str(path),
                    "--no-deps", "--force"], cwd=str(tmp), env=env, capture_output=True, check=True, timeout=300)
    return str(path), commit


def one_size(hosts, collections_path, work, analysis, timeout):
    addresses = tuple(ADDRESS_BASE % (FIRST_ADDRESS + i) for i in range(hosts))
    site = Site(os.path.join(work, "hosts%d" % hosts), collections_path, addresses=addresses, analysis=analysis,
                phases={"rollout_production": {"batches": BATCHES}})
    result = {"hosts": hosts, "addresses": "%s-%s" % (addresses[0], addresses[-1]), "load_before": os.getloadavg(),
              "phases": []}
    sampler = MasterSampler(os.path.join(site.workdir, "ssh", "cm-"))
    try:
        site.start()
        sampler.start()
        install = run_measured(site, "install", "v1", timeout, sampler)
        result["install"] = dict((k, install[k]) for k in ("rc", "wall", "cpu_tree", "cpu_masters"))
        if install["rc"] != 0:
            raise RuntimeError("install of v1 on %d host(s) failed: %s" % (hosts, site.timings))
        site.loadgen = LoadGen(site.haproxy.url, rate=20, workers=16, nats_url=site.nats.url, subject=SUBJECT_PREFIX,
                               events_rate=4, events_log=os.path.join(site.workdir, "events.jsonl"),
                               run_id="bench%x" % int(time.time()), seed=SEED).start()
        for phase in PHASES:
            row = run_measured(site, phase, "v2", timeout, sampler)
            row["waits"] = waits(site, phase, analysis, hosts)
            row["orchestration"] = row["wall"] - row["waits"]
            result["phases"].append(row)
            sys.stderr.write("%d host(s) %s: rc %d, wall %.1f s, waits %.1f s, cpu %.1f s + ssh masters %.1f s\n"
                             % (hosts, phase, row["rc"], row["wall"], row["waits"], row["cpu_tree"],
                                row["cpu_masters"]))
            if row["rc"] != 0:
                tail = "\n".join(line for dummy, line in site.lines[-40:])
                raise RuntimeError("%s of v2 on %d host(s) failed (rc %d):\n%s" % (phase, hosts, row["rc"], tail))
        versions = site.versions()
        result["versions_ok"] = all(v == {"stable": "v2", "canary": None} for v in versions.values())
        result["production_batches"] = [len(b) for b in batches(hosts)]
    finally:
        sampler.stop()
        result["load_after"] = os.getloadavg()
        left = site.close()
        if left:
            sys.stderr.write("left running: %s\n" % left)
    return result


# ----- controller only: one sync point over many hosts ---------------------------------------------------
SYNC_SIZES = (10, 30, 100)
QUICK_SYNC_SIZES = (10, 30)
SYNC_REPEAT = 4


def _sync_task(j):
    return {"name": "sync %d" % j, "vars": {"_rollout_phase_sync": "step %d" % j},
            "ansible.builtin.include_role": {"name": "stagegate.rollout.rollout_phase", "tasks_from": "sync.yml"}}


def _assert_task(j):
    return {"name": "assert %d" % j, "ansible.builtin.assert": {"that": ["true"], "quiet": True}}


def _host_error_task(j):
    """The sync point's third condition alone: every host looks at every host's variables (N x N)."""
    return {"name": "host errors %d" % j, "ansible.builtin.assert": {"quiet": True, "that": [
        "ansible_play_hosts_all | map('extract', hostvars) | selectattr('_rollout_phase_host_error', 'defined')"
        " | list | length == 0"]}}


def sync_cost(collections_path, work, sizes):
    """Controller CPU of one sync point (roles/rollout_phase/tasks/sync.yml of the installed collection, included as
    the phases include it) and of the cheapest per-host task (an ``assert`` of ``true``) over N hosts that are
    never connected to (``ansible_connection: local``; set_fact and assert run on the controller). Each is run
    ``SYNC_REPEAT`` times in one play and once not at all; the difference / ``SYNC_REPEAT`` is one's cost."""
    env = ansible_env(collections_path)
    rows = []
    for n in sizes:
        inv = os.path.join(work, "sync-inventory-%d.json" % n)
        with open(inv, "w", encoding="utf-8") as fh:
            json.dump({"all": {"children": {"app": {"hosts": dict(
                ("h%04d" % i, {"ansible_connection": "local", "ansible_python_interpreter": sys.executable})
                for i in range(n))}}}}, fh)
        measured = {}
        for what, task in (("sync point", _sync_task), ("assert true", _assert_task),
                           ("the sync's host-error check alone", _host_error_task)):
            for k in (0, SYNC_REPEAT):
                play = os.path.join(work, "sync-play.json")
                with open(play, "w", encoding="utf-8") as fh:
                    json.dump([{"name": "sync", "hosts": "app", "gather_facts": False,
                                "vars": {"_rollout_phase_leader": "{{ ansible_play_hosts_all[0] }}"},
                                "tasks": [{"name": "noop", "ansible.builtin.meta": "noop"}]
                                + [task(j) for j in range(k)]}], fh)
                t0 = time.monotonic()
                proc = subprocess.Popen([os.path.join(BIN, "ansible-playbook"), "-i", inv, play], cwd=work, env=env,  # pylint: disable=consider-using-with
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                out = proc.stdout.read()
                dummy, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = os.waitstatus_to_exitcode(status)
                proc.stdout.close()
                if proc.returncode != 0:
                    raise RuntimeError("%s x%d on %d hosts failed:\n%s" % (what, k, n, out[-3000:].decode()))
                measured[(what, k)] = (time.monotonic() - t0, usage.ru_utime + usage.ru_stime)
            wall = (measured[(what, SYNC_REPEAT)][0] - measured[(what, 0)][0]) / SYNC_REPEAT
            cpu = (measured[(what, SYNC_REPEAT)][1] - measured[(what, 0)][1]) / SYNC_REPEAT
            rows.append({"hosts": n, "what": what, "wall": wall, "cpu": cpu, "load": os.getloadavg()})
            sys.stderr.write("%d hosts, one %s: wall %.2f s, controller CPU %.2f s\n" % (n, what, wall, cpu))
    return rows


def fit_quadratic(xs, ys):
    """Least squares y = b x + c x^2 (no constant: no hosts, no cost) -> (b, c)."""
    s2 = sum(x ** 2 for x in xs)
    s3 = sum(x ** 3 for x in xs)
    s4 = sum(x ** 4 for x in xs)
    t1 = sum(x * y for x, y in zip(xs, ys))
    t2 = sum(x * x * y for x, y in zip(xs, ys))
    det = s2 * s4 - s3 * s3
    return (t1 * s4 - t2 * s3) / det, (s2 * t2 - s3 * t1) / det


def print_sync(rows):
    print()
    print("controller only (no connection): one sync point, a trivial per-host task and the sync point's host-error "
          "check over N hosts")
    print("| hosts | task | wall s | controller CPU s | CPU ms per host | load average (1 min) |")
    print("|---:|---|---:|---:|---:|---:|")
    for r in rows:
        print("| %d | %s | %.2f | %.2f | %.1f | %.2f |"
              % (r["hosts"], r["what"], r["wall"], r["cpu"], 1000.0 * r["cpu"] / r["hosts"], r["load"][0]))
    sync = [r for r in rows if r["what"] == "sync point"]
    if len(sync) >= 2:
        b, c = fit_quadratic([r["hosts"] for r in sync], [r["cpu"] for r in sync])
        print()
        print("sync point CPU ~ %.4f s x N + %.6f s x N^2; an extrapolation to 1,000 hosts: %.0f s per sync point"
              % (b, c, b * 1000 + c * 1000 ** 2))


# ----- reporting ---------------------------------------------------------------------------------------------
def fit(xs, ys):
    """Least squares y = a + b x -> (a, b)."""
    n = float(len(xs))
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    return my - b * mx, b


def total(res, key):
    return sum(p[key] for p in res["phases"])


def print_tables(results, meta):
    print("machine: %s" % meta["machine"])
    print("collection: git archive %s; declared windows: %s s per canary step / production batch, staging bake %d s, "
          "settle %d s x2 per batch; production batches %s; load 20 req/s, seed %d"
          % (meta["commit"][:12], meta["analysis"], BAKE_SECONDS, SETTLE_SECONDS, BATCHES, SEED))
    print()
    print("| hosts | phase | wall s | waits s | orchestration s | controller CPU s (tree + ssh masters) "
          "| machine busy % (all work on it) | tasks | host-task results |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for res in results:
        rows = res["phases"] + [{"phase": "**total**", "wall": total(res, "wall"), "waits": total(res, "waits"),
                                 "orchestration": total(res, "orchestration"), "cpu_tree": total(res, "cpu_tree"),
                                 "cpu_masters": total(res, "cpu_masters"), "machine_busy": total(res, "machine_busy"),
                                 "tasks": total(res, "tasks"), "host_tasks": total(res, "host_tasks")}]
        for r in rows:
            print("| %d | %s | %.1f | %.1f | %.1f | %.1f (%.1f + %.1f) | %.0f | %d | %d |"
                  % (res["hosts"], r["phase"], r["wall"], r["waits"], r["orchestration"],
                     r["cpu_tree"] + r["cpu_masters"], r["cpu_tree"], r["cpu_masters"],
                     100.0 * r["machine_busy"] / (r["wall"] * os.cpu_count()), r["tasks"], r["host_tasks"]))
    print()
    print("| hosts | load average before (1/5/15 min) | after | production batches | every slot on v2 |")
    print("|---:|---|---|---|---|")
    for res in results:
        print("| %d | %s | %s | %s | %s |" % (
            res["hosts"], " / ".join("%.2f" % x for x in res["load_before"]),
            " / ".join("%.2f" % x for x in res["load_after"]), res.get("production_batches"), res.get("versions_ok")))
    if len(results) >= 2:
        xs = [r["hosts"] for r in results]
        print()
        print("least-squares fit over %s hosts: fixed + per host" % xs)
        print("| measure | fixed s | per host s |")
        print("|---|---:|---:|")
        for label, key in (("wall", "wall"), ("orchestration (wall - waits)", "orchestration"),
                           ("controller CPU (tree + masters)", None)):
            ys = [total(r, "cpu_tree") + total(r, "cpu_masters") if key is None else total(r, key) for r in results]
            a, b = fit(xs, ys)
            print("| %s | %.1f | %.2f |" % (label, a, b))
    if max(results[-1].get("production_batches") or [1]) > 1:
        print()
        print("wall time by kind of task (seconds summed over the three phases; 'once per step' includes the waits)")
        print("| hosts | per host | once per step | skipped everywhere | waits (within once per step) |")
        print("|---:|---:|---:|---:|---:|")
        for res in results:
            if max(res.get("production_batches") or [1]) > 1:
                w = where_it_went(res)
                print("| %d | %.1f | %.1f | %.1f | %.1f |"
                      % (res["hosts"], w["per host"], w["once per step"], w["skipped everywhere"], total(res, "waits")))
    big = results[-1]
    times = {}
    for p in big["phases"]:
        for name, secs in p["task_times"].items():
            times[name] = times.get(name, 0.0) + secs
    print()
    print("where the wall time of %d host(s) went (top 12 task names, seconds summed over the phases):" % big["hosts"])
    print("| task | s |")
    print("|---|---:|")
    for name, secs in sorted(times.items(), key=lambda kv: -kv[1])[:12]:
        print("| %s | %.1f |" % (name.replace("|", "/"), secs))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    ap.add_argument("--hosts", default=None, help="sizes, comma-separated (default 1,3,10; --quick 1,3)")
    ap.add_argument("--analysis", type=int, default=6, help="declared seconds per canary step / production batch")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per playbook")
    ap.add_argument("--sync-hosts", default=None,
                    help="sizes of the controller-only sync point table (default 10,30,100; --quick 10,30; 0: none)")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "out", "hosts_scaling.json"))
    ap.add_argument("--report", nargs="+", metavar="JSON", help="print the tables of earlier runs' JSON (no run)")
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    if args.report:
        results, sync, meta = [], [], None
        for path in args.report:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
            meta = meta or data["meta"]
            results += data["results"]
            sync += data.get("sync", [])
        if results:
            print_tables(sorted(results, key=lambda r: r["hosts"]), meta)
        if sync:
            print_sync(sorted(sync, key=lambda r: (r["hosts"], r["what"])))
        return 0
    sizes = [int(x) for x in args.hosts.split(",") if int(x)] if args.hosts else list(QUICK_SIZES if args.quick else SIZES)
    sync_sizes = ([int(x) for x in args.sync_hosts.split(",") if int(x)] if args.sync_hosts
                  else list(QUICK_SYNC_SIZES if args.quick else SYNC_SIZES))
    if sizes and max(sizes) > 150:
        ap.error("at most 150 hosts (127.0.0.101-250)")
    try:
        skip_unless_a_site_can_run()
    except pytest.skip.Exception as exc:
        print("skipped: %s" % exc)
        return 0
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="hosts-scaling-"))
    collections_path, commit = build_from_head(tmp)
    meta = {"commit": commit, "analysis": args.analysis, "sizes": sizes, "seed": SEED,
            "machine": "%s %s, %d CPU(s) (%s), Python %s" % (platform.system(), platform.release(), os.cpu_count(),
                                                             cpu_model(), platform.python_version())}
    results, sync = [], []
    for hosts in sizes:
        results.append(one_size(hosts, collections_path, str(tmp), args.analysis, args.timeout))
        with open(args.out + ".partial", "w", encoding="utf-8") as fh:   # what is measured so far
            json.dump({"meta": meta, "results": results}, fh, indent=1)
    if sync_sizes:
        sync = sync_cost(collections_path, str(tmp), sync_sizes)
    if results:
        print_tables(results, meta)
    if sync:
        print_sync(sync)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump({"meta": meta, "results": results, "sync": sync}, fh, indent=1)
    return 0


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


if __name__ == "__main__":
    sys.exit(main())
