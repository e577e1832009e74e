"""The demo service: a small stand-in for the GitGuard org-brain of zero-drama-phased-rollout.md.

    python -m demo.service --env-file FILE --port N --version V [--nats-url URL]
        [--stream NAME] [--durable NAME] [--publish-dir DIR] [--graph-port 8002]

* Reads its feature flags and fault knobs from ``--env-file`` (``KEY=VALUE`` lines);
  ``SIGHUP`` re-reads the file.
* Serves ``GET /api/ping``, ``GET /api/docs/<owner>/<repo>``, ``GET /api/flags``,
  ``GET /api/slo`` (SLO_MONITORING_ENABLED), ``GET /api/chaos``
  (CHAOS_ENGINEERING_ENABLED), ``/healthz`` and ``/metrics``; every response
  carries ``X-Version``.
* With GRAPH_API_ENABLED it also serves a Graph API on ``--graph-port``
  (``GET /graph/repos``, ``GET /graph/repos/<owner>/<repo>``, CORS headers,
  ``OPTIONS`` preflight).
* Consumes repository events from a JetStream stream with a durable pull
  consumer and, per event, appends one JSON line to
  ``<publish-dir>/published.jsonl`` (action ``published`` when
  ``CODEX_PUBLISH_PORTAL=external`` and the repository is included, ``built``
  when build-only, ``skipped`` when the repository is not in
  ``CODEX_REPO_INCLUDE_LIST``). The message is acknowledged only after its line
  is written. An event this version already recorded (a redelivery, or a replay
  after a rollback) is acknowledged without a second line. With
  ``CODEX_PUBLISH_ENABLED=false`` (the kill switch) or ``CODEX_CONSUME_ENABLED=false`` (a pause: what a
  split of the events turns off; no other flag requires it) the service does not consume at all: events
  stay in the stream until a version with publishing on takes them. A pause first handles what the server
  delivered for the last pull and the client had not handed out yet, so nothing stays unacknowledged.
* Event cohorts (a queue-consumer canary, docs/phases.md "Queue-consumer canaries"): ``CODEX_EVENTS`` says
  which events this process takes: ``all`` (default), ``cohort`` (only those whose repository is in the cohort)
  or ``rest`` (every other one). The cohort is ``CODEX_EVENT_COHORT_INCLUDE`` (repositories, comma-separated)
  and/or a stable hashed share of repositories, ``CODEX_EVENT_COHORT_PERCENT`` % drawn with
  ``CODEX_EVENT_COHORT_SEED``: the hash of the collection's ``cohort`` filter
  (``plugins/module_utils/cohort.py``, loaded from this checkout), so the filter and the service agree. The
  split holds for stream sequences after ``CODEX_EVENT_SPLIT_AFTER_SEQ`` and up to
  ``CODEX_EVENT_SPLIT_UNTIL_SEQ`` (when above 0): outside these fences ``rest`` takes every event and
  ``cohort`` none, so a split can begin and end at a sequence every slot agrees on. An
  event of the other side is acknowledged without a line in ``published.jsonl`` (a replay of this durable
  after the split ends makes this version process it). Per slot (``--slot``): ``demo_slot_events`` by
  outcome (processed, duplicate, failed, left, term), ``demo_slot_event_redeliveries`` and the processing
  time histogram ``demo_slot_event_seconds``, so a judge can compare the two arms' events.
* Fault knobs (also from ``--faults-file``; ``DEMO_FAULT_ERROR_RATE``, ``DEMO_FAULT_LATENCY_MS``,
  ``DEMO_FAULT_TAIL_MS`` + ``DEMO_FAULT_TAIL_FRACTION``,
  ``DEMO_FAULT_CRASH_ON_START``, ``DEMO_FAULT_SCOPE`` always|external) make a release bad on purpose; a key suffixed
  with ``__<VERSION>`` (e.g. ``DEMO_FAULT_ERROR_RATE__V3``) applies to that
  version only and wins over the plain key.
* SIGTERM/SIGINT: stop fetching, finish in-flight events and requests, exit 0.
"""
import argparse
import asyncio
import errno
import fcntl
import hashlib
import importlib.util
import json
import os
import random
import re
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

FLAG_NAMES = (
    "CODEX_PUBLISH_ENABLED",
    "CODEX_CONSUME_ENABLED",
    "CODEX_PUBLISH_PORTAL",
    "CODEX_REPO_INCLUDE_LIST",
    "CODEX_EMBEDDINGS_ENABLED",
    "CODEX_OWNERS_ENABLED",
    "POLICY_TRANSPARENCY_ENABLED",
    "MERMAID_GRAPHS_ENABLED",
    "GRAPH_API_ENABLED",
    "CHAOS_ENGINEERING_ENABLED",
    "SLO_MONITORING_ENABLED",
)
BOOL_FLAGS = tuple(n for n in FLAG_NAMES if n.endswith("_ENABLED"))
FAULT_NAMES = (
    "DEMO_FAULT_ERROR_RATE",
    "DEMO_FAULT_LATENCY_MS",
    "DEMO_FAULT_TAIL_MS",
    "DEMO_FAULT_TAIL_FRACTION",
    "DEMO_FAULT_CRASH_ON_START",
    "DEMO_FAULT_SCOPE",
)
PORTALS = ("build-only", "external")
FAULT_SCOPES = ("always", "external")
TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off", "")

