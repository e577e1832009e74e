"""A queue consumer's canary run by the canary phase (``stagegate.rollout.canary``, ``rollout_canary.split:
events``) on a real local stack: NATS JetStream, Prometheus, HAProxy, the demo service's slots under supervisord.

One stack for the module (``demo.stack.local.LocalStack``: the demo's inventory, v1 installed in the stable slot by
``stagegate.rollout.install``), with an inventory file of this test added the way a user declares a consumer canary
(docs/phases.md, "Queue-consumer canaries"): the ``CODEX_EVENT*`` flags in the flag schema, the split flags' names
and the canary's durable in ``rollout_canary.events``, one step whose weight is the cohort's share of the events, the
judge's queries on the slots' event metrics. Repository events are published all the time (60 a second) and the
canary slots take no HTTP traffic. Each release's canary is ``stagegate.rollout.canary``, run by FQCN as a user runs
it; the staging promotion it needs is recorded by ``staged.yml`` with the modules the staging phase records it with
(ledger entry, frozen definition) instead of running staging (tests/integration/hosts and the demo run it: here it
would double the test's time):

* a healthy v2 is promoted: it took exactly the cohort's events between the split's two fences (read from the
  ledger), the stable v1 everything else, every event once;
* a canary durable left by an interrupted split refuses the next canary before any change;
* v3 fails 10 % of its events (nak, redelivered): the judge fails it, the phase rolls back - the canary stops, the
  stable slots take every event again and the stable durable is replayed from the rollout start - and every event
  is recorded exactly once by a healthy version (the cohort's events v3 handled were replayed to v1).

``split: both`` (a service that serves HTTP and consumes events; the rollout_canary of these cases is given as an
extra variable), with HTTP load through HAProxy (``demo.loadgen.LoadGen``, no events of its own) beside the events:

* a healthy v4 takes 10 % then 50 % of the HTTP traffic and the cohort of the events all along; each step's judge
  looked at the requests and at the events together (the ledger's ``analyses.events``), the split ended at a fence
  and the canary slots, their HTTP weight back at 0, stopped; every event once;
* v5 fails 10 % of its requests and events: judged fail at 10 % (on the requests or the events, whichever proved it
  first), rolled back - no HTTP traffic to v5 after it, every event recorded exactly once by a healthy version.

Not real: one app host (localhost), the hosts' code is the demo service from this checkout.
"""
import asyncio
import collections
import datetime
import json
import os
import threading
import time

import pytest
import yaml

from demo.loadgen import LoadGen
from demo.repos import REPOSITORIES
from demo.service import cohort
from demo.stack.local import STREAM, LocalStack
from demo.testkit import consumer_info, js_call, read_published, wait_for
from demo.testkit import run as run_js
from tests.integration.playbook_run import ansible_env, run_playbook

pytestmark = pytest.mark.slow

HERE = os.path.dirname(os.path.abspath(__file__))
SEED, PERCENT = "consumer-canary", 30
IN_COHORT = frozenset(r for r in REPOSITORIES if cohort.in_cohort(r, PERCENT, SEED))
# events go round the repositories evenly: the cohort's share of the events, a whole percent (50 repositories)
SHARE = round(100.0 * len(IN_COHORT) / len(REPOSITORIES))
STABLE_DURABLE, CANARY_DURABLE = "org-brain", "org-brain-canary"
HEALTHY = ("v1", "v2", "v4")


def _arm(slot):
    sel = 'job="demo",slot="%s"' % slot
    return {"requests": 'sum(demo_slot_events_total{%s,outcome=~"processed|duplicate|failed"})' % sel,
            "errors": 'sum(demo_slot_events_total{%s,outcome="failed"}) or vector(0)' % sel,
            "latency_buckets": "sum by (le) (demo_slot_event_seconds_bucket{%s})" % sel}


