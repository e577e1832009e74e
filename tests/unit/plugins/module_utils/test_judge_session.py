# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""judge_session: the canary judge's saved state, counter origin and counter reading (no module, no server)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible_collections.stagegate.rollout.plugins.module_utils.judge_session import (
    SessionError, below, look, minus, queries_problem, read_counts, saved_state, start_judge, zero_like)
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_base import (
    DeadlineError, NoDataError, Sample)


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