# 1 ms .. 10 s: resolves this fast service's normal latency and is dense around the
# 500 ms / 3 s / 5 s gate thresholds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0)
LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)

DEFAULT_STREAM = "REPO_EVENTS"
DEFAULT_SUBJECT = "repo.events.>"
DEFAULT_DURABLE = "org-brain"
PUBLISH_FILE = "published.jsonl"
# A killed consumer's unacknowledged events come back after this: short, so that a crash
# costs seconds of freshness, not minutes.
ACK_WAIT_S = 5

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load_cohort():
    """The collection's cohort hash, from this checkout (the demo runs from it; no second copy of the hash)."""
    spec = importlib.util.spec_from_file_location(
        "stagegate_rollout_cohort", os.path.join(ROOT, "plugins", "module_utils", "cohort.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cohort = _load_cohort()
EVENT_SIDES = ("all", "cohort", "rest")
SLOT_OUTCOMES = ("processed", "duplicate", "failed", "left", "term")

disable_created_metrics()  # no *_created series: plain /metrics readers get only what they need


class ConfigError(ValueError):
    """A flag or fault knob has a value the service does not accept."""


def parse_env_file(path):
    """Parse ``KEY=VALUE`` lines (comments, blank lines, ``export`` and quotes allowed)."""
    values = {}
    with open(path, encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("export "):
                line = line[len("export "):].lstrip()
            if "=" not in line:
                raise ConfigError("%s:%d: expected KEY=VALUE, got %r" % (path, lineno, line))
            key, value = line.split("=", 1)
            key, value = key.strip(), value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            values[key] = value
    return values


def _bool(name, value):
    v = str(value).strip().lower()
    if v in TRUE:
        return True
    if v in FALSE:
        return False
    raise ConfigError("%s=%r is not a boolean (accepted: %s)" % (name, value, ", ".join(TRUE + FALSE[:-1])))


def _float(name, value, lo, hi=None):
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ConfigError("%s=%r is not a number" % (name, value))
    if f < lo or (hi is not None and f > hi):
        raise ConfigError("%s=%r is out of range (accepted: %s..%s)" % (name, value, lo, "" if hi is None else hi))
    return f


def _seq(name, value):
    text = str(value).strip() or "0"
    if not text.isdigit():
        raise ConfigError("%s=%r is not a stream sequence (accepted: a whole number, 0 for none)" % (name, value))
    return int(text)


def version_key(version):
    return re.sub(r"[^A-Za-z0-9]", "_", version).upper()


class Config:
    """Flags and fault knobs of one version, parsed from an env file."""

    def __init__(self, values, version):
        self.raw = dict(values)
        suffix = "__" + version_key(version)

        def get(name, default=""):
            if name + suffix in values:
                return values[name + suffix]
            return values.get(name, default)

        self.flags = {}
        for name in BOOL_FLAGS:
            default = "true" if name in ("CODEX_PUBLISH_ENABLED", "CODEX_CONSUME_ENABLED") else "false"
            self.flags[name] = _bool(name, get(name, default))
        portal = get("CODEX_PUBLISH_PORTAL", "build-only").strip().lower()
        if portal not in PORTALS:
            raise ConfigError("CODEX_PUBLISH_PORTAL=%r is not accepted (accepted: %s)" % (portal, ", ".join(PORTALS)))
        self.flags["CODEX_PUBLISH_PORTAL"] = portal
        include = [r.strip() for r in get("CODEX_REPO_INCLUDE_LIST", "").split(",") if r.strip()]
        self.flags["CODEX_REPO_INCLUDE_LIST"] = include
        self.include = frozenset(include)
        self.cors_origins = get("GRAPH_API_CORS_ORIGINS", "*")

        side = get("CODEX_EVENTS", "all").strip().lower() or "all"
        if side not in EVENT_SIDES:
            raise ConfigError("CODEX_EVENTS=%r is not accepted (accepted: %s)" % (side, ", ".join(EVENT_SIDES)))
        self.event_side = side
        self.cohort_percent = _float("CODEX_EVENT_COHORT_PERCENT", get("CODEX_EVENT_COHORT_PERCENT", "0") or "0",
                                     0, 100)
        self.cohort_seed = get("CODEX_EVENT_COHORT_SEED", "")
        self.cohort_include = frozenset(
            r.strip() for r in get("CODEX_EVENT_COHORT_INCLUDE", "").split(",") if r.strip())
        self.split_after = _seq("CODEX_EVENT_SPLIT_AFTER_SEQ", get("CODEX_EVENT_SPLIT_AFTER_SEQ", "0"))
        self.split_until = _seq("CODEX_EVENT_SPLIT_UNTIL_SEQ", get("CODEX_EVENT_SPLIT_UNTIL_SEQ", "0"))
        if self.split_until and self.split_until <= self.split_after:
            raise ConfigError("CODEX_EVENT_SPLIT_UNTIL_SEQ=%d must be above CODEX_EVENT_SPLIT_AFTER_SEQ=%d (or 0: "
                              "no end)" % (self.split_until, self.split_after))
        if side != "all" and self.cohort_percent == 0 and not self.cohort_include:
            raise ConfigError("CODEX_EVENTS=%s needs a cohort: CODEX_EVENT_COHORT_PERCENT above 0 (accepted: up "
                              "to 100) or repositories in CODEX_EVENT_COHORT_INCLUDE; both are empty" % side)

        self.error_rate = _float("DEMO_FAULT_ERROR_RATE", get("DEMO_FAULT_ERROR_RATE", "0") or "0", 0, 1)
        self.latency_ms = _float("DEMO_FAULT_LATENCY_MS", get("DEMO_FAULT_LATENCY_MS", "0") or "0", 0)
        self.tail_ms = _float("DEMO_FAULT_TAIL_MS", get("DEMO_FAULT_TAIL_MS", "0") or "0", 0)
        self.tail_fraction = _float("DEMO_FAULT_TAIL_FRACTION", get("DEMO_FAULT_TAIL_FRACTION", "0") or "0", 0, 1)
        self.crash_on_start = _bool("DEMO_FAULT_CRASH_ON_START", get("DEMO_FAULT_CRASH_ON_START", "false"))
        scope = get("DEMO_FAULT_SCOPE", "always").strip().lower() or "always"
        if scope not in FAULT_SCOPES:
            raise ConfigError("DEMO_FAULT_SCOPE=%r is not accepted (accepted: %s)" % (scope, ", ".join(FAULT_SCOPES)))
        self.fault_scope = scope
        if scope == "external" and portal != "external":
            # the bug is in the external publishing path: invisible while build-only (staging)
            self.error_rate = self.latency_ms = self.tail_ms = self.tail_fraction = 0.0

    def faults(self):
        return {"error_rate": self.error_rate, "latency_ms": self.latency_ms, "tail_ms": self.tail_ms,
                "tail_fraction": self.tail_fraction, "crash_on_start": self.crash_on_start,
                "scope": self.fault_scope}

    def events(self):
        return {"side": self.event_side, "percent": self.cohort_percent, "seed": self.cohort_seed,
                "include": sorted(self.cohort_include), "after_seq": self.split_after,
                "until_seq": self.split_until or None}

    def takes(self, repo, seq):
        """Whether this process takes the event of ``repo`` at stream sequence ``seq``: CODEX_EVENTS and the
        cohort decide within the split's fences (after CODEX_EVENT_SPLIT_AFTER_SEQ, up to
        CODEX_EVENT_SPLIT_UNTIL_SEQ when above 0); outside them ``rest`` takes every event, ``cohort`` none."""
        if self.event_side == "all":
            return True
        if seq <= self.split_after or (self.split_until and seq > self.split_until):
            return self.event_side == "rest"
        inside = cohort.in_cohort(repo, self.cohort_percent, self.cohort_seed, include=self.cohort_include)
        return inside == (self.event_side == "cohort")

    def included(self, repo):
        return not self.include or repo in self.include

    def action_for(self, repo):
        if not self.included(repo):
            return "skipped"
        return "published" if self.flags["CODEX_PUBLISH_PORTAL"] == "external" else "built"


class Metrics:
    def __init__(self, version, slot=""):
        self.version = version
        self.slot = slot
        self.registry = r = CollectorRegistry()
        self.requests = Counter("demo_http_requests", "HTTP requests served, by version, status code and route",
                                ["version", "code", "route"], registry=r)
        self.duration = Histogram("demo_http_request_duration_seconds",
                                  "Latency of API requests (everything but /healthz and /metrics)",
                                  ["version"], buckets=LATENCY_BUCKETS, registry=r)
        self.events = Counter("demo_events_processed", "Repository events handled, by version and outcome "
                              "(published, built, skipped, duplicate, failed)",
                              ["version", "outcome"], registry=r)
        self.lag = Histogram("demo_publish_lag_seconds",
                             "Freshness: time from an event's publication to its processing",
                             ["version"], buckets=LAG_BUCKETS, registry=r)
        # the consumer's events per slot: what a judge compares between a stable and a canary consumer
        self.slot_events = Counter("demo_slot_events", "Events this slot's consumer was given, by version, slot "
                                   "and outcome: processed (recorded, acknowledged), duplicate (recorded before, "
                                   "acknowledged), failed (processing failed: nak, redelivered later), left (another "
                                   "slot's cohort: acknowledged untouched), term (not an event: terminated)",
                                   ["version", "slot", "outcome"], registry=r)
        self.slot_redeliveries = Counter("demo_slot_event_redeliveries", "Deliveries of an event this slot takes "
                                         "that JetStream delivered before (num_delivered above 1)",
                                         ["version", "slot"], registry=r)
        # The append to published.jsonl is not counted: every slot appends to that one file (lock, fsync), so
        # the less busy slot would wait more often for the other's writes and look slower than it is.
        self.slot_seconds = Histogram("demo_slot_event_seconds", "Processing time of the events this slot takes "
                                      "(processed, duplicate or failed): this version's work on the event up to "
                                      "its record in the shared published.jsonl", ["version", "slot"],
                                      buckets=LATENCY_BUCKETS, registry=r)
        self.build_info = Gauge("demo_build_info", "Always 1; carries the running version", ["version"], registry=r)
        self.flag = Gauge("demo_flag_enabled", "1 when a boolean feature flag is on", ["version", "flag"], registry=r)
        self.consumer_up = Gauge("demo_consumer_connected", "1 while the JetStream consumer is connected and bound",
                                 ["version"], registry=r)
        self.build_info.labels(version).set(1)
        self.consumer_up.labels(version).set(0)
        # Pre-create the common series so that rate() has a zero start.
        for code in ("200", "500"):
            for route in ("/api/ping", "/api/docs"):
                self.requests.labels(version, code, route)
        for outcome in ("published", "built", "skipped", "duplicate", "failed"):
            self.events.labels(version, outcome)
        self.duration.labels(version)
        self.lag.labels(version)
        for outcome in SLOT_OUTCOMES:
            self.slot_events.labels(version, slot, outcome)
        self.slot_redeliveries.labels(version, slot)
        self.slot_seconds.labels(version, slot)

    def slot_event(self, outcome, seconds=None):
        """One event of this slot's consumer ended with ``outcome`` after ``seconds`` of this version's work."""
        self.slot_events.labels(self.version, self.slot, outcome).inc()
        if seconds is not None:
            self.slot_seconds.labels(self.version, self.slot).observe(seconds)

    def set_flags(self, cfg):
        for name in BOOL_FLAGS:
            self.flag.labels(self.version, name).set(1 if cfg.flags[name] else 0)


class PublishLog:
    """``published.jsonl`` shared by every version: one line per processed event, appended under a lock."""

    def __init__(self, directory, version, durable):
        os.makedirs(directory, exist_ok=True)
        self.path = os.path.join(directory, PUBLISH_FILE)
        self.version = version
        self.seen = set()
        self.docs = {}
        self.offset = 0
        self.lock = threading.Lock()
        if os.path.exists(self.path):
            with open(self.path, "rb") as fh:
                data = fh.read()
            self.offset = len(data)
            for line in data.splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a torn last line from a crash; ignore it
                # de-duplication is per version and consumer: a staging shadow consumer
                # (build-only) does not hide an event from the production consumer
                self._learn(rec, durable)

    def _learn(self, rec, durable):
        if rec.get("version") == self.version and rec.get("durable", durable) == durable:
            self.seen.add(rec.get("event_id"))
            if rec.get("action") in ("published", "built"):
                self.docs[rec.get("repo")] = rec

    def record(self, rec):
        """Append ``rec`` unless this version and consumer already recorded its event, in this process or in
        another one sharing the file (several hosts' instances after a replay): the check and the append happen
        under one lock, so an event is recorded once. Returns False for a duplicate."""
        line = (json.dumps(rec, sort_keys=True, separators=(",", ":")) + "\n").encode()
        with self.lock:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                os.lseek(fd, self.offset, os.SEEK_SET)
                new = b""
                while True:
                    chunk = os.read(fd, 1 << 16)
                    if not chunk:
                        break
                    new += chunk
                for raw in new.splitlines():
                    try:
                        self._learn(json.loads(raw), rec.get("durable"))
                    except ValueError:
                        continue  # a torn line from a crash
                self.offset += len(new)
                if rec["event_id"] in self.seen:
                    return False
                view = memoryview(line)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
                os.fsync(fd)
                self.offset += len(line)
            finally:
                os.close(fd)  # closing releases the flock
            self._learn(rec, rec.get("durable"))
            return True


class Service:
    def __init__(self, args):
        self.args = args
        self.version = args.version
        self.env_file = args.env_file
        self.cfg = Config(self._values(), args.version)
        self.metrics = Metrics(args.version, args.slot)
        self.metrics.set_flags(self.cfg)
        self.rng = random.Random(os.environ.get("DEMO_FAULT_SEED"))
        self.rng_lock = threading.Lock()
        self.publish = PublishLog(args.publish_dir, args.version, args.durable) if args.publish_dir else None
        self.stopping = threading.Event()
        self.started = time.time()
        self.consumer_state = "disabled" if not args.nats_url else "starting"
        self.consumer_error = ""
        self.events_handled = 0
        self.http = None
        self.graph = None
        self.consumer_thread = None
        self.loop = None
        self.inflight = 0
        self.inflight_lock = threading.Lock()

    # --- configuration ---------------------------------------------------------------
    def _values(self):
        values = parse_env_file(self.env_file)
        faults = self.args.faults_file
        if faults and os.path.exists(faults):
            # only fault knobs come from the faults file; flags stay the flags role's business
            values.update({k: v for k, v in parse_env_file(faults).items() if k.startswith("DEMO_FAULT_")})
        return values

    def reload(self):
        try:
            cfg = Config(self._values(), self.version)
        except (OSError, ConfigError) as exc:
            log("reload of %s refused, keeping the previous flags: %s" % (self.env_file, exc))
            return
        self.cfg = cfg
        self.metrics.set_flags(cfg)
        log("reloaded %s: flags %s faults %s events %s"
            % (self.env_file, json.dumps(cfg.flags), json.dumps(cfg.faults()), json.dumps(cfg.events())))

    # --- faults ----------------------------------------------------------------------
    def fault_delay_and_error(self):
        cfg = self.cfg
        with self.rng_lock:
            tail = cfg.tail_fraction > 0 and self.rng.random() < cfg.tail_fraction
            fail = cfg.error_rate > 0 and self.rng.random() < cfg.error_rate
        delay = cfg.latency_ms + (cfg.tail_ms if tail else 0)
        return delay / 1000.0, fail

    def event_fails(self):
        if self.cfg.error_rate <= 0:
            return False
        with self.rng_lock:
            return self.rng.random() < self.cfg.error_rate

    # --- documents -------------------------------------------------------------------
    def doc_for(self, repo):
        cfg = self.cfg
        rec = self.publish.docs.get(repo) if self.publish else None
        doc = {
            "repo": repo,
            "version": self.version,
            "status": rec["action"] if rec else ("pending" if cfg.included(repo) else "excluded"),
            "portal": cfg.flags["CODEX_PUBLISH_PORTAL"],
            "last_event": rec["event_id"] if rec else None,
            "last_seq": rec["seq"] if rec else None,
        }
        if cfg.flags["POLICY_TRANSPARENCY_ENABLED"]:
            doc["policy_refs"] = ["policies/%s.rego#L%d" % (repo.split("/")[-1], 1 + _h(repo) % 200)]
        if cfg.flags["MERMAID_GRAPHS_ENABLED"]:
            doc["mermaid"] = "graph LR\n  %s --> %s" % (_node(repo), _node(graph_neighbours(repo)[0]))
        return doc

    def slo(self):
        # p99 freshness from the lag histogram (upper bound of the bucket holding the 99th percentile)
        samples = {s.labels.get("le"): s.value for m in self.metrics.lag.collect() for s in m.samples
                   if s.name.endswith("_bucket") and s.labels.get("version") == self.version}
        total = samples.get("+Inf", 0)
        p99 = None
        if total:
            for le in LAG_BUCKETS:
                if samples.get(str(le), samples.get(repr(le), 0)) >= 0.99 * total:
                    p99 = le
                    break
            else:
                p99 = float("inf")
        return {"version": self.version, "events": total, "freshness_p99_upper_bound_s": p99,
                "freshness_target_s": 10}

    # --- lifecycle ---------------------------------------------------------------------
    def start(self):
        cfg = self.cfg
        if cfg.crash_on_start:
            log("DEMO_FAULT_CRASH_ON_START is set for version %s: exiting with code 3" % self.version)
            sys.exit(3)
        self.http = make_server(self, self.args.host, self.args.port, api=True)
        if cfg.flags["GRAPH_API_ENABLED"]:
            try:
                self.graph = make_server(self, self.args.host, self.args.graph_port, api=False)
            except OSError as exc:
                self.http.server_close()
                log("GRAPH_API_ENABLED but port %s cannot be bound: %s" % (self.args.graph_port, exc))
                sys.exit(4)
        for srv in (self.http, self.graph):
            if srv is not None:
                threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1},
                                 name="http-%d" % srv.server_address[1], daemon=True).start()
        if self.args.nats_url:
            self.consumer_thread = threading.Thread(target=self._consumer_main, name="consumer", daemon=True)
            self.consumer_thread.start()
        log("version %s serving on %s:%d%s; flags %s; faults %s; nats %s" % (
            self.version, self.args.host, self.http.server_address[1],
            " graph API on :%d" % self.graph.server_address[1] if self.graph else "",
            json.dumps(cfg.flags), json.dumps(cfg.faults()), redact(self.args.nats_url)))
        if cfg.event_side != "all":
            log("events: %s" % json.dumps(cfg.events()))

    def stop(self):
        self.stopping.set()
        if self.consumer_thread is not None:
            self.consumer_thread.join(15)
        for srv in (self.http, self.graph):
            if srv is not None:
                srv.shutdown()  # no new connections are accepted
        deadline = time.monotonic() + 15
        while self.inflight and time.monotonic() < deadline:
            time.sleep(0.02)  # let in-flight requests finish
        for srv in (self.http, self.graph):
            if srv is not None:
                srv.server_close()
        log("version %s stopped after %d events" % (self.version, self.events_handled))

    # --- JetStream consumer --------------------------------------------------------------
    def _consumer_main(self):
        self.loop = asyncio.new_event_loop()
        try:
            self.loop.run_until_complete(self._consume())
        except Exception as exc:  # never die silently
            log("consumer crashed: %r" % exc)
            self.consumer_state = "crashed"
        finally:
            self.loop.close()

    async def _consume(self):
        import nats
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
        from nats.js.errors import NotFoundError

        version = self.version
        m = self.metrics
        nc = None
        while not self.stopping.is_set():
            try:
                nc = await nats.connect(self.args.nats_url, name="demo-service-%s" % version,
                                        connect_timeout=2, allow_reconnect=True, max_reconnect_attempts=-1,
                                        reconnect_time_wait=0.25, error_cb=self._nats_error,
                                        disconnected_cb=self._nats_disconnected,
                                        reconnected_cb=self._nats_reconnected)
                break
            except Exception as exc:
                self.consumer_state = "connecting"
                self.consumer_error = repr(exc)
                await asyncio.sleep(0.5)
        if nc is None:
            return
        js = nc.jetstream()
        stream, durable = self.args.stream, self.args.durable
        psub = None
        created = False
        idle = 0
        try:
            while not self.stopping.is_set():
                if not (self.cfg.flags["CODEX_PUBLISH_ENABLED"] and self.cfg.flags["CODEX_CONSUME_ENABLED"]):
                    self.consumer_state = "paused"
                    m.consumer_up.labels(version).set(0)
                    if psub is not None and self.cfg.flags["CODEX_PUBLISH_ENABLED"]:
                        # a pause (not the kill switch, under which events stay in JetStream)
                        await self._handle_buffered(psub)
                    await asyncio.sleep(0.2)
                    continue
                if psub is not None and self.consumer_state == "paused":
                    # publishing back on (SIGHUP): still bound to the durable, consuming again
                    self.consumer_state = "consuming"
                    m.consumer_up.labels(version).set(1)
                if psub is None:
                    try:
                        try:
                            await js.consumer_info(stream, durable)
                        except NotFoundError:
                            if created or not self.args.create_consumer:
                                # Someone (a replay) owns the consumer now: wait for it to come back
                                # instead of recreating it from the start of the stream.
                                raise
                            await js.add_consumer(stream, ConsumerConfig(
                                durable_name=durable, ack_policy=AckPolicy.EXPLICIT,
                                deliver_policy=DeliverPolicy.NEW if self.args.deliver == "new" else DeliverPolicy.ALL,
                                ack_wait=ACK_WAIT_S, max_ack_pending=1000))
                        created = True
                        psub = await js.pull_subscribe_bind(durable=durable, stream=stream)
                        self.consumer_state = "consuming"
                        self.consumer_error = ""
                        m.consumer_up.labels(version).set(1)
                    except Exception as exc:
                        self.consumer_state = "waiting for stream %s / consumer %s" % (stream, durable)
                        self.consumer_error = repr(exc)
                        m.consumer_up.labels(version).set(0)
                        await asyncio.sleep(0.5)
                        continue
                try:
                    msgs = await psub.fetch(batch=16, timeout=0.5)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    # a timeout is the normal "nothing to do"; anything else may mean the consumer is gone
                    if exc.__class__.__name__ != "TimeoutError":
                        self.consumer_error = repr(exc)
                    idle += 1
                    if idle % 6 == 0:
                        try:
                            await js.consumer_info(stream, durable)
                        except Exception as exc2:
                            self.consumer_error = repr(exc2)
                            try:
                                await psub.unsubscribe()
                            except Exception:
                                pass
                            psub = None
                            m.consumer_up.labels(version).set(0)
                    continue
                idle = 0
                for msg in msgs:
                    await self._handle(msg)
        finally:
            m.consumer_up.labels(version).set(0)
            # Every handled message is already acknowledged (ack_sync); unacknowledged ones are
            # redelivered by JetStream after ack_wait, so closing is enough.
            if psub is not None:
                try:
                    await asyncio.wait_for(psub.unsubscribe(), 2)
                except Exception:
                    pass
            try:
                await asyncio.wait_for(nc.close(), 3)
            except Exception:
                pass

    async def _handle(self, msg):
        version = self.version
        m = self.metrics
        md = msg.metadata
        seq = md.sequence.stream
        try:
            event = json.loads(msg.data.decode("utf-8"))
            repo = str(event["repo"])
            event_id = str(event.get("id") or "seq-%d" % seq)
        except (ValueError, KeyError, UnicodeDecodeError) as exc:
            log("event at stream seq %d is not a repository event (%s): terminated" % (seq, exc))
            m.events.labels(version, "failed").inc()
            m.slot_event("term")
            await msg.term()
            return
        if not self.cfg.takes(repo, seq):
            # another slot's cohort: acknowledged without a record, so a replay after the split finds it new
            m.slot_event("left")
            await self._ack(msg)
            return
        started = time.perf_counter()
        if md.num_delivered > 1:
            m.slot_redeliveries.labels(version, self.args.slot).inc()
        if self.publish is not None and event_id in self.publish.seen:
            m.events.labels(version, "duplicate").inc()
            m.slot_event("duplicate", time.perf_counter() - started)
            await self._ack(msg)
            return
        if self.event_fails():
            m.events.labels(version, "failed").inc()
            m.slot_event("failed", time.perf_counter() - started)
            await msg.nak(delay=0.5)
            return
        delay = self.fault_delay_and_error()[0]
        if delay:
            await asyncio.sleep(delay)
        now = time.time()
        event_ts = float(event.get("ts") or (md.timestamp.timestamp() if md.timestamp else now))
        lag = max(0.0, now - event_ts)
        action = self.cfg.action_for(repo)
        rec = {
            "event_id": event_id, "seq": seq, "repo": repo, "version": version, "action": action,
            "delivered": md.num_delivered, "ts": round(now, 6), "event_ts": event_ts, "lag_s": round(lag, 6),
            "pid": os.getpid(), "durable": self.args.durable, "slot": self.args.slot,
        }
        work_s = time.perf_counter() - started
        if self.publish is not None:
            try:
                recorded = await asyncio.get_running_loop().run_in_executor(None, self.publish.record, rec)
            except OSError as exc:
                # Not recorded, so not acknowledged: JetStream redelivers it later.
                self.consumer_error = "cannot record event %s: %s" % (event_id, exc)
                m.events.labels(version, "failed").inc()
                m.slot_event("failed", work_s)
                await msg.nak(delay=1.0)
                return
            if not recorded:
                # another instance of this version recorded it meanwhile (a replay reaches every host)
                m.events.labels(version, "duplicate").inc()
                m.slot_event("duplicate", work_s)
                await self._ack(msg)
                return
        m.events.labels(version, action).inc()
        m.slot_event("processed", work_s)
        m.lag.labels(version).observe(lag)
        self.events_handled += 1
        await self._ack(msg)

    async def _handle_buffered(self, psub):
        """Handle what the server delivered for a pull that ended before it arrived.

        nats-py keeps such messages for the next fetch; a paused consumer fetches no more, so they would stay
        delivered and unacknowledged for as long as the pause lasts (the canary phase's fence waits for none).
        They were this consumer's before the pause: handled now, no new pull.
        """
        while psub.pending_msgs:
            msg = await psub._sub.next_msg(timeout=0.1)  # pylint: disable=protected-access
            if not (msg.headers or {}).get("Status"):  # the server's status replies to the pull carry no event
                await self._handle(msg)

    async def _ack(self, msg):
        try:
            await msg.ack_sync(timeout=2.0)
        except Exception as exc:
            # The line is written; a redelivery to this version is recognised as a duplicate.
            self.consumer_error = "ack failed: %r" % exc

    async def _nats_error(self, exc):
        self.consumer_error = repr(exc)

    async def _nats_disconnected(self):
        self.consumer_state = "disconnected"
        self.metrics.consumer_up.labels(self.version).set(0)

    async def _nats_reconnected(self):
        self.consumer_state = "consuming"
        self.metrics.consumer_up.labels(self.version).set(1)


# ----- HTTP ------------------------------------------------------------------------------
REPOS_GRAPH_SIZE = 3


def _h(text):
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def _node(repo):
    return re.sub(r"[^A-Za-z0-9]", "_", repo)


def graph_neighbours(repo):
    from demo.repos import REPOSITORIES
    others = [r for r in REPOSITORIES if r != repo]
    start = _h(repo) % len(others)
    return [others[(start + i * 7) % len(others)] for i in range(REPOS_GRAPH_SIZE)]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "demo-org-brain"
    service = None  # set per server class
    api = True
    timeout = 30  # idle keep-alive connections are closed after this

    def log_message(self, fmt, *args):  # keep the log for real problems
        pass

    def _send(self, code, body, content_type="application/json", extra=None):
        data = body if isinstance(body, bytes) else (json.dumps(body, sort_keys=True) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Version", self.service.version)
        if self.service.stopping.is_set():
            self.send_header("Connection", "close")
            self.close_connection = True
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        return code

    def _cors(self):
        origins = self.service.cfg.cors_origins
        origin = self.headers.get("Origin")
        allow = "*" if origins.strip() == "*" else (origin if origin in [o.strip() for o in origins.split(",")] else "")
        hdr = {"Access-Control-Allow-Methods": "GET, OPTIONS",
               "Access-Control-Allow-Headers": "Content-Type, Authorization",
               "Access-Control-Max-Age": "600", "Vary": "Origin"}
        if allow:
            hdr["Access-Control-Allow-Origin"] = allow
        return hdr

    def do_OPTIONS(self):
        if self.api:
            return self._send(405, {"error": "method not allowed"})
        code = self._send(204, b"", extra=self._cors())
        self.service.metrics.requests.labels(self.service.version, str(code), "/graph").inc()

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        svc = self.service
        with svc.inflight_lock:
            svc.inflight += 1
        try:
            path = urlsplit(self.path).path
            if self.api and path == "/metrics":
                return self._send(200, generate_latest(svc.metrics.registry), CONTENT_TYPE_LATEST)
            t0 = time.perf_counter()
            route, code = self._route(path)
            elapsed = time.perf_counter() - t0
            svc.metrics.requests.labels(svc.version, str(code), route).inc()
            if route != "/healthz":
                svc.metrics.duration.labels(svc.version).observe(elapsed)
        finally:
            with svc.inflight_lock:
                svc.inflight -= 1

    def _route(self, path):
        svc = self.service
        if path == "/healthz":
            return "/healthz", self._send(200, {
                "status": "ok", "version": svc.version, "slot": svc.args.slot, "pid": os.getpid(),
                "uptime_s": round(time.time() - svc.started, 3),
                "consumer": svc.consumer_state, "events_handled": svc.events_handled,
                "last_error": svc.consumer_error,
                "graph_api": svc.graph.server_address[1] if svc.graph else None})
        route = _route_name(path, self.api)
        if route is None:
            return "other", self._send(404, {"error": "no such route", "path": path})
        delay, fail = svc.fault_delay_and_error()
        if delay:
            time.sleep(delay)
        if fail:
            return route, self._send(500, {"error": "injected fault (DEMO_FAULT_ERROR_RATE)", "version": svc.version})
        cfg = svc.cfg
        if route == "/api/ping":
            return route, self._send(200, {"pong": True, "version": svc.version})
        if route == "/api/flags":
            return route, self._send(200, {"version": svc.version, "flags": cfg.flags, "faults": cfg.faults(),
                                           "events": cfg.events()})
        if route == "/api/docs":
            from demo.repos import REPOSITORIES
            repo = path[len("/api/docs/"):].strip("/")
            if repo not in REPOSITORIES:
                return route, self._send(404, {"error": "unknown repository", "repo": repo})
            return route, self._send(200, svc.doc_for(repo))
        if route == "/api/slo":
            if not cfg.flags["SLO_MONITORING_ENABLED"]:
                return route, self._send(404, {"error": "SLO_MONITORING_ENABLED is off"})
            return route, self._send(200, svc.slo())
        if route == "/api/chaos":
            if not cfg.flags["CHAOS_ENGINEERING_ENABLED"]:
                return route, self._send(404, {"error": "CHAOS_ENGINEERING_ENABLED is off"})
            return route, self._send(200, {"version": svc.version, "chaos": "ready", "pid": os.getpid()})
        # Graph API
        from demo.repos import REPOSITORIES
        cors = self._cors()
        if path.rstrip("/") == "/graph/repos":
            return route, self._send(200, {"repos": list(REPOSITORIES), "version": svc.version}, extra=cors)
        repo = path[len("/graph/repos/"):].strip("/")
        if repo not in REPOSITORIES:
            return route, self._send(404, {"error": "unknown repository", "repo": repo}, extra=cors)
        return route, self._send(200, {"repo": repo, "depends_on": graph_neighbours(repo), "version": svc.version},
                                 extra=cors)


def _route_name(path, api):
    if api:
        if path == "/api/ping":
            return "/api/ping"
        if path.startswith("/api/docs/"):
            return "/api/docs"
        if path in ("/api/flags", "/api/slo", "/api/chaos"):
            return path
        return None
    if path.rstrip("/") == "/graph/repos" or path.startswith("/graph/repos/"):
        return "/graph"
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = True
    allow_reuse_address = True
    request_queue_size = 128


def make_server(service, host, port, api):
    handler = type("BoundHandler", (Handler,), {"service": service, "api": api})
    return _Server((host, port), handler)


# ----- helpers -------------------------------------------------------------------------------
def redact(url):
    if not url:
        return url
    return re.sub(r"//[^@/]*@", "//***@", url)


def log(msg):
    sys.stderr.write("%s demo.service[%d] %s\n" % (time.strftime("%H:%M:%S"), os.getpid(), msg))
    sys.stderr.flush()


def parse_args(argv=None):
    args = _parser().parse_args(argv)
    if args.graph_port_offset > 0:
        args.graph_port = args.port + args.graph_port_offset
    return args


def _parser():
    p = argparse.ArgumentParser(prog="python -m demo.service", description=__doc__.split("\n", maxsplit=1)[0])
    p.add_argument("--env-file", required=True, help="flags and fault knobs, KEY=VALUE lines (SIGHUP re-reads)")
    p.add_argument("--port", type=int, required=True, help="API port (127.0.0.1)")
    p.add_argument("--version", required=True, help="the release this process runs, e.g. v2")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--nats-url", default=os.environ.get("DEMO_NATS_URL", ""),
                   help="nats://[user:pass@]host:port; without it no events are consumed")
    p.add_argument("--stream", default=DEFAULT_STREAM)
    p.add_argument("--durable", default=os.environ.get("DEMO_DURABLE") or DEFAULT_DURABLE,
                   help="the JetStream durable consumer (default: $DEMO_DURABLE or %s)" % DEFAULT_DURABLE)
    p.add_argument("--deliver", choices=("all", "new"), default=os.environ.get("DEMO_DELIVER") or "all",
                   help="where a durable this service creates starts (new: a shadow consumer, e.g. staging; "
                        "default: $DEMO_DELIVER or all)")
    p.add_argument("--no-create-consumer", dest="create_consumer", action="store_false",
                   help="never create the durable consumer, only bind to it")
    p.add_argument("--publish-dir", default="", help="where published.jsonl is appended")
    p.add_argument("--graph-port", type=int, default=8002, help="Graph API port when GRAPH_API_ENABLED")
    p.add_argument("--graph-port-offset", type=int, default=0,
                   help="when above 0, the Graph API port is --port plus this offset (one command line for every slot)")
    p.add_argument("--faults-file", default=os.environ.get("DEMO_FAULTS_FILE", ""),
                   help="optional KEY=VALUE file whose DEMO_FAULT_* keys override the env file's (a missing file is fine)")
    p.add_argument("--slot", default="", help="where this process runs (stable, canary, ...): recorded, not used")
    return p


def main(argv=None):
    args = parse_args(argv)
    try:
        svc = Service(args)
    except (OSError, ConfigError) as exc:
        log("configuration refused: %s" % exc)
        return 2
    done = threading.Event()

    def on_term(signum, frame):
        done.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGHUP, lambda s, f: svc.reload())
    try:
        svc.start()
    except OSError as exc:
        log("cannot serve on port %s: %s" % (args.port, exc))
        return 2 if exc.errno != errno.EADDRINUSE else 5
    while not done.wait(0.5):
        pass
    log("SIGTERM: stop consuming, finish in-flight work")
    svc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
