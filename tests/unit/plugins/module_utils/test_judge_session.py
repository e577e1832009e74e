# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""judge_session: the canary judge's saved state, counter origin and counter reading (no module, no server)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible_collections.stagegate.rollout.plugins.module_utils import judge_session
from ansible_collections.stagegate.rollout.plugins.module_utils.judge_session import (
    SessionError, below, look, minus, queries_problem, read_counts, run_judge, saved_state, start_judge, zero_like)
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_base import (
    DeadlineError, MetricError, NoDataError, Sample)


def params(**over):
    p = dict(alpha=0.01, canary_share=0.5, pass_alpha=0.05, error_margin=1.25, error_abs_margin=0.001,
             latency_quantiles=[0.5, 0.9, 0.99], latency_margin=0.05, error_weight=0.5, min_requests=0,
             max_requests=None, max_seconds=None, min_seconds=0, step=None, on_counter_reset="rebase",
             state=None, state_file=None, reset=False)
    p.update(over)
    return p


def test_saved_state_reset_wins_then_state_then_state_file(tmp_path):
    path = tmp_path / "judge.json"
    path.write_text(json.dumps({"from": "file"}))
    assert saved_state(params(reset=True, state={"from": "option"}, state_file=str(path))) is None
    assert saved_state(params(state={"from": "option"}, state_file=str(path))) == {"from": "option"}
    assert saved_state(params(state_file=str(path))) == {"from": "file"}
    assert saved_state(params(state_file=str(tmp_path / "none.json"))) is None


def test_an_unreadable_state_file_names_the_field_and_the_fix(tmp_path):
    path = tmp_path / "judge.json"
    path.write_text("{not json")
    with pytest.raises(SessionError, match="state_file .*judge.json: cannot read the judge state.*reset: true"):
        saved_state(params(state_file=str(path)))


def test_start_judge_continues_a_saved_state_and_refuses_other_options():
    judge, origin = start_judge(params(step="5"), None)
    assert origin == {} and judge.step == "5"
    state = {"judge": judge.to_state(), "origin": {"baseline": {"requests": 1.0, "errors": 0.0}}}
    again, origin = start_judge(params(step="5"), state)
    assert origin == state["origin"] and again.step == "5"
    with pytest.raises(SessionError, match=r"different options \(canary_share\).*or a new step"):
        start_judge(params(step="5", canary_share=0.25), state)
    # a new step may change the traffic share, not the statistics
    stepped = start_judge(params(step="25", canary_share=0.25), state)[0]
    assert stepped.step == "25"
    with pytest.raises(SessionError, match=r"different options \(alpha\)"):
        start_judge(params(step="25", alpha=0.05), state)


def test_queries_problem_names_the_key():
    good = {"requests": "r", "errors": "e"}
    assert queries_problem({"baseline": good, "canary": good}) is None
    assert "queries.canary must be a dict" in queries_problem({"baseline": good, "canary": "r"})
    assert "queries.baseline: unknown keys ['p99']" in queries_problem({"baseline": dict(good, p99="x"),
                                                                        "canary": good})
    assert "queries: unknown keys ['other']" in queries_problem({"baseline": good, "canary": good, "other": {}})


class _Provider:
    def __init__(self, answers):
        self.answers = answers

    def scalar(self, query):
        answer = self.answers[query]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def query(self, query):
        return self.answers[query]

    def budget(self):
        return 2.5


def test_read_counts_reads_the_buckets_by_le():
    provider = _Provider({"r": 10.0, "b": [Sample({"le": "0.1"}, 4), Sample({"le": "+Inf"}, 10)]})
    assert read_counts(provider, "canary", {"requests": "r", "latency_buckets": "b"}) == {
        "requests": 10.0, "errors": 0.0, "latency_buckets": {"0.1": 4.0, "+Inf": 10.0}}
    with pytest.raises(SessionError, match="queries.canary.latency_buckets: series without an 'le' label"):
        read_counts(_Provider({"r": 1.0, "b": [Sample({}, 1)]}), "canary", {"requests": "r", "latency_buckets": "b"})