def _inventory_vars(schema):
    """What a user adds to the demo's inventory for a consumer canary (docs/phases.md)."""
    return {
        "demo_shortened": True,
        "rollout_flag_schema": dict(schema, **{
            "CODEX_CONSUME_ENABLED": {"type": "bool", "default": True, "description": "False pauses the consumer."},
            "CODEX_EVENTS": {"type": "enum", "choices": ["all", "cohort", "rest"], "default": "all",
                             "description": "Which events a slot takes."},
            "CODEX_EVENT_COHORT_PERCENT": {"type": "int", "default": 0, "description": "The cohort's hashed share."},
            "CODEX_EVENT_COHORT_SEED": {"type": "str", "default": "none", "description": "The cohort's hash seed."},
            "CODEX_EVENT_SPLIT_AFTER_SEQ": {"type": "int", "default": 0, "description": "The split begins after it."},
            "CODEX_EVENT_SPLIT_UNTIL_SEQ": {"type": "int", "default": 0, "description": "The split ends at it."}}),
        "rollout_canary": {
            "split": "events",
            "flags": {"CODEX_PUBLISH_ENABLED": True, "CODEX_PUBLISH_PORTAL": "external", "CODEX_REPO_INCLUDE_LIST": [],
                      "CODEX_EVENT_COHORT_PERCENT": PERCENT, "CODEX_EVENT_COHORT_SEED": SEED},
            "environment": {"DEMO_DURABLE": CANARY_DURABLE},
            "events": {"durable": CANARY_DURABLE, "side_flag": "CODEX_EVENTS",
                       "after_flag": "CODEX_EVENT_SPLIT_AFTER_SEQ", "until_flag": "CODEX_EVENT_SPLIT_UNTIL_SEQ",
                       "consume_flag": "CODEX_CONSUME_ENABLED",
                       "cohort_flags": ["CODEX_EVENT_COHORT_PERCENT", "CODEX_EVENT_COHORT_SEED"],
                       "settle_seconds": 1},
            # each case says how long its step may last (a failing canary ends it early)
            "steps": [{"weight": SHARE, "min_analysis_seconds": 5, "analysis_seconds": "{{ cc_analysis_seconds }}"}],
            "judge": {"alpha": 0.01, "interval": 1},
            "judge_queries": {"baseline": _arm("stable"), "canary": _arm("canary")},
            "gates": [{"name": "canary failed events",
                       "query": 'sum(increase(demo_slot_events_total{job="demo",slot="canary",outcome="failed"}'
                                '[$window])) or vector(0)', "lt": 1}]},
    }


def _both_canary(schema_vars):
    """rollout_canary of a split of both (docs/phases.md): the HTTP steps, the events arm's share and queries."""
    given = schema_vars["rollout_canary"]
    events = dict(given["events"], share=SHARE, judge_queries=given["judge_queries"])
    steps = [{"weight": w, "min_analysis_seconds": 5, "analysis_seconds": "{{ cc_analysis_seconds }}"} for w in (10, 50)]
    return dict({k: v for k, v in given.items() if k not in ("judge_queries", "events", "steps")},
                split="both", events=events, steps=steps,
                judge={"alpha": 0.01, "interval": 1, "error_abs_margin": 0.02, "latency_margin": 0.5})


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

    def published(self):
        assert self.error is None and self.is_alive(), self.error
        return list(self.events)


