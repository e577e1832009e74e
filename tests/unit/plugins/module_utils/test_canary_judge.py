# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the canary judge: guarantees on small simulations, interface, bad input."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import bisect
import json
import math
import random

import pytest

from ansible_collections.stagegate.rollout.plugins.module_utils.canary_judge import CanaryJudge, histogram_quantile
from ansible_collections.stagegate.rollout.plugins.module_utils.judge_inputs import CounterResetError, JudgeError
from ansible_collections.stagegate.rollout.plugins.module_utils import judge_streams
from ansible_collections.stagegate.rollout.plugins.module_utils.judge_streams import ShiftStream, grouped_normal_scores
from tests.unit.module_run import run_module_main

BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, float("inf"))


class Arm:
    """Cumulative Prometheus-like counters of one arm, fed request by request."""

    def __init__(self):
        self.requests = 0
        self.errors = 0
        self.hist = [0] * len(BOUNDS)

    def add(self, rng, n, p_err, median=0.1, sigma=0.5, tail_p=0.0, tail_factor=1.0):
        self.requests += n
        for dummy in range(n):
            if rng.random() < p_err:
                self.errors += 1
            x = rng.lognormvariate(math.log(median), sigma)
            if tail_p and rng.random() < tail_p:
                x *= tail_factor
            i = bisect.bisect_left(BOUNDS, x)
            self.hist[i] += 1

    def counts(self, latency=True):
        d = {"requests": self.requests, "errors": self.errors}
        if latency:
            cum, acc = {}, 0
            for b, c in zip(BOUNDS, self.hist):
                acc += c
                cum[b] = acc
            d["latency_buckets"] = cum
        return d


def simulate(seed, looks, per_look, canary=None, baseline=None, latency=True, share=0.5, **opts):
    """One stream of looks; returns (first terminal result or last result, look index)."""
    rng = random.Random(seed)
    canary = dict(canary or {})
    baseline = dict(baseline or {})
    judge = CanaryJudge(alpha=opts.pop("alpha", 0.01), canary_share=share, **opts)
    c, b = Arm(), Arm()
    n_c = max(1, int(round(2 * per_look * share)))
    n_b = max(1, 2 * per_look - n_c)
    res = None
    for t in range(1, looks + 1):
        c.add(rng, n_c, canary.get("p", 0.01), **{k: v for k, v in canary.items() if k != "p"})
        b.add(rng, n_b, baseline.get("p", 0.01), **{k: v for k, v in baseline.items() if k != "p"})
        res = judge.observe(baseline=b.counts(latency), canary=c.counts(latency), now=10.0 * t)
        if res["verdict"] != "continue":
            return res, t
    return res, looks


# --------------------------------------------------------------------------
# guarantees on small simulations (each of these can fail)
# --------------------------------------------------------------------------

def test_aa_false_fail_rate_bounded_with_looks_after_every_batch():
    """A/A: 300 streams x 40 looks, alpha = 0.1, passing disabled so every look counts.

    The anytime-valid guarantee bounds the false-fail count by alpha * 300 = 30
    in expectation (binomial sd ~5).  A repeated fixed-horizon test would fail
    far more often (see test_repeated_naive_test_would_inflate).
    """
    fails = 0
    for seed in range(300):
        res, dummy = simulate(seed, looks=40, per_look=25, alpha=0.1, pass_alpha=1e-12,
                              canary={"p": 0.05}, baseline={"p": 0.05})
        fails += res["verdict"] == "fail"
    assert fails <= 40, "false fails %d / 300 exceed alpha=0.1 (+2 sd)" % fails


def test_repeated_naive_test_would_inflate():
    """Control for the A/A test above: the same streams, re-tested with a fixed-horizon
    one-sided z-test (alpha 0.1) after every look, falsely fail far more often - so the
    A/A test has the power to catch a judge that peeks naively."""
    fails = 0
    for seed in range(300):
        rng = random.Random(seed)
        c, b = Arm(), Arm()
        for dummy in range(40):
            c.add(rng, 25, 0.05)
            b.add(rng, 25, 0.05)
            p = (c.errors + b.errors) / (2.0 * c.requests)
            if p > 0:
                z = (c.errors - b.errors) / c.requests / math.sqrt(2 * p * (1 - p) / c.requests)
                if z > 1.2816:
                    fails += 1
                    break
    assert fails > 60


