"""The demo: one command rolls a good release through all four phases and a bad one back.

    .venv/bin/python demo/run_demo.py [--shortened] [--workdir demo/run]
                                     [--keep-up] [--skip-bad] [--rate 160] [--events-rate 60]

1. starts the local stack (NATS JetStream, Prometheus, HAProxy) and installs the stable v1
   with the collection's ``stagegate.rollout.install`` (``demo.stack.local``); the stack
   writes the demo's inventory to ``<workdir>/inventory`` (inventories/demo plus the
   generated ``hosts.yml`` and ``group_vars/all/stack.yml``);
2. starts the load generator (HTTP through HAProxy + repository events to JetStream);
3. release v2: ``ansible-playbook -i <workdir>/inventory stagegate.rollout.<phase>
   -e rollout_version=v2 -e rollout_auto_approve=true [-e demo_shortened=true]`` for
   staging, canary, production, advanced — each must succeed; the advanced phase runs the
   chaos drills the inventory declares (``rollout_advanced.chaos``: kill the canary slot,
   freeze a consumer, make the metrics provider unreachable), scored in the ledger;
4. release v3, made bad (``DEMO_FAULT_ERROR_RATE__V3`` in the stack's faults file, only
   visible once publishing is external): the same playbooks, which must roll it back
   at the canary;
5. checks that every event was processed exactly once by a healthy version (or
   replayed after the rollback), verifies the ledger, writes the report, stops the stack.

While it runs it prints the phase, HAProxy's canary weight, live error rate and
latency of stable vs canary (from Prometheus, slot versions from their /healthz) and
the decisions as the ledger records them.
"""
import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from urllib.parse import urlencode
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _p in (os.path.join(ROOT, ".collections"), ROOT):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from demo.loadgen import LoadGen  # noqa: E402
from demo.stack import playbook  # noqa: E402
from demo.stack import slot as slots  # noqa: E402
from demo.stack.haproxy import runtime_command  # noqa: E402
from demo.stack.local import LocalStack  # noqa: E402

PHASES = ("staging", "canary", "production", "advanced")
GOOD, BAD = "v2", "v3"
# The load's request rate. The judge proves a canary's errors non-inferior, when neither version has any, by
# proving its error rate below an absolute ceiling (canary_judge's error_abs_margin): at the module's default 0.1 %
# about 3,900 clean canary requests, at the demo inventory's 1 % (rollout_canary.judge) about 390, counted over the
# steps (judge.carry_evidence). 160 req/s give the canary 16 req/s at 10 %: the 10 % step has them after about
# 25 s, and the 25 % and 50 % steps pass at their 8 s minimum with the evidence carried (the median latency
# proven within the inventory's 50 % too). 120 req/s took 30-52 s for the 10 % step. The shortened demo's steps
# (6 s) cannot end early: 40 req/s.
FULL_RATE, SHORTENED_RATE = 160.0, 40.0
# The events' rate. The canary takes a cohort of the events too (rollout_canary.split: both; 40 % of the
# repositories, inventories/demo rollout.yml): at 60 events/s 24 a second, so the events arm has its ~390 clean
# events before the requests arm has its own in the 10 % step. The shortened demo's steps cannot end early: 20/s.
FULL_EVENTS_RATE, SHORTENED_EVENTS_RATE = 60.0, 20.0


# ----- small clients -------------------------------------------------------------------------
haproxy_cmd = runtime_command


def haproxy_weights(stack):
    h = stack["haproxy"]
    out = {}
    for name in ("stable", "canary"):
        txt = haproxy_cmd(h["socket_path"], "get weight %s/%s" % (h["backend"], h["servers"][name]))
        out[name] = int(txt.split()[0])
    return out


def canary_percent(weights):
    total = weights["stable"] + weights["canary"]
    return round(100.0 * weights["canary"] / total, 1) if total else 0.0


def prom(url, query, timeout=3.0):
    with urllib.request.urlopen("%s/api/v1/query?%s" % (url, urlencode({"query": query})), timeout=timeout) as r:
        return json.loads(r.read())["data"]["result"]


def by_slot(result):
    out = {}
    for r in result:
        try:
            v = float(r["value"][1])
        except (KeyError, ValueError, IndexError):
            continue
        if not math.isnan(v):
            out[r["metric"].get("slot")] = v
    return out


