"""A queue-consumer canary on a real JetStream, with no HTTP split, judged on its events.

The stable slot (v1, durable ``org-brain``) consumes the stream REPO_EVENTS; events are published all the
time (60 a second). The split begins at a fence (docs/phases.md, "Queue-consumer canaries"): the stable
consumer pauses, the stream's last sequence L is read, the canary's own durable is created at L + 1 with the
collection's ``jetstream_consumer`` module, the stable resumes with ``CODEX_EVENTS=rest`` after L and the
canary slot starts with ``CODEX_EVENTS=cohort`` after L, the cohort being 30 % of the repositories drawn with
the hash of the collection's ``cohort`` filter (``plugins/module_utils/cohort.py``). A real Prometheus scrapes
both slots (with a ``slot`` label, as docs/targets.md asks of a user's Prometheus) and the collection's
``canary_judge`` module compares the two arms' event counters and processing-time histograms through the
queries an inventory declares (``rollout_canary.judge_queries``). A failing canary is rolled back: the canary
stops, the stable takes every event again and its durable is replayed from the rollout start with
``jetstream_consumer`` as ``rollout_phase/tasks/rollback.yml`` does. A healthy one is handed over at a second
fence (both slots pause, the split ends at the stream's last sequence, the canary drains its cohort up to it).

What this does NOT run: the phase roles. The split is set up by the test (the slots' env files), not by
``stagegate.rollout.canary``; docs/phases.md ("Queue-consumer canaries") says what the phase still lacks.
"""
import asyncio
import collections
import datetime
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from demo.repos import REPOSITORIES
from demo.service import Config, cohort
from demo.stack import playbook
from demo.stack.local import prom_query
from demo.stack.prometheus import Prometheus
from demo.testkit import STREAM, Service, consumer_info, js_call, read_published, run, start_nats, wait_for

pytestmark = pytest.mark.slow

HERE = os.path.dirname(os.path.abspath(__file__))
SEED, PERCENT = "consumer-canary", 30
IN_COHORT = frozenset(r for r in REPOSITORIES if cohort.in_cohort(r, PERCENT, SEED))
SHARE = len(IN_COHORT) / float(len(REPOSITORIES))  # events go round the repositories evenly
STABLE_DURABLE, CANARY_DURABLE = "org-brain", "org-brain-canary"
BASE = {"CODEX_PUBLISH_ENABLED": "true", "CODEX_PUBLISH_PORTAL": "external",
        "CODEX_EVENT_COHORT_PERCENT": str(PERCENT), "CODEX_EVENT_COHORT_SEED": SEED,
        "DEMO_FAULT_ERROR_RATE__V3": "0.1"}  # v3 fails 10 % of its events (nak, redelivered); v1 and v2 none


def _arm(slot):
    sel = 'job="consumer",slot="%s"' % slot
    return {"requests": 'sum(demo_slot_events_total{%s,outcome=~"processed|duplicate|failed"})' % sel,
            "errors": 'sum(demo_slot_events_total{%s,outcome="failed"}) or vector(0)' % sel,
            "latency_buckets": "sum by (le) (demo_slot_event_seconds_bucket{%s})" % sel}


# what a user's inventory declares for a consumer canary's judge (docs/phases.md)
INVENTORY_VARS = {"rollout_canary": {"judge": {"alpha": 0.01, "interval": 1},
                                     "judge_queries": {"baseline": _arm("stable"), "canary": _arm("canary")}}}