def test_doubled_error_rate_detected():
    detected = 0
    delays = []
    for seed in range(40):
        res, t = simulate(1000 + seed, looks=120, per_look=100, latency=False,
                          canary={"p": 0.04}, baseline={"p": 0.02})
        if res["verdict"] == "fail":
            detected += 1
            delays.append(res["errors"]["canary_events"] + res["errors"]["baseline_events"])
    assert detected >= 38
    delays.sort()
    # oracle SPRT needs ~80 errors for r=2 at alpha=beta=0.01; we stay within ~2x
    assert delays[len(delays) // 2] < 160


def test_latency_shift_detected_and_reason_names_it():
    res, t = simulate(7, looks=60, per_look=50, canary={"p": 0.01, "median": 0.15}, baseline={"p": 0.01})
    assert res["verdict"] == "fail"
    # the shift test over the whole histogram or a quantile's stream
    assert res["reason"].startswith(("latency_shift", "latency_p"))


def test_tail_only_latency_shift_detected():
    """Same median, 5% of canary requests 6x slower: only the tail moves."""
    hits = 0
    for seed in range(10):
        res, dummy = simulate(200 + seed, looks=80, per_look=100,
                              canary={"p": 0.01, "tail_p": 0.05, "tail_factor": 6.0}, baseline={"p": 0.01})
        hits += res["verdict"] == "fail" and "latency_p50" not in res["reason"]
    assert hits >= 9


def test_better_canary_never_fails():
    for seed in range(30):
        res, dummy = simulate(300 + seed, looks=40, per_look=50, alpha=0.2, pass_alpha=1e-12,
                              canary={"p": 0.005, "median": 0.08}, baseline={"p": 0.02})
        assert res["verdict"] != "fail"


def test_healthy_canary_passes_with_enough_traffic():
    res, t = simulate(11, looks=400, per_look=200, canary={"p": 0.02}, baseline={"p": 0.02})
    assert res["verdict"] == "pass", res["reason"]
    assert res["errors"]["e_pass"] >= res["errors"]["pass_threshold"]
    for q in res["latency"]:
        if "shared_with_quantile" not in q:
            assert q["e_pass"] >= q["pass_threshold"]


def test_worse_canary_rarely_passes():
    """Canary error rate 1.5x (beyond the 1.25 margin): pass must stay rare (<= pass_alpha)."""
    passes = 0
    for seed in range(60):
        res, dummy = simulate(500 + seed, looks=100, per_look=100, latency=False, alpha=1e-9,
                              pass_alpha=0.05, error_abs_margin=0,
                              canary={"p": 0.03}, baseline={"p": 0.02})
        passes += res["verdict"] == "pass"
    assert passes <= 4


def test_zero_baseline_errors_no_false_pass():
    """Baseline with zero errors, canary at 0.5%: the ratio is unbounded and the canary is
    above the 0.1% absolute margin - it must never pass, however long it runs."""
    res, dummy = simulate(21, looks=200, per_look=100, latency=False, alpha=1e-9,
                          canary={"p": 0.005}, baseline={"p": 0.0})
    assert res["verdict"] != "pass"


def test_zero_errors_both_arms_pass_by_absolute_margin():
    res, dummy = simulate(22, looks=200, per_look=100, latency=False, canary={"p": 0.0}, baseline={"p": 0.0})
    assert res["verdict"] == "pass"
    assert res["errors"]["e_pass_abs"] >= res["errors"]["pass_threshold"]


def test_no_data_never_passes_and_ends_inconclusive():
    judge = CanaryJudge(alpha=0.01, canary_share=0.5, max_requests=1000)
    for i in range(50):
        res = judge.observe(baseline={"requests": 0, "errors": 0}, canary={"requests": 0, "errors": 0}, now=i)
        assert res["verdict"] == "continue"
    judge2 = CanaryJudge(alpha=0.01, canary_share=0.5, max_seconds=100)
    r = judge2.observe(baseline={"requests": 10, "errors": 0}, canary={"requests": 10, "errors": 0}, now=0)
    assert r["verdict"] == "continue"
    r = judge2.observe(baseline={"requests": 20, "errors": 0}, canary={"requests": 20, "errors": 0}, now=100)
    assert r["verdict"] == "inconclusive" and "max_seconds" in r["reason"]


def test_max_requests_inconclusive():
    res, dummy = simulate(5, looks=100, per_look=20, latency=False, max_requests=500,
                          canary={"p": 0.05}, baseline={"p": 0.05})
    assert res["verdict"] == "inconclusive"
    assert "max_requests" in res["reason"]
    assert res["requests"]["canary"] >= 500


def test_five_percent_share():
    res, dummy = simulate(31, looks=200, per_look=200, share=0.05, latency=False,
                          canary={"p": 0.06}, baseline={"p": 0.02})
    assert res["verdict"] == "fail"


# --------------------------------------------------------------------------
# interface
# --------------------------------------------------------------------------

def test_result_shape():
    judge = CanaryJudge(alpha=0.01, canary_share=0.5)
    res = judge.observe(baseline={"requests": 100, "errors": 1, "latency_buckets": {0.1: 50, 0.5: 99, "+Inf": 100}},
                        canary={"requests": 100, "errors": 2, "latency_buckets": {"0.1": 40, "0.5": 98, "+Inf": 100}})
    assert res["verdict"] in ("continue", "fail", "pass", "inconclusive")
    assert isinstance(res["reason"], str) and "\n" not in res["reason"]
    assert res["requests"] == {"canary": 100, "baseline": 100}
    for key in ("e_fail", "fail_threshold", "e_pass", "pass_threshold", "ratio", "ratio_lower", "ratio_upper",
                "canary_rate", "baseline_rate"):
        assert key in res["errors"]
    assert [q["quantile"] for q in res["latency"]] == [0.5, 0.9, 0.99]
    json.dumps(res)


def test_verdict_latches_after_terminal():
    res, dummy = simulate(3, looks=60, per_look=100, latency=False, canary={"p": 0.2}, baseline={"p": 0.01})
    assert res["verdict"] == "fail"


def test_state_roundtrip_gives_identical_results():
    rng = random.Random(42)
    c, b = Arm(), Arm()
    j1 = CanaryJudge(alpha=0.01, canary_share=0.5)
    j2 = CanaryJudge(alpha=0.01, canary_share=0.5)
    for t in range(1, 41):
        c.add(rng, 40, 0.02, median=0.11)
        b.add(rng, 40, 0.02)
        r1 = j1.observe(baseline=b.counts(), canary=c.counts(), now=t)
        state = json.loads(json.dumps(j2.to_state()))
        j2 = CanaryJudge.from_state(state)
        r2 = j2.observe(baseline=b.counts(), canary=c.counts(), now=t)
        assert r1 == r2


def test_latency_shift_test_catches_a_whole_distribution_shift_first():
    """+20 % on every request (median 0.1 -> 0.12 s): the shift test over the whole histogram says fail, and sooner
    than the quantile streams alone (latency_shift_weight 0)."""
    looks = {0.8: [], 0.0: []}
    named = 0
    for seed in range(12):
        for w in looks:
            res, t = simulate(900 + seed, looks=120, per_look=20, canary={"p": 0.01, "median": 0.12},
                              baseline={"p": 0.01}, latency_shift_weight=w)
            assert res["verdict"] == "fail"
            looks[w].append(t)
            if w:
                named += res["reason"].startswith("latency_shift")
                assert res["latency_shift"]["score"] > 0
    assert named >= 8
    assert sum(looks[0.8]) < 0.85 * sum(looks[0.0])


FINE_BOUNDS = tuple(round(0.02 + 0.01 * i, 2) for i in range(79)) + (1.0, float("inf"))


def _judge_slowdown(seed, factor, looks=80, per_arm=200, **opts):
    """A judge over ``looks`` looks of ``per_arm`` requests an arm, the canary's latency ``factor`` times the
    baseline's, in buckets of 10 ms up to 800 ms (the median 100 ms; interpolated quantiles are accurate there)."""
    rng = random.Random(seed)
    judge = CanaryJudge(alpha=0.01, canary_share=0.5, **opts)
    hist = {"canary": [0] * len(FINE_BOUNDS), "baseline": [0] * len(FINE_BOUNDS)}
    res = None
    for t in range(1, looks + 1):
        counts = {}
        for arm, f in (("canary", factor), ("baseline", 1.0)):
            for dummy in range(per_arm):
                hist[arm][bisect.bisect_left(FINE_BOUNDS, f * rng.lognormvariate(math.log(0.1), 0.5))] += 1
            cum = dict(zip(FINE_BOUNDS, _cumsum(hist[arm])))
            counts[arm] = {"requests": per_arm * t, "errors": 0, "latency_buckets": cum}
        res = judge.observe(baseline=counts["baseline"], canary=counts["canary"], now=10.0 * t)
        if res["verdict"] == "fail":
            break
    return res


def test_a_slowdown_below_the_latency_tolerance_is_mostly_no_rollback():
    """A canary 3 % slower on every request, 10 streams of 24,000 requests an arm: with latency_tolerance 0 the
    shift test proves it and fails the canary in (almost) every stream; under the default 5 % tolerance the latency
    evidence counts only while an observed quantile is 5 % above the baseline's - early, noisy quantiles still open
    that gate now and then, so a few streams fail. A canary 12 % slower is failed by the shift test every time."""
    strict = tolerant = 0
    for seed in range(700, 710):
        res = _judge_slowdown(seed, 1.03, looks=120, latency_tolerance=0)
        strict += res["verdict"] == "fail" and res["reason"].startswith("latency_shift")
        tolerant += _judge_slowdown(seed, 1.03, looks=120)["verdict"] == "fail"
        res = _judge_slowdown(seed, 1.12, looks=120)
        assert res["verdict"] == "fail" and res["reason"].startswith("latency_shift"), res["reason"]
    assert strict >= 9 and tolerant <= 4, (strict, tolerant)


def test_shift_stream_aa_false_fail_rate_bounded():
    """The shift test alone under H0 (same distribution, random split per batch), alpha = 0.1, 300 streams x 60
    batches of ~10 requests per arm, looked at after every batch: at most alpha of them ever cross 1 / alpha."""
    rng = random.Random(77)
    probs = [0.05, 0.2, 0.25, 0.3, 0.15, 0.05]
    crossed = 0
    for dummy in range(300):
        st = ShiftStream(0.1)
        for dummy2 in range(60):
            d_c, d_b = [0] * len(probs), [0] * len(probs)
            for dummy3 in range(20):
                k = bisect.bisect_left(list(_cumsum(probs)), rng.random())
                (d_c if rng.random() < 0.5 else d_b)[min(k, len(probs) - 1)] += 1
            st.update(d_c, d_b)
            if st.log_e_fail() >= math.log(1 / 0.1):
                crossed += 1
                break
    # expected <= 30 (alpha); a margin for the simulation's noise (sd ~5)
    assert crossed <= 36


def _cumsum(xs):
    acc = 0.0
    for x in xs:
        acc += x
        yield acc


def _hypergeometric_mgf(lam, m, n_c, n_b):
    """E[exp(lam X)] by enumeration with exact binomial coefficients."""
    n = n_c + n_b
    return sum(math.comb(m, k) * math.comb(n - m, n_c - k) * math.exp(lam * k)
               for k in range(0, min(m, n_c) + 1)) / math.comb(n, n_c)


@pytest.mark.parametrize("m,n_c,n_b", [(1, 1, 1), (3, 10, 10), (12, 5, 40), (40, 30, 12), (7, 7, 0), (25, 25, 25)])
def test_hypergeometric_mgf_exact_and_never_above_the_bounds(m, n_c, n_b):
    lams = [-2.0, -0.3, 0.0, 0.1, 0.35, 1.0, 2.3]
    exact = judge_streams._log_mgf_many(lams, m, n_c, n_b)
    for lam, got in zip(lams, exact):
        assert got == pytest.approx(math.log(_hypergeometric_mgf(lam, m, n_c, n_b)), abs=1e-9)
        # the bounds the exact value replaces are valid: never below it
        assert judge_streams._log_mgf_bound(lam, m, n_c, n_b) >= got - 1e-9


def test_hypergeometric_mgf_bounded_where_not_exact(monkeypatch):
    lams = [0.2, 0.7]
    bound = [judge_streams._log_mgf_bound(lam, 4.5, 10, 10) for lam in lams]
    assert judge_streams._log_mgf_many(lams, 4.5, 10, 10) == bound        # counts that are not whole numbers
    monkeypatch.setattr(judge_streams, "EXACT_SUPPORT_MAX", 5)
    bound = [judge_streams._log_mgf_bound(lam, 20, 30, 30) for lam in lams]
    assert judge_streams._log_mgf_many(lams, 20, 30, 30) == bound         # a support of 21 values > 5
    assert judge_streams._log_mgf_many(lams, 0, 30, 30) == [0.0, 0.0]


def test_grouped_normal_scores_are_centred_and_increasing():
    pooled = [3, 0, 10, 40, 30, 12, 4, 1]
    scores = grouped_normal_scores(pooled)
    assert abs(sum(s * c for s, c in zip(scores, pooled))) < 1e-9
    filled = [s for s, c in zip(scores, pooled) if c]
    assert filled == sorted(filled)
    assert grouped_normal_scores([0, 7, 0]) == [0.0, 0.0, 0.0]


def test_fail_adds_up_the_streams_alpha_weighted_evidence(monkeypatch):
    """Neither errors nor the shift test alone crossed its 1 / alpha_i, but alpha_e E_e + alpha_s E_s >= 1: fail
    (the sum is a supermartingale starting at alpha under H0); just below 1 it is not."""
    counts = {"requests": 10, "errors": 0, "latency_buckets": {0.1: 5, 0.25: 9, "+Inf": 10}}
    for part, verdict in ((0.55, "fail"), (0.45, "continue")):
        judge = CanaryJudge(alpha=0.01, canary_share=0.5, latency_tolerance=0)
        judge.observe(baseline=counts, canary=counts, now=0)
        for st in (judge.errors, judge.shift):
            value = math.log(part / st.alpha)
            assert value < math.log(1 / st.alpha)
            monkeypatch.setattr(st, "log_e_fail", lambda value=value: value)
        res = judge.observe(baseline=counts, canary=counts, now=1)    # no new requests: the same evidence
        assert res["verdict"] == verdict
        if verdict == "fail":
            assert "e-value" in res["reason"]


def test_a_state_written_before_the_shift_test_resumes_without_it():
    rng = random.Random(5)
    c, b = Arm(), Arm()
    judge = CanaryJudge(alpha=0.01, canary_share=0.5)
    c.add(rng, 200, 0.01)
    b.add(rng, 200, 0.01)
    judge.observe(baseline=b.counts(), canary=c.counts(), now=1)
    old = json.loads(json.dumps(judge.to_state()))
    del old["shift"]
    del old["options"]["latency_shift_weight"]
    for item in old["latency"]:       # the old split: all of the latency alpha on the quantiles
        if item["stream"]:
            item["stream"]["alpha"] = 0.005 / 3 * (2 if item["q"] == 0.9 else 1)
    resumed = CanaryJudge.from_state(old)
    assert resumed.shift is None and resumed.options["latency_shift_weight"] == 0.0
    c.add(rng, 200, 0.01)
    b.add(rng, 200, 0.01)
    res = resumed.observe(baseline=b.counts(), canary=c.counts(), now=2)
    assert res["verdict"] == "continue" and "latency_shift" not in res
    fresh = CanaryJudge(alpha=0.01, canary_share=0.5)
    assert fresh.observe(baseline=b.counts(), canary=c.counts(), now=2)["latency_shift"]["alpha"] == pytest.approx(0.004)


def minus(counts, origin):
    out = {"requests": counts["requests"] - origin["requests"], "errors": counts["errors"] - origin["errors"]}
    if "latency_buckets" in counts:
        out["latency_buckets"] = {k: v - origin["latency_buckets"][k] for k, v in counts["latency_buckets"].items()}
    return out


def run_steps(seed, steps, canary_p, per_look=100, carry=True, latency=False, **opts):
    """A canary through ``steps`` [(share, looks)], 10 s per look, one judge carried over every step (``carry``) or
    a new judge per step. -> [(verdict, looks made in the step, result)] per step, stopping at a fail."""
    rng = random.Random(seed)
    c, b = Arm(), Arm()
    judge, out, t = None, [], 0.0
    origin = {"baseline": b.counts(latency), "canary": c.counts(latency)}
    for k, (share, looks) in enumerate(steps, 1):
        if judge is None or not carry:
            # a new analysis counts from the counters at its first look (as the module does)
            origin = {"baseline": b.counts(latency), "canary": c.counts(latency)}
            judge = CanaryJudge(alpha=0.01, canary_share=share, **opts)
            judge.step = str(k)
        else:
            judge.new_step(str(k), canary_share=share, min_seconds=opts.get("min_seconds"),
                           max_seconds=opts.get("max_seconds"))
        n_c = max(1, int(round(2 * per_look * share)))
        n_b = max(1, 2 * per_look - n_c)
        res, made = None, 0
        for dummy in range(looks):
            t += 10.0
            made += 1
            c.add(rng, n_c, canary_p)
            b.add(rng, n_b, 0.01)
            res = judge.observe(baseline=minus(b.counts(latency), origin["baseline"]),
                                canary=minus(c.counts(latency), origin["canary"]), now=t)
            if res["verdict"] != "continue":
                break
        out.append((res["verdict"], made, res))
        if res["verdict"] == "fail":
            break
    return out


def test_steps_carry_the_evidence_and_end_early_after_their_minimum():
    """Healthy canaries through 10/25/50 % (30 looks at most per step): one judge carried over the steps proves the
    pass more often and sooner than a new judge per step, and a step after a proven pass ends once its
    min_seconds has passed."""
    opts = dict(min_seconds=30, max_seconds=300, error_abs_margin=0)
    steps = [(0.1, 30), (0.25, 30), (0.5, 30)]
    passed, looks = {True: 0, False: 0}, {True: 0, False: 0}
    after_pass = []
    # 24 seeds (20 before the pass mixture moved weight to r = 1: 9 steps after a pass then, 13 now)
    for seed in range(24):
        for carry in (True, False):
            out = run_steps(seed, steps, 0.01, per_look=400, carry=carry, **opts)
            passed[carry] += out[-1][0] == "pass"
            looks[carry] += sum(made for dummy, made, dummy2 in out)
            # each step's own looks: the first records the origin, so min_seconds 30 s = 4 looks at the earliest
            assert all(made >= 4 for verdict, made, dummy in out if verdict == "pass")
            if carry:
                after_pass += [out[k][1] for k in range(1, len(out)) if out[k - 1][0] == "pass"]
    assert passed[True] >= passed[False] + 4, (passed, looks)
    assert looks[True] < looks[False], (passed, looks)
    # after a proven pass the next step mostly ends soon after its minimum (4 looks), far from its maximum (30)
    assert len(after_pass) >= 10 and sorted(after_pass)[len(after_pass) // 2] <= 6, after_pass
    last = run_steps(3, steps, 0.01, per_look=400, **opts)[-1][2]
    assert last["step"]["name"] == "3" and last["step"]["carried"]["steps"] == 2
    assert last["step"]["carried"]["canary"] > 0 and last["requests"]["canary"] > last["step"]["requests"]["canary"]
    # the sample-ratio check is the step's own: 50 % declared and observed, no mismatch across the earlier shares
    assert abs(last["srm"]["observed_share"] - 0.5) < 0.05 and not last["srm"]["mismatch"]


def test_a_bad_canary_fails_in_a_later_step_and_a_fail_stays_final():
    out = run_steps(7, [(0.1, 3), (0.25, 60), (0.5, 60)], 0.03, per_look=100, max_seconds=600)
    assert out[-1][0] == "fail" and len(out) <= 3, out
    judge = CanaryJudge(alpha=0.01, canary_share=0.1)
    judge.observe(baseline={"requests": 1000, "errors": 10}, canary={"requests": 1000, "errors": 200}, now=1)
    assert judge.final[0] == "fail"
    judge.new_step("2", canary_share=0.25)
    res = judge.observe(baseline={"requests": 2000, "errors": 20}, canary={"requests": 2000, "errors": 200}, now=2)
    assert res["verdict"] == "fail"


def test_a_new_step_records_its_origin_and_counts_its_own_seconds():
    judge = CanaryJudge(alpha=0.01, canary_share=0.1, max_seconds=100, min_seconds=10)
    judge.observe(baseline={"requests": 900, "errors": 9}, canary={"requests": 100, "errors": 1}, now=0)
    res = judge.observe(baseline={"requests": 1800, "errors": 18}, canary={"requests": 200, "errors": 2}, now=90)
    assert res["elapsed_seconds"] == 90 and res["requests"]["canary"] == 200
    judge.new_step("2", canary_share=0.5, min_seconds=10, max_seconds=30)
    # the traffic change happened between these looks: that increment is not a batch of either step
    res = judge.observe(baseline={"requests": 5000, "errors": 50}, canary={"requests": 900, "errors": 500}, now=200)
    assert res["verdict"] == "continue" and "origin recorded" in res["reason"]
    assert res["requests"]["canary"] == 200 and res["elapsed_seconds"] == 0
    res = judge.observe(baseline={"requests": 5100, "errors": 51}, canary={"requests": 1000, "errors": 501}, now=231)
    assert res["verdict"] == "inconclusive" and "max_seconds (30s)" in res["reason"]
    assert res["step"]["requests"] == {"canary": 100, "baseline": 100} and res["step"]["first_look"] == 3
    # the state carries the step
    again = CanaryJudge.from_state(json.loads(json.dumps(judge.to_state())))
    assert again.step == "2" and again.carried == judge.carried and again.step_n_c == 100


def test_min_seconds_holds_a_pass_back_but_never_a_fail():
    judge = CanaryJudge(alpha=0.01, canary_share=0.5, min_seconds=60, error_abs_margin=0.01)
    res = None
    for t in range(1, 6):
        res = judge.observe(baseline={"requests": 5000 * t, "errors": 0}, canary={"requests": 5000 * t, "errors": 0},
                            now=10.0 * t)
    assert res["verdict"] == "continue" and "awaiting min_seconds (60s" in res["reason"]
    res = judge.observe(baseline={"requests": 40000, "errors": 0}, canary={"requests": 40000, "errors": 0}, now=70)
    assert res["verdict"] == "pass"
    judge = CanaryJudge(alpha=0.01, canary_share=0.5, min_seconds=600)
    judge.observe(baseline={"requests": 0, "errors": 0}, canary={"requests": 0, "errors": 0}, now=0)
    res = judge.observe(baseline={"requests": 2000, "errors": 10}, canary={"requests": 2000, "errors": 300}, now=5)
    assert res["verdict"] == "fail"
    with pytest.raises(JudgeError, match=r"min_seconds \(50\) must not be above max_seconds \(20\)"):
        CanaryJudge(min_seconds=50, max_seconds=20)


def test_confidence_sequence_covers_truth_and_shrinks():
    res_small, dummy = simulate(8, looks=5, per_look=100, latency=False, pass_alpha=1e-12, canary={"p": 0.04}, baseline={"p": 0.02})
    res_big, dummy = simulate(8, looks=200, per_look=100, latency=False, alpha=1e-6, pass_alpha=1e-12,
                              canary={"p": 0.04}, baseline={"p": 0.02})
    e = res_big["errors"]
    assert e["ratio_lower"] <= 2.0 <= e["ratio_upper"]
    s = res_small["errors"]
    assert (e["ratio_upper"] - e["ratio_lower"]) < (s["ratio_upper"] - s["ratio_lower"])


def test_histogram_quantile_matches_prometheus_interpolation():
    bounds = (0.1, 0.2, float("inf"))
    assert histogram_quantile(0.5, bounds, (50, 100, 100)) == pytest.approx(0.1)
    assert histogram_quantile(0.75, bounds, (50, 100, 100)) == pytest.approx(0.15)
    assert histogram_quantile(0.5, bounds, (0, 0, 0)) is None


# --------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------

@pytest.mark.parametrize("share", [0, 1, -0.1, 1.5, "x", True])
def test_share_outside_unit_interval(share):
    with pytest.raises(JudgeError, match="canary_share"):
        CanaryJudge(alpha=0.01, canary_share=share)


@pytest.mark.parametrize("alpha", [0, 1, 2])
def test_alpha_outside_unit_interval(alpha):
    with pytest.raises(JudgeError, match="alpha"):
        CanaryJudge(alpha=alpha)


def test_unknown_option():
    with pytest.raises(JudgeError, match="unknown option"):
        CanaryJudge(alpha=0.01, canary_share=0.5, tolerance=3)


@pytest.mark.parametrize("opt,val", [("error_margin", 1.0), ("latency_quantiles", [0.5, 1.2]),
                                     ("latency_margin", 0), ("on_reset", "ignore"), ("max_requests", -5),
                                     ("latency_shift_weight", 1.0), ("latency_shift_weight", -0.1)])
def test_bad_options_named(opt, val):
    with pytest.raises(JudgeError, match=opt):
        CanaryJudge(**{opt: val})


@pytest.mark.parametrize("arm,counts,field", [
    ("baseline", {"requests": -1, "errors": 0}, "baseline.requests"),
    ("canary", {"requests": 10, "errors": -2}, "canary.errors"),
    ("canary", {"requests": 10, "errors": 11}, "canary.errors"),
    ("canary", {"requests": "ten", "errors": 1}, "canary.requests"),
    ("canary", {"errors": 1}, "canary.requests"),
    ("canary", {"requests": 10, "errors": 1, "latency": {}}, "unknown keys"),
    ("canary", {"requests": 10, "errors": 0, "latency_buckets": {0.1: 5, 0.5: 3, "+Inf": 10}}, "not cumulative"),
    ("canary", {"requests": 10, "errors": 0, "latency_buckets": {0.1: 5, 0.5: 10}}, r"\+Inf"),
    ("canary", {"requests": 10, "errors": 0, "latency_buckets": {"fast": 5, "+Inf": 10}}, "bucket bound"),
    ("canary", {"requests": 10, "errors": 0, "latency_buckets": {0.1: -1, "+Inf": 10}}, "latency_buckets"),
])
def test_bad_counts_named(arm, counts, field):
    good = {"requests": 10, "errors": 0}
    if "latency_buckets" in counts:
        good["latency_buckets"] = {0.1: 5, 0.5: 8, "+Inf": 10}
    kwargs = {"baseline": good, "canary": good}
    kwargs[arm] = counts
    with pytest.raises(JudgeError, match=field):
        CanaryJudge().observe(**kwargs)


def test_bucket_bounds_must_match():
    with pytest.raises(JudgeError, match="different bucket bounds"):
        CanaryJudge().observe(baseline={"requests": 1, "latency_buckets": {0.1: 1, "+Inf": 1}},
                              canary={"requests": 1, "latency_buckets": {0.2: 1, "+Inf": 1}})


def test_counter_going_backwards_raises_by_default():
    judge = CanaryJudge()
    judge.observe(baseline={"requests": 100, "errors": 3}, canary={"requests": 100, "errors": 2})
    with pytest.raises(CounterResetError, match="canary.requests.*restarted"):
        judge.observe(baseline={"requests": 200, "errors": 4}, canary={"requests": 20, "errors": 0})


def test_counter_going_backwards_rebases_when_asked():
    judge = CanaryJudge(on_reset="rebase")
    judge.observe(baseline={"requests": 100, "errors": 3}, canary={"requests": 100, "errors": 2})
    res = judge.observe(baseline={"requests": 200, "errors": 4}, canary={"requests": 20, "errors": 0})
    assert res["resets"] == 1 and "counter reset" in res["reason"]
    assert res["requests"] == {"canary": 100, "baseline": 100}   # the look's increment is dropped
    res = judge.observe(baseline={"requests": 300, "errors": 5}, canary={"requests": 120, "errors": 1})
    assert res["requests"] == {"canary": 200, "baseline": 200}
    assert res["errors"]["canary_events"] == 3


def test_latency_buckets_going_backwards_detected():
    judge = CanaryJudge()
    judge.observe(baseline={"requests": 10, "latency_buckets": {0.1: 5, "+Inf": 10}},
                  canary={"requests": 10, "latency_buckets": {0.1: 5, "+Inf": 10}})
    with pytest.raises(CounterResetError, match=r"latency_buckets\[le=0.1\]"):
        judge.observe(baseline={"requests": 20, "latency_buckets": {0.1: 4, "+Inf": 20}},
                      canary={"requests": 20, "latency_buckets": {0.1: 9, "+Inf": 20}})


def test_bad_state_rejected():
    with pytest.raises(JudgeError, match="state"):
        CanaryJudge.from_state({"version": 99})


# --------------------------------------------------------------------------
# the stagegate.rollout.canary_judge module (thin wrapper) - direct counts
# --------------------------------------------------------------------------

def run_module(args, capsys, check=False):
    from ansible_collections.stagegate.rollout.plugins.modules import canary_judge as mod
    return run_module_main(mod, args, capsys, check)[1]


def test_module_state_file_roundtrip_and_check_mode(tmp_path, capsys):
    state = tmp_path / "judge.json"
    out = run_module({"baseline": {"requests": 1000, "errors": 10}, "canary": {"requests": 1000, "errors": 12},
                      "state_file": str(state)}, capsys, check=True)
    assert out["verdict"] == "continue" and out["changed"] and not state.exists()
    out = run_module({"baseline": {"requests": 1000, "errors": 10}, "canary": {"requests": 1000, "errors": 12},
                      "state_file": str(state)}, capsys)
    assert out["changed"] and state.exists()
    # the next look continues from the saved state: 2000 + 2000 requests seen in total
    out = run_module({"baseline": {"requests": 2000, "errors": 10}, "canary": {"requests": 2000, "errors": 80},
                      "state_file": str(state)}, capsys)
    assert out["result"]["requests"] == {"canary": 2000, "baseline": 2000}
    assert out["verdict"] == "fail" and "error rate" in out["reason"]
    # changed options are refused against a saved state
    out = run_module({"baseline": {"requests": 3000, "errors": 10}, "canary": {"requests": 3000, "errors": 80},
                      "state_file": str(state), "alpha": 0.05}, capsys)
    assert out["failed"] and "alpha" in out["msg"] and "reset" in out["msg"]


def test_module_goes_on_into_a_new_step_with_the_evidence(capsys):
    one = run_module({"baseline": {"requests": 900, "errors": 9}, "canary": {"requests": 100, "errors": 1},
                      "canary_share": 0.1, "step": "1", "max_seconds": 60}, capsys)
    assert one["verdict"] == "continue" and one["state"]["judge"]["step"] == "1"
    # another share against the same step's state is refused, naming the way out
    out = run_module({"baseline": {"requests": 1800, "errors": 18}, "canary": {"requests": 500, "errors": 5},
                      "canary_share": 0.25, "step": "1", "state": one["state"]}, capsys)
    assert out["failed"] and "canary_share" in out["msg"] and "new step" in out["msg"]
    # a new step takes its own share and seconds; its first look is its origin; alpha must not change
    out = run_module({"baseline": {"requests": 1800, "errors": 18}, "canary": {"requests": 500, "errors": 5},
                      "canary_share": 0.25, "step": "2", "state": one["state"], "alpha": 0.05}, capsys)
    assert out["failed"] and "alpha" in out["msg"]
    two = run_module({"baseline": {"requests": 1800, "errors": 18}, "canary": {"requests": 500, "errors": 5},
                      "canary_share": 0.25, "step": "2", "state": one["state"], "min_seconds": 5,
                      "max_seconds": 30}, capsys)
    assert two["verdict"] == "continue" and "step 2: origin recorded" in two["reason"]
    assert two["result"]["requests"] == {"canary": 100, "baseline": 900}
    assert two["result"]["step"]["carried"] == {"canary": 100, "baseline": 900, "steps": 1}
    judge = two["state"]["judge"]
    assert judge["options"]["canary_share"] == 0.25 and judge["options"]["max_seconds"] == 30
    assert judge["options"]["min_seconds"] == 5


def test_module_rejects_bad_input_before_writing(tmp_path, capsys):
    state = tmp_path / "judge.json"
    out = run_module({"baseline": {"requests": 10, "errors": 0}, "canary": {"requests": 10, "errors": 20},
                      "state_file": str(state)}, capsys)
    assert out["failed"] and "canary.errors" in out["msg"] and not state.exists()
    out = run_module({"baseline": {"requests": 10, "errors": 0}, "canary": {"requests": 10, "errors": 0},
                      "canary_share": 0}, capsys)
    assert out["failed"] and "canary_share" in out["msg"]
    out = run_module({"baseline": {"requests": 10, "errors": 0}, "canary": {"requests": 10, "errors": 0},
                      "interval": 5}, capsys)
    assert out["failed"] and "queries" in out["msg"]


class _Sample:
    def __init__(self, labels, value):
        self.labels = labels
        self.value = value


class _FakeProvider:
    """Stands in for a metric provider: counters grow by a fixed step every read of 'requests'."""

    def __init__(self, script):
        self.script = script        # list of {arm: counts} readings, consumed per look
        self.look = -1
        self.budgets = []

    def begin_round(self, budget=None):
        self.budgets.append(budget)

    def budget(self):
        return self.budgets[-1] if self.budgets else None

    def secrets(self):
        return []

    def scalar(self, query, variables=None):
        arm, field = query.split(":")
        if arm == "baseline" and field == "requests":
            self.look += 1
        return float(self.script[min(self.look, len(self.script) - 1)][arm][field])

    def query(self, query, variables=None):
        arm = query.split(":")[0]
        buckets = self.script[min(self.look, len(self.script) - 1)][arm]["latency_buckets"]
        return [_Sample({"le": k}, float(v)) for k, v in buckets.items()]


def test_module_queries_loop_origin_and_restart(tmp_path, capsys, monkeypatch):
    """Provider path: first look records the origin, later looks count from it, a restart
    below the origin is rebased, and the loop stops on a verdict."""
    from ansible_collections.stagegate.rollout.plugins.modules import canary_judge as mod

    def reading(b_req, b_err, c_req, c_err):
        return {"baseline": {"requests": b_req, "errors": b_err, "latency_buckets": {"0.1": b_req // 2, "+Inf": b_req}},
                "canary": {"requests": c_req, "errors": c_err, "latency_buckets": {"0.1": c_req // 2, "+Inf": c_req}}}

    script = [reading(100000, 1000, 5000, 50),       # origin: the baseline has run for days
              reading(101000, 1010, 6000, 60),
              reading(102000, 1020, 500, 40),        # canary restarted: counter below origin
              ] + [reading(102000 + 1000 * i, 1020 + 10 * i, 500 + 1000 * i, 40 + 60 * i) for i in range(1, 40)]
    fake = _FakeProvider(script)
    from ansible_collections.stagegate.rollout.plugins.module_utils import judge_session, metric_module
    monkeypatch.setattr(metric_module, "build_provider", lambda params: fake)
    monkeypatch.setattr(metric_module, "MetricError", RuntimeError)
    monkeypatch.setattr(judge_session.time, "sleep", lambda s: None)
    queries = {arm: {"requests": arm + ":requests", "errors": arm + ":errors", "latency_buckets": arm + ":buckets"}
               for arm in ("baseline", "canary")}
    out = run_module({"queries": queries, "provider": {"type": "prometheus", "url": "http://127.0.0.1:9"}, "interval": 1, "timeout": 3600,
                      "state_file": str(tmp_path / "s.json")}, capsys)
    assert out["verdict"] == "fail", out["reason"]
    assert "origin" in out["history"][0]["reason"]
    assert out["history"][0]["requests"] == {"canary": 0, "baseline": 0}
    assert out["history"][1]["requests"] == {"canary": 1000, "baseline": 1000}
    assert "counter reset" in out["history"][2]["reason"]
    assert out["result"]["resets"] == 1
    assert out["result"]["errors"]["canary_rate"] > 3 * out["result"]["errors"]["baseline_rate"]
    # every look got the time left of the task's budget
    assert fake.budgets and all(0 < b <= 3600 for b in fake.budgets)
    assert fake.budgets == sorted(fake.budgets, reverse=True)


def _stalled_prometheus(echo=False):
    """A local http.server in a thread that accepts requests and never answers (a hung Prometheus), or, with
    ``echo``, answers 400 quoting the Authorization header it got."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_GET(self):
            if not echo:
                release.wait(60)
                return
            body = json.dumps({"status": "error", "errorType": "bad_data",
                               "error": "got Authorization: %s" % self.headers.get("Authorization")}).encode()
            self.send_response(400)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET

        def log_message(self, *args):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop():
        release.set()
        srv.shutdown()
        srv.server_close()
    return "http://127.0.0.1:%d" % srv.server_address[1], stop


JUDGE_QUERIES = {arm: {"requests": "sum(req{track=\"%s\"})" % arm, "errors": "sum(err{track=\"%s\"})" % arm}
                 for arm in ("baseline", "canary")}


def test_module_look_fails_closed_within_its_budget(capsys):
    import time
    url, stop = _stalled_prometheus()
    try:
        t0 = time.monotonic()
        out = run_module({"queries": JUDGE_QUERIES, "timeout": 1.5,
                          "provider": {"url": url, "use_proxy": False, "timeout": 10, "retries": 2}}, capsys)
        elapsed = time.monotonic() - t0
    finally:
        stop()
    assert elapsed < 1.5 + 1.0, elapsed              # not 3 x 10 s
    assert out["failed"]
    msg = out["msg"]
    assert msg.startswith("queries.baseline: ") and "deadline (1.5 s)" in msg and "look budget 1.5 s" in msg, msg
    assert "not read: queries.baseline.requests, queries.baseline.errors, queries.canary" in msg, msg


def test_module_secrets_never_in_the_output(capsys):
    import base64
    url, stop = _stalled_prometheus(echo=True)
    password = "Judge-Pw-4242"
    try:
        out_token = run_module({"queries": JUDGE_QUERIES, "provider": {"url": url, "use_proxy": False,
                                                                       "token": "tok-judge-777"}}, capsys)
        out_basic = run_module({"queries": JUDGE_QUERIES, "provider": {
            "url": url.replace("http://", "http://ops:%s@" % password), "use_proxy": False,
            "username": None}}, capsys)
        out_user = run_module({"queries": JUDGE_QUERIES, "provider": {"url": url, "use_proxy": False,
                                                                      "username": "ops", "password": password}},
                              capsys)
    finally:
        stop()
    basic = base64.b64encode(("ops:%s" % password).encode()).decode()
    for out in (out_token, out_basic, out_user):
        text = json.dumps(out)
        assert out["failed"] and "got Authorization" in out["msg"], out["msg"]
        for secret in ("tok-judge-777", password, basic):
            assert secret not in text, text
    assert "********@127.0.0.1" in out_basic["invocation"]["module_args"]["provider"]["url"]


def test_module_fail_verdict_runs_the_fast_abort_and_reports_it(tmp_path, capsys):
    # no HAProxy at the socket: the verdict stands, the abort's error is reported (the rollback writes again)
    on_fail = {"socket": str(tmp_path / "none.sock"), "backend": "app", "weights": {"s1": 100, "c1": 0}}
    out = run_module({"baseline": {"requests": 20000, "errors": 10}, "canary": {"requests": 20000, "errors": 400},
                      "on_fail": on_fail}, capsys)
    assert out["verdict"] == "fail"
    assert out["on_fail"]["applied"] is False and "HAProxy weights not written" in out["on_fail"]["error"]
    assert out["on_fail"]["decided_at"] <= out["on_fail"]["applied_at"]


def test_module_no_fast_abort_without_a_fail(tmp_path, capsys):
    on_fail = {"socket": str(tmp_path / "none.sock"), "backend": "app", "weights": {"s1": 100, "c1": 0}}
    out = run_module({"baseline": {"requests": 1000, "errors": 10}, "canary": {"requests": 1000, "errors": 10},
                      "on_fail": on_fail}, capsys)
    assert out["verdict"] != "fail" and "on_fail" not in out


def test_module_bad_on_fail_is_refused_before_any_look(tmp_path, capsys):
    state = tmp_path / "judge.json"
    out = run_module({"baseline": {"requests": 20000, "errors": 10}, "canary": {"requests": 20000, "errors": 400},
                      "state_file": str(state),
                      "on_fail": {"socket": "/x.sock", "backend": "app", "weights": {"c1": 300}}}, capsys)
    assert out["failed"] and out["msg"].startswith("on_fail: ") and "300" in out["msg"]
    assert not state.exists()


def test_module_state_given_with_state_file_continues_from_the_state(tmp_path, capsys):
    state_file = tmp_path / "judge.json"
    first = run_module({"baseline": {"requests": 1000, "errors": 10}, "canary": {"requests": 1000, "errors": 12}},
                       capsys)
    out = run_module({"baseline": {"requests": 2000, "errors": 20}, "canary": {"requests": 2000, "errors": 22},
                      "state": first["state"], "state_file": str(state_file)}, capsys)
    assert out["result"]["requests"] == {"canary": 2000, "baseline": 2000} and state_file.exists()
    assert json.loads(state_file.read_text()) == out["state"]


def test_module_looks_must_not_be_negative(capsys):
    out = run_module({"baseline": {"requests": 1, "errors": 0}, "canary": {"requests": 1, "errors": 0},
                      "looks": -1}, capsys)
    assert out["failed"] and "looks must be >= 0" in out["msg"]


def test_module_unreadable_metrics_fail_closed_with_the_fast_abort(tmp_path, capsys):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]       # nothing listens there once the socket is closed
    on_fail = {"socket": str(tmp_path / "none.sock"), "backend": "app", "weights": {"s1": 100, "c1": 0}}
    queries = {arm: {"requests": "sum(r{arm='%s'})" % arm} for arm in ("baseline", "canary")}
    provider = {"type": "prometheus", "url": "http://127.0.0.1:%d" % port, "retries": 0}
    out = run_module({"queries": queries, "provider": provider, "timeout": 5, "on_fail": on_fail}, capsys)
    assert out["failed"] and out["msg"].startswith("queries.baseline: "), out["msg"]
    assert "fast abort: HAProxy weights not written" in out["msg"]
    assert out["on_fail"]["applied"] is False and out["on_fail"]["decided_at"] <= out["on_fail"]["applied_at"]


def test_module_bad_input_never_runs_the_fast_abort(tmp_path, capsys):
    on_fail = {"socket": str(tmp_path / "none.sock"), "backend": "app", "weights": {"s1": 100, "c1": 0}}
    provider = {"type": "prometheus", "url": "http://127.0.0.1:9"}
    out = run_module({"queries": {"baseline": {"requests": "x"}}, "provider": provider, "on_fail": on_fail}, capsys)
    assert out["failed"] and "queries.canary" in out["msg"] and "on_fail" not in out