W = "6s"
Q_REQ = 'sum by (slot) (rate(demo_http_requests_total{job="demo",route!="/healthz"}[%s]))' % W
Q_ERR = 'sum by (slot) (rate(demo_http_requests_total{job="demo",route!="/healthz",code=~"5.."}[%s]))' % W
Q_LAT = ('histogram_quantile(%s, sum by (slot, le) (rate(demo_http_request_duration_seconds_bucket{job="demo"}[' + W
         + '])))')


# ----- the run record and the live monitor ------------------------------------------------------
class Demo:
    def __init__(self, args):
        self.args = args
        self.t0 = time.time()
        self.lock = threading.Lock()
        self.run = {"title": "stagegate.rollout demo", "started_at": self.t0, "samples": [], "weights": [],
                    "judge": [], "gates": [], "releases": [], "rollbacks": [], "decisions": [], "retention": [],
                    "chaos": [], "driver": "ansible", "shortened": args.shortened}
        self.context = {"release": None, "phase": "setup", "step": 0}
        self.stop_evt = threading.Event()
        self.stack = None
        self.info = None
        self.loadgen = None
        self.ledger_path = None
        self._ledger_pos = 0
        self._verdicts, self._restored = {}, {}
        self._last_weight = None
        self._last_print = 0
        self.latest = {}

    # printing
    def say(self, msg):
        line = "[%6.1fs] %s" % (time.time() - self.t0, msg)
        print(line, flush=True)

    # --- monitor thread: HAProxy weights (100 ms), Prometheus samples (2 s), ledger tail ---------
    def monitor(self):
        next_sample = 0
        while not self.stop_evt.is_set():
            now = time.time()
            try:
                w = haproxy_weights(self.info)
                pct = canary_percent(w)
                if pct != self._last_weight:
                    with self.lock:
                        self.run["weights"].append(dict(self.context, t=now, canary=pct, raw=w))
                    if self._last_weight is not None:
                        self.say("HAProxy  canary weight %s%% -> %s%%  (%s %s)" % (
                            self._last_weight, pct, self.context["release"] or "", self.context["phase"]))
                    self._last_weight = pct
            except Exception:
                pass
            if now >= next_sample:
                next_sample = now + 2.0
                self.sample(now)
            self.tail_ledger()
            self.stop_evt.wait(0.1)

    def sample(self, now):
        url = self.info["prometheus"]["url"]
        try:
            req = by_slot(prom(url, Q_REQ))
            err = by_slot(prom(url, Q_ERR))
            lat = {q: by_slot(prom(url, Q_LAT % q)) for q in ("0.5", "0.95", "0.99")}
        except Exception:
            return
        # each slot's version from its /healthz only (no supervisorctl: a Python process per call, two every 2 s,
        # took about a quarter of a core from the playbooks for the whole demo); a slot that does not answer has none
        versions = {}
        for name in ("stable", "canary"):
            h = slots.health(self.info["slots"][name]["port"])
            versions[name] = h.get("version") if h else None
        for name in ("stable", "canary"):
            rps = req.get(name)
            if not versions[name] or not rps:
                continue
            rec = {"t": now, "slot": name, "version": versions[name], "rps": round(rps, 3),
                   "error_rate": (err.get(name, 0.0) / rps) if rps else None,
                   "p50_ms": _ms(lat["0.5"].get(name)), "p95_ms": _ms(lat["0.95"].get(name)),
                   "p99_ms": _ms(lat["0.99"].get(name))}
            with self.lock:
                self.run["samples"].append(rec)
            self.latest[name] = rec
        if now - self._last_print >= self.args.print_every:
            self._last_print = now
            self.say("live     %-22s weight %5s%% | %s | %s" % (
                "%s %s" % (self.context["release"] or "-", self.context["phase"]),
                self._last_weight, _fmt_slot("stable", self.latest.get("stable"), versions["stable"]),
                _fmt_slot("canary", self.latest.get("canary"), versions["canary"])))
            self.latest = {}

    def tail_ledger(self):
        path = self.ledger_path
        if not path or not os.path.exists(path):
            return
        try:
            with open(path, encoding="utf-8") as fh:
                fh.seek(self._ledger_pos)
                data = fh.read()
                if not data.endswith("\n"):
                    data = data[: data.rfind("\n") + 1]
                self._ledger_pos += len(data.encode("utf-8"))
        except OSError:
            return
        for line in data.splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            self.on_ledger(rec)

    def on_ledger(self, rec):
        d = ledger_decision(rec)
        with self.lock:
            self.run["decisions"].append(d)
            kind = d["action"]
            body = _ledger_body(rec)
            if "gate" in kind or "check" in kind:
                for g in _gate_rows(body, d):
                    self.run["gates"].append(g)
            if "judge" in kind or "verdict" in kind or "analysis" in kind:
                j = _judge_row(body, d)
                if j:
                    self.run["judge"].append(j)
            self._track_rollback(rec, d)
            if rec.get("event") == "chaos":
                self._track_chaos(rec)
        self.say("LEDGER   %-10s %-10s %-18s %s"
                 % (d.get("release") or "", d.get("phase") or "", kind, (d.get("detail") or "")[:110]))

    def _track_rollback(self, rec, d):
        """Rollbacks the playbooks made, from their ledger entries (the failing verdict, the rollback).

        When the canary traffic was back at 0 % comes from HAProxy itself (the monitor's weights), the
        replay from the rollback entry's evidence; ``finish_rollbacks`` adds the event counts at the end.
        """
        key = (d.get("release"), d.get("phase"))
        failed = str(rec.get("decision")) in ("rollback", "fail") and rec.get("event") in ("judge", "gate")
        if failed:
            # the verdict's own time when the judging module wrote weight 0 itself (the fast abort), before its
            # ledger entry was written
            fast = (rec.get("evidence") or {}).get("fast_abort") or {}
            self._verdicts.setdefault(key, fast.get("decided_at") or d["t"])
        elif rec.get("event") == "traffic_restored":
            self._restored[key] = d["t"]
        elif rec.get("event") in ("rollback", "rollback_incomplete"):
            ev = rec.get("evidence") or {}
            replay = (ev.get("replay") or {}).get("replay") or {}
            verdict = self._verdicts.pop(key, None)
            self.run["rollbacks"].append({
                "release": key[0], "phase": key[1], "reason": rec.get("reason"), "decision": rec.get("decision"),
                "left": ev.get("left") or [], "verdict_at": verdict,
                "traffic_restored_at": self._restored.pop(key, None), "finished_at": d["t"],
                "traffic_elapsed_ms": ev.get("traffic_elapsed_ms"),
                "replay": {"events_replayed": ev.get("events_replayed"), "from_time": replay.get("from_time"),
                           "from_seq": replay.get("from_seq"), "recreated": replay.get("recreated")}})

    def _track_chaos(self, rec):
        """The advanced phase's chaos drills, from their ``chaos`` ledger entries: one per drill (its evidence is the
        drill's result), then ``chaos score`` (the share that recovered and the promotion gate on it)."""
        ev = rec.get("evidence") or {}
        if rec.get("step") == "chaos score":
            self.run["chaos_score"] = {
                "release": rec.get("release"), "phase": rec.get("phase"), "decision": rec.get("decision"),
                "score": ev.get("score"), "min_success": ev.get("min_success"), "passed": ev.get("passed"),
                "total": ev.get("total"), "reason": rec.get("reason")}
            return
        self.run["chaos"].append({
            "release": rec.get("release"), "phase": rec.get("phase"), "drill": ev.get("name"),
            "kind": ev.get("kind"), "slot": ev.get("slot"), "share": ev.get("share"),
            "success": rec.get("decision") == "pass", "recovery_s": ev.get("seconds"),
            "clients": ev.get("clients") or {}, "detail": rec.get("reason")})

    def finish_rollbacks(self, bad_versions):
        """Complete the rollback records: when HAProxy's canary weight was 0 again (first poll at 0 % after the
        verdict), how many stored events the replay delivered again and how many of the bad version's events
        a healthy version reprocessed."""
        with self.lock:
            weights = list(self.run["weights"])
        sent = _read_jsonl(os.path.join(self.info["workdir"], "events.jsonl"))
        published = _read_jsonl(self.info["publish_file"])
        # the staging shadow's build-only records left out (a canary's records count, on whichever durable)
        published = [r for r in published if r.get("action") != "built"]
        for rb in self.run["rollbacks"]:
            start = rb["verdict_at"] or rb["finished_at"]
            if not rb.get("traffic_restored_at"):
                zero = [w["t"] for w in weights if w["t"] >= start - 0.2 and w["canary"] == 0]
                rb["traffic_restored_at"] = zero[0] if zero else None
            if rb["verdict_at"] is None:
                rb["verdict_at"] = rb["traffic_restored_at"]
            rep = rb["replay"]
            since = _epoch(rep.get("from_time"))
            if rep.get("events_replayed") is None and since is not None:
                rep["events_replayed"] = sum(1 for e in sent if since <= e.get("ts", 0) <= rb["finished_at"])
            by_bad = {r["event_id"] for r in published if r.get("version") == rb["release"]}
            rep["reprocessed_by_stable"] = len({
                r["event_id"] for r in published
                if r.get("version") != rb["release"] and r.get("version") not in bad_versions
                and r["event_id"] in by_bad and r.get("ts", 0) >= start})

    # --- the stack ------------------------------------------------------------------------------
    def clean_workdir(self):
        """A clean restart: stop what an earlier run left recorded in the work directory, then empty it.

        Only a directory that holds an earlier demo run (stack.json or run.json) or nothing is touched.
        """
        wd = self.args.workdir
        if not os.path.isdir(wd) or not os.listdir(wd):
            return
        markers = [m for m in ("stack.json", "run.json") if os.path.exists(os.path.join(wd, m))]
        if not markers:
            raise RuntimeError("--workdir %s is not empty and holds no earlier demo run; choose another" % wd)
        from demo.stack.local import stop_recorded
        try:
            with open(os.path.join(wd, "stack.json"), encoding="utf-8") as fh:
                stop_recorded(json.load(fh))
        except (OSError, ValueError):
            pass
        shutil.rmtree(wd)
        self.say("removed the earlier run in %s (its processes stopped)" % wd)

    def start_stack(self):
        wd = self.args.workdir
        self.clean_workdir()
        self.say("starting the local stack in %s (NATS JetStream, HAProxy, Prometheus; v1 by stagegate.rollout.install)"
                 " ..." % wd)
        self.stack = LocalStack(wd).start()
        self.info = self.stack.info
        if not self.stack.wait_scraped(30):
            raise RuntimeError("Prometheus did not scrape the stable slot within 30 s")
        self.ledger_path = os.path.join(self.info["workdir"], "ledger.jsonl")
        self.run["stack"] = {k: self.info[k] for k in ("nats", "prometheus", "haproxy")}
        self.run["ledger"] = {"path": self.ledger_path}
        self.say("stack up: traffic %s  Prometheus %s  NATS %s" % (
            self.info["haproxy"]["frontend_url"], self.info["prometheus"]["url"], self.info["nats"]["url"]))

    def start_load(self):
        self.loadgen = LoadGen(self.info["haproxy"]["frontend_url"], rate=self.args.rate, workers=24,
                               nats_url=self.info["nats"]["url"], subject=self.info["nats"]["subject_prefix"],
                               events_rate=self.args.events_rate,
                               events_log=os.path.join(self.info["workdir"], "events.jsonl"),
                               run_id="demo%x" % int(self.t0)).start()
        self.say("load generator: %s req/s through HAProxy, %s repository events/s to JetStream"
                 % (self.args.rate, self.args.events_rate))

    def set_faults(self, text):
        with open(self.info["faults_file"], "w", encoding="utf-8") as fh:
            fh.write("# written by demo/run_demo.py\n" + text)