class Site:
    def __init__(self, workdir):
        self.workdir = workdir
        self.stack = LocalStack(str(workdir / "run"), start_stable=False)
        self.publisher = None

    def start(self):
        info = self.stack.start().info
        with open(os.path.join(info["inventory"], "group_vars", "all", "flags.yml"), encoding="utf-8") as fh:
            schema = yaml.safe_load(fh)["rollout_flag_schema"]
        with open(os.path.join(info["inventory"], "group_vars", "all", "zz_consumer_canary.yml"), "w",
                  encoding="utf-8") as fh:
            fh.write("# tests/integration/consumer_canary: a consumer canary, no HTTP split\n")
            yaml.safe_dump(_inventory_vars(schema), fh, default_flow_style=False, sort_keys=False)
        self.both_canary = _both_canary(_inventory_vars(schema))
        self.stack.install("v1")
        # the staging promotion of both releases, recorded (not run: staging is not what this tests)
        run, dummy = self.play(os.path.join(HERE, "staged.yml"), "v2", extra={"consumer_canary_releases": ["v2", "v3", "v4", "v5"]})
        assert run.rc == 0, run.stdout[-3000:]
        self.publisher = Publisher(info["nats"]["url"])
        self.publisher.start()
        wait_for(lambda: len(self.publisher.events) > 60, what="events flowing")
        return self

    @property
    def info(self):
        return self.stack.info

    def play(self, name, version, extra=None):
        """``ansible-playbook -i <inventory> stagegate.rollout.<name> -e rollout_version=<version>`` (or a playbook
        file): (run, seconds); its output (with each task's time) in ``<workdir>/<name>-<version>.log``."""
        t0 = time.monotonic()
        run = run_playbook(name if os.path.isabs(name) else "stagegate.rollout." + name, self.workdir,
                           inventory=self.info["inventory"], callback="default", timeout=600, cwd=self.info["workdir"],
                           extra_vars=dict({"rollout_version": version, "rollout_auto_approve": True}, **(extra or {})),
                           env=ansible_env(self.workdir, ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks"))
        seconds = time.monotonic() - t0
        log = "%s-%s.log" % (os.path.basename(name), version)
        with open(os.path.join(str(self.workdir), log), "w", encoding="utf-8") as fh:
            fh.write(run.stdout + run.stderr)
        return run, seconds

    def faults(self, text):
        with open(self.info["faults_file"], "w", encoding="utf-8") as fh:
            fh.write(text)

    def ledger(self, version):
        with open(os.path.join(self.info["workdir"], "ledger.jsonl"), encoding="utf-8") as fh:
            entries = [json.loads(line) for line in fh if line.strip()]
        return [e for e in entries if e.get("release") == version and e.get("phase") == "canary"]

    def records(self):
        """What the versions recorded in published.jsonl (staging's build-only lines left out)."""
        return [r for r in read_published(self.info["publish_dir"]) if r["action"] != "built"]

    def all_recorded_once(self, what):
        """Wait until every event published so far is recorded by a healthy version; -> (records, events)."""
        events = self.publisher.published()
        ids = {eid for eid, dummy in events}

        def healthy_ids():
            return {r["event_id"] for r in self.records() if r["version"] in HEALTHY}

        wait_for(lambda: healthy_ids() >= ids, timeout=90, interval=0.5, what=what)
        wait_for(lambda: _settled(self.info["nats"]["url"], STABLE_DURABLE), timeout=30, interval=0.5,
                 what="the stable durable settled")
        time.sleep(1.0)
        return self.records(), events

    def stop(self):
        if self.publisher is not None:
            self.publisher.halt.set()
            self.publisher.join(10)
        self.stack.stop()


def _settled(url, durable):
    info = consumer_info(url, durable)
    return info.num_pending == 0 and info.num_ack_pending == 0


def _canary_durable_gone(url):
    try:
        consumer_info(url, CANARY_DURABLE)
    except Exception:  # pylint: disable=broad-except
        return True
    return False


def _epoch(iso):
    """A ledger entry's ``ts`` (UTC, ISO 8601) in seconds since the epoch."""
    return datetime.datetime.strptime(iso.rstrip("Z")[:26], "%Y-%m-%dT%H:%M:%S.%f" if "." in iso
                                      else "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc).timestamp()


def _entry(entries, event, decision=None):
    found = [e for e in entries if e["event"] == event and (decision is None or e["decision"] == decision)]
    assert len(found) == 1, [(e["event"], e["decision"]) for e in entries]
    return found[0]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    s = Site(tmp_path_factory.mktemp("consumer-canary"))
    try:
        yield s.start()
    finally:
        s.stop()


def test_a_healthy_consumer_canary_takes_exactly_its_cohort_between_the_fences_and_is_promoted(site):
    # no proof either way in 15 s is likely here: the step's policy (promote_if_gates_pass) then promotes
    run, canary_s = site.play("canary", "v2", extra={"cc_analysis_seconds": 15})
    assert run.rc == 0, run.stdout[-4000:]
    entries = site.ledger("v2")
    begin, end = _entry(entries, "split", "begin"), _entry(entries, "split", "end")
    judge, promote = _entry(entries, "judge"), _entry(entries, "promote")
    fence, until = int(begin["evidence"]["after_seq"]), int(end["evidence"]["until_seq"])
    assert 0 < fence < until and promote["evidence"]["split"]["events"]["until_seq"] == until, promote
    # the judge compared the two arms' events at the cohort's share; no HTTP weight for the canary
    assert judge["evidence"]["verdict"] in ("pass", "inconclusive"), judge
    assert int(judge["evidence"]["weight"]) == SHARE
    assert judge["evidence"]["requests"]["canary"] > 50 and judge["evidence"]["requests"]["baseline"] > 50, judge
    assert _canary_durable_gone(site.info["nats"]["url"])

    recs, events = site.all_recorded_once("every event recorded after v2's promotion")
    seq_of = {r["event_id"]: r["seq"] for r in recs}
    by_event = collections.Counter(r["event_id"] for r in recs)
    assert {eid for eid, dummy in events} <= set(by_event)
    assert set(by_event.values()) == {1}, [e for e, n in by_event.items() if n > 1][:10]  # once, by one version
    split = {eid for eid, repo in events if repo in IN_COHORT and fence < seq_of[eid] <= until}
    v2 = {r["event_id"] for r in recs if r["version"] == "v2"}
    assert split and v2 == split  # exactly the cohort between the fences
    assert any(seq_of[eid] > until for eid, dummy in events)  # after the end fence: the stable's
    assert all(r["version"] == "v1" for r in recs if r["seq"] > until or r["seq"] <= fence)
    print("consumer canary v2: canary phase %.0f s; %s (%s); split over sequences %d..%d, %d events taken by v2 of "
          "%d" % (canary_s, judge["evidence"]["verdict"], judge["reason"], fence + 1, until, len(v2), len(events)))


def test_the_split_of_an_interrupted_canary_left_behind_refuses_the_phase_before_any_change(site):
    from nats.js.api import AckPolicy, ConsumerConfig
    url = site.info["nats"]["url"]
    # the canary's durable exists only while a split runs: one left behind is an interrupted canary's
    left = ConsumerConfig(durable_name=CANARY_DURABLE, ack_policy=AckPolicy.EXPLICIT)
    run_js(js_call(url, lambda js: js.add_consumer(STREAM, left)))
    try:
        run, dummy = site.play("canary", "v3", extra={"cc_analysis_seconds": 5})
    finally:
        run_js(js_call(url, lambda js: js.delete_consumer(STREAM, CANARY_DURABLE)))
    assert run.rc != 0
    assert "rollout_canary.events.durable: %s exists on stream %s" % (CANARY_DURABLE, STREAM) in run.stdout, \
        run.stdout[-3000:]
    assert "nothing changed" in run.stdout and site.ledger("v3") == []  # refused before the phase started


def test_a_consumer_canary_failing_10_percent_of_its_events_is_rolled_back_and_stable_gets_them_all(site):
    site.faults("DEMO_FAULT_ERROR_RATE__V3=0.1\n")  # every slot reads it; v3 only fails
    try:
        run, canary_s = site.play("canary", "v3", extra={"cc_analysis_seconds": 60})
    finally:
        site.faults("")
    assert run.rc != 0 and "rolled back" in run.stdout, run.stdout[-4000:]
    entries = site.ledger("v3")
    begin, judge, rollback = _entry(entries, "split", "begin"), _entry(entries, "judge"), _entry(entries, "rollback")
    fence = int(begin["evidence"]["after_seq"])
    assert judge["evidence"]["verdict"] == "fail" and "error rate" in judge["reason"], judge
    assert judge["evidence"]["errors"]["canary_events"] > 0 and judge["evidence"]["errors"]["baseline_events"] == 0
    assert rollback["decision"] == "rolled_back" and rollback["evidence"]["left"] == [], rollback
    assert not [e for e in entries if e["event"] == "promote"]
    assert _canary_durable_gone(site.info["nats"]["url"])

    recs, events = site.all_recorded_once("v1 to record every event after v3's rollback")
    healthy = collections.Counter(r["event_id"] for r in recs if r["version"] in HEALTHY)
    v3 = collections.Counter(r["event_id"] for r in recs if r["version"] == "v3")
    # nothing lost: every event recorded by a healthy version, exactly once
    assert {eid for eid, dummy in events} <= set(healthy) and set(healthy.values()) == {1}
    # v3 took events of its cohort after the fence only, each at most once; they were replayed to v1
    assert v3 and set(v3.values()) == {1}
    assert all(r["repo"] in IN_COHORT and r["seq"] > fence for r in recs if r["version"] == "v3")
    v1 = {r["event_id"]: r for r in recs if r["version"] == "v1"}
    assert set(v3) <= set(v1)
    # while split, the stable took no event of the cohort after the fence: those came with the rollback
    judged_at = _epoch(judge["ts"])
    assert all(v1[eid]["ts"] >= judged_at for eid in v3), "v1 took cohort events before the rollback"
    assert (rollback["evidence"]["replay"].get("replay") or {}).get("recreated"), rollback  # from the rollout start
    print("consumer canary v3: canary phase %.0f s; judged fail (%s); fence at %d, %d events handled by v3, all "
          "replayed to v1; %d events" % (canary_s, judge["reason"], fence, len(v3), len(events)))


def _split_both(site, version, seconds):
    """The canary phase of ``version`` with rollout_canary of a split of both, under HTTP load through HAProxy:
    (run, seconds, the load's report, the load's requests of the last 3 s by version)."""
    load = LoadGen(site.info["haproxy"]["frontend_url"], rate=60, workers=8, nats_url=None)
    load.start()
    try:
        run, canary_s = site.play("canary", version, extra={"cc_analysis_seconds": seconds,
                                                            "rollout_canary": site.both_canary})
        time.sleep(4.0)
        last = load.window(3.0)
    finally:
        report = load.stop()
    return run, canary_s, report, last


def test_a_healthy_canary_of_requests_and_events_is_judged_on_both_and_promoted(site):
    run, canary_s, report, last = _split_both(site, "v4", 10)
    assert run.rc == 0, run.stdout[-4000:]
    entries = site.ledger("v4")
    begin, end = _entry(entries, "split", "begin"), _entry(entries, "split", "end")
    judged = [e for e in entries if e["event"] == "judge"]
    assert [int(e["evidence"]["weight"]) for e in judged] == [10, 50], judged
    for entry in judged:
        # the requests and the events, judged in the same looks; the step's verdict is theirs together
        events = entry["evidence"]["analyses"]["events"]
        assert entry["evidence"]["requests"]["canary"] > 10 and events["requests"]["canary"] > 20, entry
        assert events["verdict"] in ("pass", "continue", "inconclusive"), entry
        assert entry["evidence"]["verdict"] in ("pass", "inconclusive"), entry
        assert entry["evidence"]["verdict"] != "pass" or events["verdict"] == "pass", entry
    assert report["by_version"]["v4"]["requests"] > 50 and report["by_version"]["v4"]["errors"] == 0, report
    assert "v4" not in last and last.get("v1", {}).get("requests", 0) > 0, last  # HTTP weight 0 once promoted
    assert _canary_durable_gone(site.info["nats"]["url"])

    fence, until = int(begin["evidence"]["after_seq"]), int(end["evidence"]["until_seq"])
    recs, events = site.all_recorded_once("every event recorded after v4's promotion")
    seq_of = {r["event_id"]: r["seq"] for r in recs}
    by_event = collections.Counter(r["event_id"] for r in recs if r["version"] in HEALTHY)  # v3's were replayed
    assert {eid for eid, dummy in events} <= set(by_event) and set(by_event.values()) == {1}
    v4 = {r["event_id"] for r in recs if r["version"] == "v4"}
    assert v4 and v4 == {eid for eid, repo in events if repo in IN_COHORT and fence < seq_of[eid] <= until}
    print("split both v4: canary phase %.0f s; judge %s; v4 served %d requests and took %d events"
          % (canary_s, [(e["evidence"]["verdict"], e["evidence"]["analyses"]["events"]["verdict"],
                         e["evidence"]["seconds"]) for e in judged], report["by_version"]["v4"]["requests"], len(v4)))


def test_a_failing_canary_of_requests_and_events_is_rolled_back_with_nothing_lost(site):
    site.faults("DEMO_FAULT_ERROR_RATE__V5=0.1\n")
    try:
        run, canary_s, report, last = _split_both(site, "v5", 60)
    finally:
        site.faults("")
    assert run.rc != 0 and "rolled back" in run.stdout, run.stdout[-4000:]
    entries = site.ledger("v5")
    judge, rollback = _entry(entries, "judge"), _entry(entries, "rollback")
    assert judge["evidence"]["verdict"] == "fail" and int(judge["evidence"]["weight"]) == 10, judge
    assert judge["reason"].startswith(("queries: ", "analyses.events: ")), judge
    assert "events" in judge["evidence"]["analyses"], judge
    assert rollback["decision"] == "rolled_back" and rollback["evidence"]["left"] == [], rollback
    assert "v5" not in last and _canary_durable_gone(site.info["nats"]["url"])

    recs, events = site.all_recorded_once("v1 to record every event after v5's rollback")
    healthy = collections.Counter(r["event_id"] for r in recs if r["version"] in HEALTHY)
    assert {eid for eid, dummy in events} <= set(healthy) and set(healthy.values()) == {1}
    v5 = {r["event_id"] for r in recs if r["version"] == "v5"}
    assert v5 <= set(healthy)  # what v5 took was replayed to the stable
    print("split both v5: canary phase %.0f s; judged fail (%s) after %s s; %d events handled by v5, all replayed"
          % (canary_s, judge["reason"][:160], judge["evidence"]["seconds"], len(v5)))