def test_read_counts_errors_name_the_arm_and_what_is_left_unread():
    with pytest.raises(SessionError, match="queries.baseline: no data"):
        read_counts(_Provider({"r": NoDataError("no data")}), "baseline", {"requests": "r"})
    late = _Provider({"r": 5.0, "e": DeadlineError("deadline passed")})
    with pytest.raises(SessionError) as err:
        read_counts(late, "baseline", {"requests": "r", "errors": "e"}, after=["canary"])
    assert str(err.value) == ("queries.baseline: deadline passed (look budget 2.5 s; not read: "
                              "queries.baseline.errors, queries.canary)")


def test_counter_origin_arithmetic():
    origin = {"requests": 100.0, "errors": 5.0, "latency_buckets": {"0.1": 50.0}}
    counts = {"requests": 150.0, "errors": 6.0, "latency_buckets": {"0.1": 70.0, "+Inf": 150.0}}
    assert minus(counts, origin) == {"requests": 50.0, "errors": 1.0, "latency_buckets": {"0.1": 20.0, "+Inf": 150.0}}
    assert minus(counts, {}) is counts
    assert not below(counts, origin)
    assert below(dict(counts, requests=99.0), origin)
    assert below(dict(counts, latency_buckets={"0.1": 49.0}), origin)
    assert zero_like(counts) == {"requests": 0.0, "errors": 0.0, "latency_buckets": {"0.1": 0.0, "+Inf": 0.0}}


def test_look_records_the_origin_then_counts_from_it_and_from_zero_after_a_restart():
    judge, origin = start_judge(params(), None)
    first = {"baseline": {"requests": 1000.0, "errors": 10.0}, "canary": {"requests": 500.0, "errors": 5.0}}
    result, origin = look(judge, first, origin, counters=True)
    assert origin == first and result["reason"].startswith("origin of the analysis recorded")
    assert result["requests"] == {"baseline": 0, "canary": 0}
    second = {"baseline": {"requests": 1100.0, "errors": 11.0}, "canary": {"requests": 600.0, "errors": 6.0}}
    result, origin = look(judge, second, origin, counters=True)
    assert result["requests"] == {"baseline": 100, "canary": 100} and origin == first
    restarted = {"baseline": {"requests": 1200.0, "errors": 12.0}, "canary": {"requests": 50.0, "errors": 1.0}}
    result, origin = look(judge, restarted, origin, counters=True)
    assert origin["canary"] == {"requests": 0.0, "errors": 0.0} and origin["baseline"] == first["baseline"]
    assert "counter reset" in result["reason"]


def test_look_takes_direct_counts_as_they_are():
    judge, origin = start_judge(params(), None)
    counts = {"baseline": {"requests": 1000, "errors": 10}, "canary": {"requests": 1000, "errors": 12}}
    result, origin = look(judge, counts, origin, counters=False)
    assert origin == {} and result["requests"] == {"baseline": 1000, "canary": 1000}


# ----- more than one analysis (option analyses), through run_judge with a fake module and provider -------------
ON_FAIL = {"socket": "/run/haproxy/admin.sock", "backend": "app", "weights": {"s1": 100, "c1": 0}, "timeout": 2.0}


def arm_queries(name):
    return {arm: {"requests": "%s:%s:requests" % (name, arm), "errors": "%s:%s:errors" % (name, arm)}
            for arm in ("baseline", "canary")}


def events(**over):
    return dict({"name": "events", "queries": arm_queries("events"), "canary_share": 0.2}, **over)


class _Failed(Exception):
    pass