def _read_jsonl(path):
    out = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
    return out


def _epoch(value):
    """Epoch seconds of a number or an ISO 8601 time (Z or offset, any number of fraction digits)."""
    if value is None or isinstance(value, (int, float)):
        return value
    import re
    from datetime import datetime
    text = re.sub(r"(\.\d{6})\d+", r"\1", str(value).strip().replace("Z", "+00:00"))
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _ledger_body(rec):
    """The fields of a ledger entry with its ``evidence`` (or an older ``data``) merged in."""
    body = dict(rec)
    for k in ("data", "evidence"):
        if isinstance(rec.get(k), dict):
            body.update(rec[k])
    return body


def _ms(v):
    return round(v * 1000, 3) if v is not None else None


def _fmt_slot(name, rec, version):
    if not version:
        return "%s: (empty)" % name
    if not rec:
        return "%s %s: no traffic" % (name, version)
    er = rec.get("error_rate")
    return "%s %s: %5.1f req/s err %5.1f%% p95 %6s ms" % (
        name, version, rec["rps"], 100 * er if er is not None else float("nan"),
        "%.0f" % rec["p95_ms"] if rec.get("p95_ms") is not None else "-")


def ledger_decision(rec):
    """A readable summary of one ledger record (rollout_ledger: seq, ts, release, phase, step, event, decision,
    reason, evidence), tolerant of older schemas."""
    data = next((rec[k] for k in ("evidence", "data") if isinstance(rec.get(k), dict)), {})

    def get(*keys):
        return next((src[k] for k in keys for src in (rec, data) if src.get(k) not in (None, "")), None)

    action = get("action", "event", "kind", "type", "record_type") or "record"
    detail = get("detail", "message", "msg", "reason", "verdict", "result")
    if detail is None:
        detail = json.dumps(dict(data) if data else
                            {k: v for k, v in rec.items() if k not in ("hash", "prev_hash", "prev", "seq", "mac")},
                            sort_keys=True, default=str)[:300]
    decision = rec.get("decision")
    if decision not in (None, "") and str(decision) != str(action):
        detail = "%s: %s" % (decision, detail)
    t = _epoch(get("ts", "time", "timestamp", "at"))
    return {"t": t or time.time(), "release": get("version", "release", "rollout_version"),
            "phase": get("phase"), "step": get("step"), "action": str(action), "detail": str(detail)}


