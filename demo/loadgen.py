"""Load generator for the demo: a steady HTTP request rate plus repository events on JetStream.

    python -m demo.loadgen --url http://127.0.0.1:PORT --rate 50 --duration 30 \
        [--nats-url nats://127.0.0.1:4222 --subject repo.events --events-rate 5 --events-log FILE]

Prints one JSON report at the end: requests, errors and latency per version (the
service answers with an ``X-Version`` header; ``none`` is a request no version
answered: connection error or an HAProxy 503), requests shed because every worker
was busy, and the events published (with their JetStream sequences).

As a library::

    lg = LoadGen("http://127.0.0.1:8080", rate=50, nats_url=..., events_rate=5).start()
    ...
    lg.window(10)      # per-version stats of the last 10 s
    report = lg.stop() # same dict the CLI prints
"""
import argparse
import asyncio
import http.client
import json
import queue
import random
import signal
import sys
import threading
import time
from collections import defaultdict, deque
from urllib.parse import urlsplit

from demo.repos import REPOSITORIES


def percentile(values, q):
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(q / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def subject_for(prefix, repo):
    return "%s.%s" % (prefix, repo.replace("/", "."))


class LoadGen:
    def __init__(self, url, rate=50.0, duration=None, workers=16, timeout=10.0, nats_url=None,
                 subject="repo.events", events_rate=5.0, events_log=None, run_id=None, seed=None,
                 docs_fraction=0.7):
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.url = url
        self.rate = float(rate)
        self.duration = duration
        self.workers = max(1, int(workers))
        self.timeout = timeout
        self.nats_url = nats_url
        self.subject = subject
        self.events_rate = float(events_rate or 0)
        self.events_log = events_log
        self.run_id = run_id or "%x" % int(time.time() * 1000)
        self.rng = random.Random(seed)
        self.docs_fraction = docs_fraction
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._q = queue.Queue(maxsize=self.workers * 2)
        self._threads = []
        self.samples = deque()  # (t_end, version, code, latency_s)
        self.latencies = defaultdict(list)
        self.codes = defaultdict(lambda: defaultdict(int))
        self.shed = 0
        self.sent = 0
        self.started_at = None
        self.stopped_at = None
        self.events = []  # dicts: id, repo, seq, ts
        self.event_errors = 0
        self.event_error_last = ""
        self._events_ready = threading.Event()
        self._burst = 0  # events still to publish at once (see burst())
        self._report = None

    # ----- lifecycle ----------------------------------------------------------------------
    def start(self):
        self.started_at = time.time()
        for i in range(self.workers):
            t = threading.Thread(target=self._worker, name="loadgen-w%d" % i, daemon=True)
            t.start()
            self._threads.append(t)
        t = threading.Thread(target=self._ticker, name="loadgen-ticker", daemon=True)
        t.start()
        self._threads.append(t)
        if self.nats_url and self.events_rate > 0:
            t = threading.Thread(target=self._events_main, name="loadgen-events", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def running(self):
        return self.started_at is not None and not self._stop.is_set()

    def wait(self):
        """Block until ``duration`` has elapsed (or stop() was called), then stop."""
        while not self._stop.is_set():
            if self.duration is not None and time.time() - self.started_at >= self.duration:
                break
            time.sleep(0.1)
        return self.stop()

    def burst(self, count):
        """Publish ``count`` more events at once, on top of the steady rate (which then carries on)."""
        with self._lock:
            self._burst += int(count)

    def stop(self):
        if self._report is not None:
            return self._report
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout + 5)
        self.stopped_at = time.time()
        self._report = self.report()
        return self._report

    # ----- HTTP ----------------------------------------------------------------------------
    def _ticker(self):
        interval = 1.0 / self.rate if self.rate > 0 else None
        t0 = time.monotonic()
        n = 0
        while not self._stop.is_set() and interval:
            if self.duration is not None and time.monotonic() - t0 >= self.duration:
                break
            target = t0 + n * interval
            delay = target - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
                if self._stop.is_set():
                    break
            n += 1
            try:
                self._q.put_nowait(self._path())
                self.sent += 1
            except queue.Full:
                with self._lock:
                    self.shed += 1
        for dummy in range(self.workers):
            try:
                self._q.put(None, timeout=1)
            except queue.Full:
                pass

    def _path(self):
        if self.rng.random() < self.docs_fraction:
            return "/api/docs/" + self.rng.choice(REPOSITORIES)
        return "/api/ping"

    def _worker(self):
        while True:
            try:
                path = self._q.get(timeout=0.2)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            if path is None:
                return
            t0 = time.perf_counter()
            version, code = "none", "conn_error"
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                conn.request("GET", path, headers={"Connection": "close", "User-Agent": "demo-loadgen"})
                resp = conn.getresponse()
                resp.read()
                code = str(resp.status)
                version = resp.getheader("X-Version") or "none"
            except (OSError, http.client.HTTPException):
                pass
            finally:
                conn.close()
            elapsed = time.perf_counter() - t0
            self._record(version, code, elapsed)

    def _record(self, version, code, latency):
        with self._lock:
            self.samples.append((time.time(), version, code, latency))
            self.latencies[version].append(latency)
            self.codes[version][code] += 1
            # keep ~10 minutes of raw samples for window()
            cutoff = time.time() - 600
            while self.samples and self.samples[0][0] < cutoff:
                self.samples.popleft()

    # ----- events ---------------------------------------------------------------------------
    def _events_main(self):
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._publish_events())
        except Exception as exc:
            self.event_error_last = repr(exc)
        finally:
            loop.close()

    async def _publish_events(self):
        import nats

        nc = None
        while nc is None and not self._stop.is_set():
            try:
                nc = await nats.connect(self.nats_url, name="demo-loadgen", connect_timeout=2,
                                        allow_reconnect=True, max_reconnect_attempts=-1, reconnect_time_wait=0.25)
            except Exception as exc:
                self.event_errors += 1
                self.event_error_last = repr(exc)
                await asyncio.sleep(0.5)
        if nc is None:
            return
        js = nc.jetstream()
        log = open(self.events_log, "a", encoding="utf-8") if self.events_log else None
        interval = 1.0 / self.events_rate
        t0 = started = time.monotonic()
        n = 0
        try:
            while not self._stop.is_set():
                if self.duration is not None and time.monotonic() - started >= self.duration:
                    break
                with self._lock:
                    extra, self._burst = self._burst > 0, max(0, self._burst - 1)
                if extra:
                    t0 -= interval  # a burst's event does not take a tick of the steady rate
                else:
                    delay = t0 + n * interval - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(min(delay, 0.1))
                        continue
                repo = self.rng.choice(REPOSITORIES)
                event_id = "%s-%06d" % (self.run_id, n)
                n += 1
                body = {"id": event_id, "repo": repo, "type": self.rng.choice(("push", "pull_request", "release")),
                        "ts": time.time()}
                # Retry the same event (same Nats-Msg-Id: JetStream de-duplicates) until it is stored.
                while True:
                    try:
                        ack = await js.publish(subject_for(self.subject, repo), json.dumps(body).encode(),
                                               timeout=2, headers={"Nats-Msg-Id": event_id})
                        break
                    except Exception as exc:
                        self.event_errors += 1
                        self.event_error_last = repr(exc)
                        if self._stop.is_set():
                            ack = None
                            break
                        await asyncio.sleep(0.25)
                if ack is None:
                    break
                rec = {"id": event_id, "repo": repo, "seq": ack.seq, "stream": ack.stream, "ts": body["ts"],
                       "duplicate": bool(getattr(ack, "duplicate", False))}
                with self._lock:
                    self.events.append(rec)
                self._events_ready.set()
                if log:
                    log.write(json.dumps(rec, sort_keys=True) + "\n")
                    log.flush()
        finally:
            if log:
                log.close()
            try:
                await asyncio.wait_for(nc.close(), 3)
            except Exception:
                pass

    # ----- results ----------------------------------------------------------------------------
    @staticmethod
    def _stats(codes, lats):
        total = sum(codes.values())
        errors = sum(n for c, n in codes.items() if c.startswith("5") or c == "conn_error")
        return {
            "requests": total,
            "errors": errors,
            "error_rate": (errors / total) if total else None,
            "codes": dict(sorted(codes.items())),
            "latency_ms": {
                "mean": round(1000 * sum(lats) / len(lats), 3) if lats else None,
                "p50": round(1000 * percentile(lats, 50), 3) if lats else None,
                "p95": round(1000 * percentile(lats, 95), 3) if lats else None,
                "p99": round(1000 * percentile(lats, 99), 3) if lats else None,
            },
        }

    def window(self, seconds):
        """Per-version stats of the requests that completed in the last ``seconds``."""
        cutoff = time.time() - seconds
        codes = defaultdict(lambda: defaultdict(int))
        lats = defaultdict(list)
        with self._lock:
            for t, version, code, lat in reversed(self.samples):
                if t < cutoff:
                    break
                codes[version][code] += 1
                lats[version].append(lat)
        return {v: self._stats(codes[v], lats[v]) for v in codes}

    def report(self):
        with self._lock:
            by_version = {v: self._stats(self.codes[v], self.latencies[v]) for v in sorted(self.codes)}
            events = list(self.events)
            shed = self.shed
        total = sum(v["requests"] for v in by_version.values())
        errors = sum(v["errors"] for v in by_version.values())
        end = self.stopped_at or time.time()
        return {
            "url": self.url,
            "run_id": self.run_id,
            "duration_s": round(end - (self.started_at or end), 3),
            "target_rate": self.rate,
            "requests": total,
            "errors": errors,
            "error_rate": (errors / total) if total else None,
            "shed": shed,
            "by_version": by_version,
            "events": {
                "published": len(events),
                "publish_errors": self.event_errors,
                "last_error": self.event_error_last,
                "first_seq": events[0]["seq"] if events else None,
                "last_seq": events[-1]["seq"] if events else None,
                "duplicates": sum(1 for e in events if e["duplicate"]),
            },
        }

    def published_events(self):
        with self._lock:
            return list(self.events)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m demo.loadgen", description=__doc__.split("\n", maxsplit=1)[0])
    p.add_argument("--url", required=True, help="base URL, e.g. the HAProxy frontend http://127.0.0.1:PORT")
    p.add_argument("--rate", type=float, default=50.0, help="HTTP requests per second")
    p.add_argument("--duration", type=float, default=30.0, help="seconds (0 = until SIGTERM)")
    p.add_argument("--workers", type=int, default=16, help="concurrent requests at most; beyond that ticks are shed")
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--nats-url", default="")
    p.add_argument("--subject", default="repo.events", help="subject prefix; the repository is appended")
    p.add_argument("--events-rate", type=float, default=5.0, help="repository events per second")
    p.add_argument("--events-log", default=None, help="append one JSON line per stored event")
    p.add_argument("--run-id", default=None, help="prefix of event ids")
    p.add_argument("--seed", type=int, default=None)
    a = p.parse_args(argv)
    lg = LoadGen(a.url, rate=a.rate, duration=a.duration or None, workers=a.workers, timeout=a.timeout,
                 nats_url=a.nats_url or None, subject=a.subject, events_rate=a.events_rate,
                 events_log=a.events_log, run_id=a.run_id, seed=a.seed)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda s, f: lg._stop.set())
    lg.start()
    report = lg.wait()
    json.dump(report, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