class _Module:
    check_mode = False

    def __init__(self, source, **over):
        self.params = params(queries=arm_queries("main"), provider={"type": "prometheus", "url": "http://p:9090"},
                             baseline=None, canary=None, analyses=None, interval=1, timeout=3600, looks=0,
                             on_fail=ON_FAIL)
        self.params.update(over)
        self._provider = source

    def provider(self, spec):
        return self._provider

    def fail(self, msg, **result):
        raise _Failed(msg, result)


class _Rounds:
    """A provider whose counters grow with the look: ``rates[name][arm]`` = (requests, errors) per look."""

    def __init__(self, rates, first=0, broken=None):
        self.rates = rates
        self.round = first - 1
        self.reads = []
        self.broken = broken        # (query, from round): a MetricError from then on

    def begin_round(self, budget=None):
        self.round += 1
        self.reads.append("round")

    def budget(self):
        return 1.0

    def scalar(self, query):
        self.reads.append(query)
        if self.broken and query == self.broken[0] and self.round >= self.broken[1]:
            raise MetricError("connection refused")
        name, arm, field = query.split(":")
        per_look = self.rates[name][arm]
        return float(1000 + self.round * per_look[0 if field == "requests" else 1])


HEALTHY = {"baseline": (4000, 0), "canary": (1000, 0)}
SLOW_HEALTHY = {"baseline": (800, 0), "canary": (200, 0)}
FAILING = {"baseline": (800, 8), "canary": (200, 30)}


@pytest.fixture
def aborts(monkeypatch):
    calls = []

    def abort(spec, decided_at, check_mode=False):
        calls.append(spec)
        return {"applied": False, "changed": False, "error": "fake abort"}
    monkeypatch.setattr(judge_session, "abort_traffic", abort)
    monkeypatch.setattr(judge_session.time, "sleep", lambda s: None)
    return calls


def test_an_extra_analysis_that_fails_fails_the_step_with_its_label_and_the_fast_abort(aborts):
    provider = _Rounds({"main": HEALTHY, "events": FAILING})
    out = run_judge(_Module(provider, analyses=[events()]))
    assert out["verdict"] == "fail" and out["result"]["verdict"] == "fail"
    assert out["reason"].startswith("analyses.events: error rate ") and "queries:" not in out["reason"]
    assert out["result"]["analyses"]["events"]["verdict"] == "fail"
    assert out["result"]["analyses"]["events"]["reason"] == out["reason"][len("analyses.events: "):]
    assert aborts == [ON_FAIL] and out["on_fail"]["error"] == "fake abort"
    assert [h["analyses"] for h in out["history"]][-1] == {"events": "fail"}
    # one provider round per look: the main analysis's arms first, then the extra one's
    assert provider.reads[:9] == ["round", "main:baseline:requests", "main:baseline:errors", "main:canary:requests",
                                  "main:canary:errors", "events:baseline:requests", "events:baseline:errors",
                                  "events:canary:requests", "events:canary:errors"]
    assert provider.reads.count("round") == len(out["history"])


def test_the_step_passes_only_once_every_analysis_has_passed(aborts):
    provider = _Rounds({"main": HEALTHY, "events": SLOW_HEALTHY})
    out = run_judge(_Module(provider, analyses=[events()]))
    assert out["verdict"] == "pass" and not aborts
    verdicts = [(h["verdict"], h["analyses"]["events"]) for h in out["history"]]
    # the main analysis passed first (its pass latched), the step went on until the events passed too
    waited = [h for h in out["history"] if h["reason"].startswith("queries: non-inferiority proven")][:-1]
    assert len(waited) >= 3 and all(h["verdict"] == "continue" for h in waited), verdicts
    assert all(h["analyses"] == {"events": "continue"} for h in waited), verdicts
    assert verdicts[-1] == ("pass", "pass") and ("pass", "pass") not in verdicts[:-1]
    assert out["reason"].startswith("queries: non-inferiority proven") and "; analyses.events: non-inferiority" in \
        out["reason"]
    assert out["result"]["requests"]["canary"] > out["result"]["analyses"]["events"]["requests"]["canary"] > 0