def _gate_rows(body, d):
    rows = []
    results = body.get("results") or body.get("checks") or body.get("gates")
    if isinstance(results, list):
        for r in results:
            if isinstance(r, dict):
                rows.append(_gate_row(r, d))
    elif any(k in body for k in ("observed", "value")):
        rows.append(_gate_row(body, d))
    return rows


def _gate_row(r, d):
    return {"t": d["t"], "release": d.get("release"), "phase": d.get("phase"), "step": r.get("step", d.get("step")),
            "check": r.get("name") or r.get("check") or r.get("metric"), "observed": r.get("observed", r.get("value")),
            "threshold": r.get("threshold") or r.get("condition") or r.get("expect"),
            "window": r.get("window"), "passed": r.get("passed", r.get("ok"))}


def _judge_row(body, d):
    verdict = body.get("verdict")
    errors = body.get("errors") if isinstance(body.get("errors"), dict) else {}
    e = errors.get("e_fail", body.get("e_fail", body.get("e_value")))
    if verdict is None and e is None:
        return None
    return {"t": d["t"], "release": d.get("release"), "phase": d.get("phase"), "step": body.get("step"),
            "metric": "error_rate", "e_value": e, "boundary": errors.get("fail_threshold", body.get("fail_threshold")),
            "verdict": verdict}