def _iso_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Publisher(threading.Thread):
    """Publishes repository events (round the repositories) at ``rate`` a second until stopped."""

    def __init__(self, url, rate=60):
        super().__init__(daemon=True)
        self.url, self.rate = url, rate
        self.events = []
        self.halt = threading.Event()
        self.error = None

    def run(self):
        try:
            asyncio.run(self._go())
        except Exception as exc:  # pylint: disable=broad-except
            self.error = exc

    async def _go(self):
        import nats
        nc = await nats.connect(self.url)
        js = nc.jetstream()
        i = 0
        try:
            while not self.halt.is_set():
                for dummy in range(max(1, self.rate // 10)):
                    eid, repo = "e%05d" % i, REPOSITORIES[i % len(REPOSITORIES)]
                    await js.publish("repo.events." + repo.replace("/", "."),
                                     json.dumps({"id": eid, "repo": repo, "ts": time.time()}).encode(),
                                     headers={"Nats-Msg-Id": eid})
                    self.events.append((eid, repo))
                    i += 1
                await asyncio.sleep(0.1)
        finally:
            await nc.close()

    def stop(self):
        self.halt.set()
        self.join(10)
        assert self.error is None, self.error
        return list(self.events)


class Site:
    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.nats, self.url = start_nats(tmp_path)
        self.pub = tmp_path / "pub"
        self.started = []
        self.prom = None
        self.publisher = None

    def service(self, version, side, durable, slot, **more):
        """A slot's process; the stable one creates its durable (deliver all), the canary's is created at the fence."""
        (self.tmp / slot).mkdir(exist_ok=True)
        svc = Service(self.tmp / slot, version, self.env(side, **more), nats_url=self.url, publish_dir=self.pub,
                      extra=["--slot", slot, "--durable", durable] + (["--no-create-consumer"] if slot == "canary" else []))
        self.started.append(svc)
        return svc

    @staticmethod
    def env(side, **more):
        return dict(BASE, CODEX_EVENTS=side, **more)

    def last_seq(self):
        return run(js_call(self.url, lambda js: js.stream_info(STREAM))).state.last_seq

    def begin_split(self, stable, version):
        """The fence: the stable pauses, the split begins after the stream's last sequence L; returns
        (the canary slot, started; L)."""
        reconfigure(stable, self.env("all", CODEX_PUBLISH_ENABLED="false"))
        wait_for(lambda: stable.health()["consumer"] == "paused", timeout=20, what="the stable consumer paused")
        fence = self.last_seq()
        created = self.consumer(CANARY_DURABLE, consumer_canary_start_sequence=fence + 1)
        assert created["changed"], created
        reconfigure(stable, self.env("rest", CODEX_EVENT_SPLIT_AFTER_SEQ=str(fence)))
        canary = self.service(version, "cohort", CANARY_DURABLE, "canary", CODEX_EVENT_SPLIT_AFTER_SEQ=str(fence))
        canary.start()
        return canary, fence

    def consumer(self, durable, **extra):
        return self.playbook("consumer", dict(extra, consumer_canary_nats_url=self.url,
                                              consumer_canary_durable=durable))

    def scrape(self, stable, canary):
        self.prom = Prometheus(str(self.tmp / "prometheus"), {"consumer": [
            ("127.0.0.1:%d" % stable.port, {"slot": "stable"}), ("127.0.0.1:%d" % canary.port, {"slot": "canary"})]})
        self.prom.start()
        # the judge's first look needs a series of both arms: Prometheus's first scrapes (~5 s after its start)
        wait_for(lambda: len(prom_query(self.prom.url, 'demo_slot_events_total{job="consumer"}')) >= 10,
                 timeout=30, interval=0.5, what="Prometheus to scrape both slots")

    def publish(self):
        self.publisher = Publisher(self.url)
        self.publisher.start()
        return self.publisher

    def playbook(self, name, extra):
        inventory = self.tmp / "inventory.yml"
        inventory.write_text(json.dumps({"all": {"hosts": {"localhost": {
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}, "vars": INVENTORY_VARS}}))
        result = self.tmp / ("%s-result.json" % name)
        extra = dict(extra, consumer_canary_result_file=str(result))
        ev = self.tmp / ("%s-vars.json" % name)
        ev.write_text(json.dumps(extra))
        exe = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
        proc = subprocess.run([exe, "-i", str(inventory), os.path.join(HERE, name + ".yml"), "-e", "@" + str(ev)],
                              env=playbook.env(), cwd=str(self.tmp), capture_output=True, text=True, timeout=240,
                              check=False)
        (self.tmp / ("%s.log" % name)).write_text(proc.stdout + proc.stderr)
        assert proc.returncode == 0, (proc.stdout[-4000:], proc.stderr[-2000:])
        return json.loads(result.read_text())

    def judge(self, seconds):
        return self.playbook("judge", {"consumer_canary_provider": {"type": "prometheus", "url": self.prom.url},
                                       "consumer_canary_share": round(SHARE, 4),
                                       "consumer_canary_seconds": seconds})

    def stop(self):
        if self.publisher is not None and self.publisher.is_alive():
            self.publisher.halt.set()
            self.publisher.join(10)
        for svc in self.started:
            svc.stop()
        if self.prom is not None:
            self.prom.stop()
        self.nats.stop()


@pytest.fixture
def site(tmp_path):
    s = Site(tmp_path)
    yield s
    s.stop()


def reconfigure(svc, env):
    """New flags for a running slot: its env file, then SIGHUP (the service re-reads it)."""
    svc.write_env(env)
    svc.proc.signal(signal.SIGHUP)
    cfg = Config(env, svc.version)
    want = (cfg.flags["CODEX_PUBLISH_ENABLED"], cfg.events())

    def loaded():
        now = json.loads(svc.get("/api/flags")[2])
        return (now["flags"]["CODEX_PUBLISH_ENABLED"], now["events"]) == want

    wait_for(loaded, timeout=20, what="the reload of %s" % svc.version)


def _consuming(*services):
    wait_for(lambda: all(s.health()["consumer"] == "consuming" for s in services), timeout=30,
             what="both consumers bound to their durables")


def _slot_counter(svc, name, outcome=None):
    total = 0.0
    for line in svc.metrics().splitlines():
        if line.startswith(name + "{") and (outcome is None or 'outcome="%s"' % outcome in line):
            total += float(line.split()[-1])
    return total


def _settled(url, durable):
    info = consumer_info(url, durable)
    return info.num_pending == 0 and info.num_ack_pending == 0


def test_a_consumer_canary_failing_10_percent_of_its_events_is_failed_by_the_judge_and_stable_gets_them_all(site):
    started_at = _iso_now()  # the rollout start: the replay of a rollback begins here
    stable = site.service("v1", "all", STABLE_DURABLE, "stable").start()
    _consuming(stable)
    publisher = site.publish()
    wait_for(lambda: len(publisher.events) > 60, what="events flowing")
    canary, fence = site.begin_split(stable, "v3")
    site.scrape(stable, canary)
    _consuming(stable, canary)

    t0 = time.monotonic()
    verdict = site.judge(60)
    judged_s = time.monotonic() - t0
    assert verdict["verdict"] == "fail", verdict.get("reason")
    assert "error rate" in verdict["reason"], verdict["reason"]
    # the judge saw the canary's failed events and none of the stable's
    errors = verdict["result"]["errors"]
    assert errors["canary_events"] > 0 and errors["baseline_events"] == 0, errors
    assert _slot_counter(canary, "demo_slot_events_total", "failed") > 0
    assert _slot_counter(canary, "demo_slot_event_redeliveries_total") > 0  # a nak comes back
    assert _slot_counter(stable, "demo_slot_events_total", "failed") == 0
    assert _slot_counter(stable, "demo_slot_events_total", "left") > 0  # the stable left the cohort to the canary
    assert _slot_counter(canary, "demo_slot_events_total", "left") > 0  # ... and the canary the rest

    # the rollback: the canary stops, the stable takes every event again, its durable replays from the rollout start
    rollback_began = time.time()
    canary.stop()
    reconfigure(stable, site.env("all"))
    replay = site.consumer(STABLE_DURABLE, consumer_canary_replay_from_time=started_at)
    assert replay["changed"] and replay["replay"]["recreated"], replay
    time.sleep(1.0)  # events keep coming after the replay, to the stable version
    events = publisher.stop()
    ids = {eid for eid, dummy in events}
    cohort_ids = {eid for eid, repo in events if repo in IN_COHORT}
    assert len(events) > 300 and cohort_ids

    def v1_ids():
        return {r["event_id"] for r in read_published(site.pub) if r["version"] == "v1"}

    wait_for(lambda: v1_ids() >= ids, timeout=60, what="v1 to record every published event")
    wait_for(lambda: _settled(site.url, STABLE_DURABLE), timeout=20, what="the stable durable settled")
    time.sleep(1.0)
    recs = read_published(site.pub)
    v1 = collections.Counter(r["event_id"] for r in recs if r["version"] == "v1")
    v3 = collections.Counter(r["event_id"] for r in recs if r["version"] == "v3")
    # nothing lost: every event processed by the stable version, exactly once
    assert set(v1) == ids and set(v1.values()) == {1}
    # the canary took events of its cohort after the fence only, each at most once
    assert v3 and set(v3.values()) == {1}
    assert all(r["repo"] in IN_COHORT and r["seq"] > fence for r in recs if r["version"] == "v3")
    # while split, the stable took no event of the cohort after the fence: those came with the rollback
    assert all(r["ts"] >= rollback_began for r in recs
               if r["version"] == "v1" and r["repo"] in IN_COHORT and r["seq"] > fence)
    assert any(r["version"] == "v1" and r["repo"] in IN_COHORT and r["seq"] <= fence for r in recs)
    print("consumer canary v3: judged fail in %.1f s (%s); %d events, fence at %d, %d in the cohort, %d "
          "processed by v3 before the rollback, all %d by v1 after the replay"
          % (judged_s, verdict["reason"], len(ids), fence, len(cohort_ids), len(v3), len(v1)))


def test_a_healthy_consumer_canary_takes_exactly_its_cohort_between_the_fences_and_is_not_failed(site):
    stable = site.service("v1", "all", STABLE_DURABLE, "stable").start()
    _consuming(stable)
    publisher = site.publish()
    wait_for(lambda: len(publisher.events) > 60, what="events flowing")
    canary, fence = site.begin_split(stable, "v2")
    site.scrape(stable, canary)
    _consuming(stable, canary)
    verdict = site.judge(25)
    # a pass, or no proof either way within the step (the phase then promotes when the gates pass); never a fail
    assert verdict["verdict"] in ("pass", "inconclusive"), verdict.get("reason")
    assert verdict["result"]["requests"]["canary"] > 50 and verdict["result"]["requests"]["baseline"] > 50

    # the hand-over: both slots pause, the split ends at the stream's last sequence, both resume; the canary
    # drains its cohort up to the fence and takes nothing after it, then stops
    reconfigure(stable, site.env("rest", CODEX_EVENT_SPLIT_AFTER_SEQ=str(fence), CODEX_PUBLISH_ENABLED="false"))
    reconfigure(canary, site.env("cohort", CODEX_EVENT_SPLIT_AFTER_SEQ=str(fence), CODEX_PUBLISH_ENABLED="false"))
    wait_for(lambda: stable.health()["consumer"] == canary.health()["consumer"] == "paused", timeout=20,
             what="both consumers paused")
    end = site.last_seq()
    for svc, side in ((stable, "rest"), (canary, "cohort")):
        reconfigure(svc, site.env(side, CODEX_EVENT_SPLIT_AFTER_SEQ=str(fence), CODEX_EVENT_SPLIT_UNTIL_SEQ=str(end)))
    wait_for(lambda: consumer_info(site.url, CANARY_DURABLE).ack_floor.stream_seq >= end, timeout=30,
             what="the canary to drain its cohort up to the end fence")
    time.sleep(1.0)
    assert _slot_counter(canary, "demo_slot_events_total", "failed") == 0
    canary.stop()
    time.sleep(1.0)
    events = publisher.stop()
    ids = {eid for eid, dummy in events}
    wait_for(lambda: len({r["event_id"] for r in read_published(site.pub)}) >= len(ids), timeout=30,
             what="every event recorded")
    wait_for(lambda: _settled(site.url, STABLE_DURABLE), timeout=20, what="the stable durable settled")
    recs = read_published(site.pub)
    seq_of = {r["event_id"]: r["seq"] for r in recs}
    split_ids = {eid for eid, repo in events if repo in IN_COHORT and fence < seq_of[eid] <= end}
    by_event = collections.Counter(r["event_id"] for r in recs)
    assert set(by_event) == ids and set(by_event.values()) == {1}  # every event once, by one version
    assert {r["event_id"] for r in recs if r["version"] == "v2"} == split_ids and split_ids
    assert {r["event_id"] for r in recs if r["version"] == "v1"} == ids - split_ids
    assert any(seq_of[eid] > end for eid in ids)  # events after the end fence went to the stable
    print("consumer canary v2: %s (%s); %d events, split over sequences %d..%d, %d taken by v2"
          % (verdict["verdict"], verdict["reason"], len(ids), fence + 1, end, len(split_ids)))