def test_the_fail_alpha_is_split_equally_and_pass_alpha_is_not(aborts):
    out = run_judge(_Module(_Rounds({"main": HEALTHY, "events": HEALTHY}), analyses=[events()], looks=2,
                            pass_alpha=0.05))
    assert out["result"]["alpha"] == 0.005 and out["result"]["analyses"]["events"]["alpha"] == 0.005
    assert out["state"]["judge"]["options"]["alpha"] == 0.005
    assert out["state"]["analyses"]["events"]["judge"]["options"]["alpha"] == 0.005
    assert out["state"]["analyses"]["events"]["judge"]["options"]["canary_share"] == 0.2
    assert out["result"]["analyses"]["events"]["pass_alpha"] == 0.05
    # without analyses: today's alpha, result and state shapes
    alone = run_judge(_Module(_Rounds({"main": HEALTHY}), looks=2))
    assert alone["result"]["alpha"] == 0.01 and "analyses" not in alone["result"]
    assert sorted(alone["state"]) == ["judge", "origin"] and "analyses" not in alone["history"][-1]
    assert not alone["reason"].startswith("queries:")


def test_a_new_step_carries_every_analysis_evidence(aborts):
    one = run_judge(_Module(_Rounds({"main": SLOW_HEALTHY, "events": SLOW_HEALTHY}), analyses=[events()],
                            step="1", looks=3))
    assert sorted(one["state"]) == ["analyses", "judge", "origin"]
    assert sorted(one["state"]["analyses"]["events"]) == ["judge", "origin"]
    before = one["result"]["analyses"]["events"]["requests"]["canary"]
    assert before == 400.0
    two = run_judge(_Module(_Rounds({"main": SLOW_HEALTHY, "events": SLOW_HEALTHY}, first=3),
                            analyses=[events(canary_share=0.3)], step="2", canary_share=0.3, looks=3,
                            state=one["state"]))
    extra = two["result"]["analyses"]["events"]
    assert extra["step"]["name"] == "2"
    assert extra["step"]["carried"] == {"canary": before, "baseline": 1600.0, "steps": 1}
    assert extra["requests"]["canary"] == before + 400.0 and extra["srm"]["declared_share"] == 0.3
    assert two["state"]["analyses"]["events"]["origin"] == one["state"]["analyses"]["events"]["origin"]


@pytest.mark.parametrize("given", [[], [events(name="jobs")], [events(), events(name="jobs")]])
def test_a_saved_state_of_other_analyses_is_refused(aborts, given):
    one = run_judge(_Module(_Rounds({"main": HEALTHY, "events": HEALTHY}), analyses=[events()], looks=2))
    provider = _Rounds({"main": HEALTHY, "events": HEALTHY, "jobs": HEALTHY})
    with pytest.raises(_Failed) as failed:
        run_judge(_Module(provider, analyses=given, state=one["state"]))
    msg = failed.value.args[0]
    assert msg.startswith("analyses: the saved state was made with the analyses ['events'], given %s"
                          % sorted(item["name"] for item in given)) and "reset: true" in msg, msg
    assert provider.reads == [] and not aborts


@pytest.mark.parametrize("analyses,message", [
    ([events(name="x y")], "analyses[0].name: 'x y' is not accepted (accepted: letters, digits, _ and -; unique; "
                           "not 'queries')"),
    ([events(), events()], "analyses[1].name: 'events' is not accepted"),
    ([events(name="queries")], "analyses[0].name: 'queries' is not accepted"),
    ([events(), events(name="jobs", canary_share=1.5)],
     "analyses[1].canary_share: 1.5 is not accepted (accepted: a share in (0, 1))"),
    ([events(canary_share=0.0)], "analyses[0].canary_share: 0.0 is not accepted"),
    ([events(queries={"baseline": {"requests": "r"}})], "analyses[0].queries.canary must be a dict with at least"),
    ([events(queries=dict(arm_queries("events"), other={}))], "analyses[0].queries: unknown keys ['other']"),
])
def test_bad_analyses_are_refused_before_any_read(aborts, analyses, message):
    provider = _Rounds({"main": HEALTHY, "events": HEALTHY, "jobs": HEALTHY})
    with pytest.raises(_Failed) as failed:
        run_judge(_Module(provider, analyses=analyses))
    assert failed.value.args[0].startswith(message), failed.value.args[0]
    assert provider.reads == [] and not aborts