# ----- drivers ------------------------------------------------------------------------------------
class AnsibleDriver:
    """Runs the collection's phase playbooks (by FQCN, against the stack's inventory, as a user would)."""

    name = "ansible"

    def __init__(self, demo):
        self.demo = demo

    def check(self):
        coll = os.path.join(ROOT, ".collections", "ansible_collections", "stagegate", "rollout")
        missing = [p for p in ["playbooks/%s.yml" % ph for ph in ("install",) + PHASES] + ["inventories/demo"]
                   if not os.path.exists(os.path.join(ROOT, p))]
        if not os.path.exists(os.path.join(coll, "galaxy.yml")):
            missing.append(os.path.relpath(coll, ROOT) + " (the collection, run make setup)")
        if missing:
            raise RuntimeError("the collection's playbooks/inventory are missing: %s" % ", ".join(missing))
        if not shutil.which("ansible-playbook", path=playbook.BIN + os.pathsep + os.environ.get("PATH", "")):
            raise RuntimeError("ansible-playbook is not on PATH (run make setup)")

    def extra_vars(self, release, phase):
        """What a user adds on the command line; everything else is in the inventory."""
        return {"rollout_auto_approve": True, "demo_shortened": bool(self.demo.args.shortened),
                "demo_chaos": bool(self.demo.args.chaos)}

    def run_phase(self, release, phase):
        """True when the phase playbook succeeded (promoted), False when it failed (rolled back)."""
        demo = self.demo
        argv = playbook.argv(demo.info, phase, release, self.extra_vars(release, phase))
        log_path = os.path.join(demo.info["workdir"], "logs", "%s-%s.log" % (release, phase))
        demo.say("PLAYBOOK %s" % " ".join(["ansible-playbook"] + argv[1:]))
        with open(log_path, "w", encoding="utf-8") as log:
            proc = subprocess.Popen(argv, cwd=demo.info["workdir"], env=playbook.env(), stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, start_new_session=True)
            timer = threading.Timer(demo.args.phase_timeout, _kill_session, (proc,))
            timer.daemon = True
            timer.start()
            try:
                for line in proc.stdout:
                    log.write(line)
                    log.flush()
                    s = line.strip()
                    if s.startswith("TASK [") and demo.args.verbose:
                        demo.say("  %s" % s.rstrip("*").strip())
                    elif s.startswith(("fatal:", "FAILED", "ERROR!", "[ERROR]")) or (
                            s.startswith("TASK [") and ("rescue" in s.lower() or "roll back" in s.lower())):
                        demo.say("  %s" % s.rstrip("*").strip()[:200])
                rc = proc.wait()
            finally:
                timer.cancel()
                if proc.poll() is None:  # interrupted: stop the playbook with us
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(10)
            if getattr(proc, "_demo_timed_out", False):
                demo.say("  playbook timed out after %ss" % demo.args.phase_timeout)
                rc = -1
        demo.say("PLAYBOOK %s/%s exit %s (log %s)" % (release, phase, rc, log_path))
        if rc == 0:
            self.check_retention(phase)
        return rc == 0

    def check_retention(self, phase):
        """After a promoted phase, the stream holds the retention the inventory's plan declares (read-only)."""
        import asyncio
        import nats
        import yaml
        from ansible_collections.stagegate.rollout.plugins.module_utils.jetstream_config import (
            parse_count, parse_duration, parse_size)
        with open(os.path.join(self.demo.info["inventory"], "group_vars", "all", "phases.yml"),
                  encoding="utf-8") as fh:
            plan = yaml.safe_load(fh)["rollout_%s" % phase]
        declared = plan.get("retention_after") or plan["retention"]
        expected = {"max_age": parse_duration(declared["max_age"], "max_age", unlimited=True) / 1e9,
                    "max_msgs": parse_count(declared["max_msgs"], "max_msgs"),
                    "max_bytes": parse_size(declared["max_bytes"], "max_bytes")}

        async def go():
            nc = await nats.connect(self.demo.info["nats"]["url"])
            try:
                c = (await nc.jetstream().stream_info(self.demo.info["nats"]["stream"])).config
                return {"max_age": c.max_age or 0, "max_msgs": c.max_msgs, "max_bytes": c.max_bytes}
            finally:
                await nc.close()
        observed = asyncio.run(go())
        with self.demo.lock:
            self.demo.run["retention"].append({"phase": phase, "expected": expected, "observed": observed,
                                               "matches": all(observed[k] == v for k, v in expected.items())})
        self.demo.say("RETAIN   %s: %s (inventory: %s)" % (phase, observed, declared))


def _kill_session(proc):
    """Stop a playbook run that took too long (its whole session: ansible's workers too)."""
    proc._demo_timed_out = True
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass


def account_events(info, bad_versions, timeout=30.0, say=print):
    """Every event the load generator stored must be recorded exactly once by a healthy version."""
    ev_path = os.path.join(info["workdir"], "events.jsonl")
    sent = []
    if os.path.exists(ev_path):
        with open(ev_path, encoding="utf-8") as fh:
            sent = [json.loads(line)["id"] for line in fh if line.strip()]

    def healthy_records():
        recs = []
        if os.path.exists(info["publish_file"]):
            with open(info["publish_file"], encoding="utf-8") as fh:
                for line in fh:
                    try:
                        r = json.loads(line)
                    except ValueError:
                        continue
                    # the staging shadow's build-only records do not count (its own durable, nothing published);
                    # the stable slots' and a canary's, on its own durable during a split of the events, do
                    if r.get("action") != "built":
                        recs.append(r)
        return recs

    deadline = time.time() + timeout
    while True:
        recs = healthy_records()
        good = [r for r in recs if r["version"] not in bad_versions]
        seen = {r["event_id"] for r in good}
        missing = [e for e in sent if e not in seen]
        if not missing or time.time() > deadline:
            break
        time.sleep(0.5)
    counts = {}
    by_version = {}
    for r in recs:
        by_version[r["version"]] = by_version.get(r["version"], 0) + 1
    for r in good:
        counts[r["event_id"]] = counts.get(r["event_id"], 0) + 1
    sent_set = set(sent)
    return {
        "published": len(sent),
        "processed_once": sum(1 for e in sent if counts.get(e) == 1),
        "lost": len(missing),
        "lost_ids": missing[:20],
        "duplicates": sum(1 for e in sent if counts.get(e, 0) > 1),
        "unknown": sum(1 for e in counts if e not in sent_set),
        "by_version": by_version,
        "bad_version": ",".join(sorted(bad_versions)),
        "handled_by_bad_version": sum(n for v, n in by_version.items() if v in bad_versions),
    }