def test_analyses_are_refused_with_direct_counts(aborts):
    with pytest.raises(_Failed, match="analyses needs queries"):
        run_judge(_Module(None, queries=None, provider=None, interval=0, analyses=[events()],
                          baseline={"requests": 10, "errors": 0}, canary={"requests": 10, "errors": 0}))


def test_an_extra_analysis_that_cannot_be_read_fails_closed_naming_its_field(aborts):
    provider = _Rounds({"main": HEALTHY, "events": HEALTHY}, broken=("events:canary:requests", 2))
    with pytest.raises(_Failed) as failed:
        run_judge(_Module(provider, analyses=[events()]))
    msg = failed.value.args[0]
    assert msg.startswith("analyses.events.queries.canary: connection refused; fast abort: fake abort"), msg
    assert aborts == [ON_FAIL] and provider.reads.count("round") == 3


def test_read_counts_names_the_fields_left_of_the_later_analyses():
    late = _Provider({"r": 5.0, "e": DeadlineError("deadline passed")})
    with pytest.raises(SessionError) as err:
        read_counts(late, "baseline", {"requests": "r", "errors": "e"}, after=["canary"], field="analyses.a.queries",
                    later=["analyses.b.queries"])
    assert str(err.value) == ("analyses.a.queries.baseline: deadline passed (look budget 2.5 s; not read: "
                              "analyses.a.queries.baseline.errors, analyses.a.queries.canary, analyses.b.queries)")


class _Clock:
    """A fake monotonic clock: sleeps advance it (by ``overrun`` more than asked), every provider read costs
    ``read`` seconds."""

    def __init__(self, overrun=0.0, read=0.01):
        self.now = 100.0
        self.overrun = overrun
        self.read = read

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds + self.overrun


class _TimedRounds(_Rounds):
    """_Rounds on a fake clock, recording the budget each look was given."""

    def __init__(self, rates, clock):
        _Rounds.__init__(self, rates)
        self.clock = clock
        self.budgets = []

    def begin_round(self, budget=None):
        _Rounds.begin_round(self, budget)
        self.budgets.append(budget)

    def scalar(self, query):
        self.clock.now += self.clock.read
        return _Rounds.scalar(self, query)


@pytest.mark.parametrize("timeout, interval, overrun, looks", [
    (5.05, 5, 0.0, 1),      # a second look would start with 0.01 s left: it is not started
    (6.5, 5, 0.0, 2),       # 1.46 s left at the second look: it is made
    (6.5, 5, 0.8, 1),       # the sleep overran to 0.66 s left: no look after it
    (30, 2, 0.3, 13),       # looks every 2.3 s until less than 1 s + the interval is left
])
def test_no_look_is_started_with_less_than_a_second_of_the_timeout_left(aborts, monkeypatch, timeout, interval,
                                                                        overrun, looks):
    clock = _Clock(overrun=overrun)
    monkeypatch.setattr(judge_session.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(judge_session.time, "sleep", clock.sleep)
    provider = _TimedRounds({"main": SLOW_HEALTHY}, clock)
    out = run_judge(_Module(provider, timeout=timeout, interval=interval, min_seconds=3600))
    assert out["looks"] == looks and out["verdict"] == "continue", out["history"]
    assert provider.budgets[0] == pytest.approx(timeout)
    assert all(b >= judge_session.MIN_LOOK_SECONDS for b in provider.budgets), provider.budgets
    assert not aborts