def verify_ledger(path):
    """Verify the hash chain with the collection's own ledger code (what ``rollout_ledger action=verify`` runs)."""
    if not path or not os.path.exists(path):
        return {"path": path, "verified": None, "records": 0, "message": "no ledger written"}
    from ansible_collections.stagegate.rollout.plugins.module_utils.ledger import Ledger, LedgerError
    try:
        res = Ledger(path).verify()
    except LedgerError as exc:
        return {"path": path, "verified": False, "records": None, "message": str(exc)}
    return {"path": path, "verified": bool(res.get("valid")), "records": res.get("entries"),
            "message": "chain intact up to seq %s" % res.get("head_seq") if res.get("valid")
            else "broken at seq %s: %s" % (res.get("broken_seq"), res.get("problem"))}


# ----- main -----------------------------------------------------------------------------------------
def release_flow(demo, driver, release, expect_promoted):
    rel = {"version": release, "outcome": None, "phases": [],
           "expected": "promoted" if expect_promoted else "rolled_back"}
    demo.run["releases"].append(rel)
    for phase in PHASES:
        demo.context.update(release=release, phase=phase, step=0)
        demo.say("=" * 20 + " %s  %s " % (release, phase.upper()) + "=" * 20)
        started = time.time()
        try:
            ok = driver.run_phase(release, phase)
        except Exception as exc:
            demo.say("phase %s of %s raised: %s" % (phase, release, exc))
            traceback.print_exc()
            ok = False
        rel["phases"].append({"phase": phase, "started": started, "ended": time.time(),
                              "result": "promoted" if ok else "rolled_back"})
        demo.say("%s %s: %s in %.1f s" % (release, phase, "PROMOTED" if ok else "ROLLED BACK", time.time() - started))
        if phase == "advanced" and demo.args.chaos:
            time.sleep(0.5)  # the monitor thread reads the ledger every 100 ms
            say_chaos(demo, release)
        if not ok:
            rel["outcome"] = "rolled_back"
            return False
    rel["outcome"] = "promoted"
    return True


def say_chaos(demo, release):
    """The advanced phase's chaos drills of ``release`` as its ledger recorded them: one line per drill, the score."""
    with demo.lock:
        drills = [c for c in demo.run["chaos"] if c["release"] == release]
        score = demo.run.get("chaos_score") or {}
    for c in drills:
        demo.say("CHAOS    %s (%s): %s — %s" % (c["drill"], c["kind"], "recovered" if c["success"] else "FAILED",
                                                c["detail"]))
    if score.get("release") == release:
        demo.say("CHAOS    score %s: %s (promotion gate: %s)" % (release, score["reason"], score["decision"]))
    else:
        demo.say("CHAOS    no chaos score of %s in the ledger" % release)


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="demo/run_demo.py", description=__doc__.split("\n", maxsplit=1)[0])
    p.add_argument("--workdir", default=os.path.join(ROOT, "demo", "run"))
    p.add_argument("--shortened", action="store_true", help="short analysis windows (CI)")
    p.add_argument("--rate", type=float, default=None,
                   help="HTTP requests per second through HAProxy (default %s; %s with --shortened)"
                   % (FULL_RATE, SHORTENED_RATE))
    p.add_argument("--events-rate", type=float, default=None,
                   help="repository events per second to JetStream (default %s; %s with --shortened)"
                   % (FULL_EVENTS_RATE, SHORTENED_EVENTS_RATE))
    p.add_argument("--bad-error-rate", type=float, default=0.2)
    p.add_argument("--skip-bad", action="store_true", help="only roll the good release")
    p.add_argument("--keep-up", action="store_true", help="leave the stack running at the end")
    p.add_argument("--no-chaos", dest="chaos", action="store_false",
                   help="the advanced phase runs no chaos drills (-e demo_chaos=false)")
    p.add_argument("--phase-timeout", type=float, default=900.0, help="seconds before a phase playbook is stopped")
    p.add_argument("--print-every", type=float, default=5.0)
    p.add_argument("--verbose", action="store_true", help="print every playbook task")
    a = p.parse_args(argv)
    a.workdir = os.path.abspath(a.workdir)
    if a.rate is None:
        a.rate = SHORTENED_RATE if a.shortened else FULL_RATE
    if a.events_rate is None:
        a.events_rate = SHORTENED_EVENTS_RATE if a.shortened else FULL_EVENTS_RATE
    return a


def main(argv=None):
    args = parse_args(argv)
    demo = Demo(args)
    driver = AnsibleDriver(demo)
    ok = False
    monitor = None
    exit_code = 1
    try:
        driver.check()
        demo.start_stack()
        demo.set_faults("DEMO_FAULT_ERROR_RATE__%s=%s\nDEMO_FAULT_SCOPE__%s=external\n"
                        % (BAD.upper(), args.bad_error_rate, BAD.upper()))
        monitor = threading.Thread(target=demo.monitor, name="monitor", daemon=True)
        monitor.start()
        demo.start_load()
        time.sleep(3)
        good_ok = release_flow(demo, driver, GOOD, True)
        bad_rolled_back = None
        if good_ok and not args.skip_bad:
            demo.say("release %s is made bad on purpose: %d%% errors once it publishes externally"
                     % (BAD, 100 * args.bad_error_rate))
            bad_rolled_back = not release_flow(demo, driver, BAD, False)
        demo.context.update(release=None, phase="wrap-up", step=0)
        time.sleep(2)
        lg = demo.loadgen.stop()
        demo.run["loadgen"] = lg
        demo.say("load generator stopped: %d requests, %d errors; %d events stored" % (
            lg["requests"], lg["errors"], lg["events"]["published"]))
        demo.run["events"] = account_events(demo.info, {BAD} if bad_rolled_back else set(), say=demo.say)
        demo.tail_ledger()
        demo.finish_rollbacks({BAD} if bad_rolled_back else set())
        for rb in demo.run["rollbacks"]:
            traffic = (rb["traffic_restored_at"] - rb["verdict_at"]) if rb["traffic_restored_at"] and rb["verdict_at"] \
                else None
            demo.say("rollback of %s at %s: canary traffic 0 %% %s after the verdict; %s events replayed, %s of %s's "
                     "reprocessed by a healthy version" % (
                         rb["release"], rb["phase"], "%.2f s" % traffic if traffic is not None else "(not seen)",
                         rb["replay"]["events_replayed"], rb["replay"]["reprocessed_by_stable"], rb["release"]))
        demo.run["ledger"] = verify_ledger(demo.ledger_path)
        ev = demo.run["events"]
        demo.say("events: %d stored, %d processed exactly once by a healthy version, %d lost, %d duplicated"
                 % (ev["published"], ev["processed_once"], ev["lost"], ev["duplicates"]))
        # the drills' promotion gate is the ledger's chaos score of the good release (its advanced phase stops on it)
        score = demo.run.get("chaos_score") or {}
        chaos_ok = not args.chaos or not good_ok or (score.get("release") == GOOD and score.get("decision") == "pass")
        ok = (good_ok and (args.skip_bad or bad_rolled_back) and ev["lost"] == 0 and ev["duplicates"] == 0
              and chaos_ok)
        exit_code = 0 if ok else 1
        why = [w for w, bad in (("the good release %s was not promoted" % GOOD, not good_ok),
                                ("the bad release %s was not rolled back" % BAD, not (args.skip_bad or bad_rolled_back)),
                                ("%d event(s) lost" % ev["lost"], ev["lost"]),
                                ("%d event(s) duplicated" % ev["duplicates"], ev["duplicates"]),
                                ("the chaos score of %s: %s" % (GOOD, score.get("reason") or "not in the ledger"),
                                 not chaos_ok)) if bad]
        if why:
            demo.say("demo FAILED because: " + "; ".join(why))
    except KeyboardInterrupt:
        demo.say("interrupted")
        exit_code = 130
    except Exception as exc:
        demo.say("demo failed: %s" % exc)
        traceback.print_exc()
    finally:
        demo.stop_evt.set()
        if monitor:
            monitor.join(5)
        if demo.loadgen and demo.loadgen.running():
            demo.run["loadgen"] = demo.loadgen.stop()
        demo.run["finished_at"] = time.time()
        demo.run["ok"] = ok
        report_dir = os.path.join(args.workdir, "report")
        try:
            os.makedirs(args.workdir, exist_ok=True)
            with open(os.path.join(args.workdir, "run.json"), "w", encoding="utf-8") as fh:
                json.dump(demo.run, fh, indent=1, sort_keys=True, default=str)
            from demo.report import build
            html_path = build(demo.run, report_dir)
        except Exception as exc:
            html_path = None
            demo.say("report failed: %s" % exc)
            traceback.print_exc()
        if demo.stack is not None and not args.keep_up:
            demo.stack.stop()
            demo.say("stack stopped")
        demo.say("demo %s in %.0f s" % ("SUCCEEDED" if ok else "FAILED", time.time() - demo.t0))
        if html_path:
            demo.say("report: %s" % html_path)
            demo.say("data:   %s" % os.path.join(args.workdir, "run.json"))
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
