# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the canary judge accepts: its options (defaults and validation) and the cumulative counts of a look.

``canary_judge.CanaryJudge`` validates its options with ``validate_options`` and every look's counts with
``parse_counts``; a bad value raises ``JudgeError`` naming the field.  The tests of the judge and their
e-processes are in ``judge_streams``; the judge's state and verdicts in ``canary_judge``.

Options (all with defaults):

alpha (0.01): bound on P(verdict ever "fail" | canary as good as baseline).
canary_share (0.5): share of traffic routed to the canary, in (0, 1).  The
    tests use the *observed* request split of every batch; the declared
    share is used to flag a sample-ratio mismatch and to scale max_requests.
pass_alpha (0.05): bound on P(verdict "pass" | canary worse than a margin).
error_margin (1.25): non-inferiority margin on the error-rate ratio.
error_abs_margin (0.001): alternatively, errors are non-inferior when the
    canary error rate is proven below this absolute rate (0 disables).
latency_quantiles ((0.5, 0.9, 0.99)): quantiles whose shift is tested.
latency_margin (0.05): non-inferiority margin on latency quantiles (+5%).
error_weight (0.5): share of alpha spent on the error test (the rest goes
    to latency; all of it to errors if no histogram).
latency_shift_weight (0.8): share of the latency alpha spent on the shift
    test over the whole histogram (a stratified rank test, ShiftStream);
    the rest is split equally across the latency quantiles' fail tests.
    0 turns the shift test off (the quantiles then get all of it).
latency_tolerance (0.05): a latency fail test counts towards a fail only
    while the canary's observed quantile is more than this much above the
    baseline's (+5%): its own quantile for a quantile's test, p50 or p90 for
    the shift test.  A slowdown proven but smaller than that (a canary 2 %
    slower, given enough requests) is not a rollback.  It only ever holds a
    fail back, so alpha still bounds the false rollbacks; 0 fails on any
    proven slowdown.  The quantiles are interpolated inside the buckets (as
    Prometheus's histogram_quantile): with wide buckets they exaggerate a
    small shift, and the tolerance holds less.
min_requests (0): no "pass" before this many canary requests.
max_requests (None): canary requests after which the verdict becomes
    "inconclusive" when neither proof has been reached.
max_seconds (None): same, in seconds since the first observation of the
    current step.
min_seconds (0): no "pass" before this many seconds since the first
    observation of the current step.
on_reset ("error"): a counter going backwards (restart) raises
    CounterResetError; "rebase" restarts the increments from the new
    reading (the look's batch is dropped, the evidence so far is kept).
srm_alpha (0.001): threshold of the sample-ratio-mismatch check on the
    request split (reported, does not change the verdict).
confidence_bounds (True): report confidence-sequence bounds on every
    look (a bisection; the benchmark turns it off for speed - it does not
    change any verdict; the reason of a "fail" always carries the bound).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math


class JudgeError(ValueError):
    """Bad input to the judge; the message names the field."""


class CounterResetError(JudgeError):
    """A cumulative counter went backwards (a restart of the process)."""


def _num(value, field):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise JudgeError("%s must be a number, got %r" % (field, value))
    if math.isnan(value) or math.isinf(value):
        raise JudgeError("%s must be a finite number, got %r" % (field, value))
    if value < 0:
        raise JudgeError("%s must be >= 0 (a cumulative counter), got %r" % (field, value))
    return value


def _le(key, field):
    if isinstance(key, str) and key.strip().lower() in ("+inf", "inf"):
        return float("inf")
    try:
        val = float(key)
    except (TypeError, ValueError):
        raise JudgeError("%s: bucket bound %r is not a number (use +Inf for the last bucket)" % (field, key))
    if math.isnan(val) or val < 0:
        raise JudgeError("%s: bucket bound %r must be >= 0" % (field, key))
    return val


def parse_counts(counts, arm):
    """(requests, errors, (bounds, cumulative counts) or None) of one arm's cumulative counts; JudgeError if bad."""
    if not isinstance(counts, dict):
        raise JudgeError("%s must be a dict with requests, errors and optional latency_buckets, got %r" % (arm, type(counts).__name__))
    unknown = set(counts) - {"requests", "errors", "latency_buckets"}
    if unknown:
        raise JudgeError("%s: unknown keys %s (accepted: requests, errors, latency_buckets)" % (arm, sorted(unknown)))
    if "requests" not in counts:
        raise JudgeError("%s.requests is required" % arm)
    req = _num(counts["requests"], "%s.requests" % arm)
    err = _num(counts.get("errors", 0), "%s.errors" % arm)
    if err > req:
        raise JudgeError("%s.errors (%r) must not exceed %s.requests (%r)" % (arm, err, arm, req))
    buckets = counts.get("latency_buckets")
    if buckets is None:
        return req, err, None
    field = "%s.latency_buckets" % arm
    if not isinstance(buckets, dict) or not buckets:
        raise JudgeError("%s must be a non-empty dict {le_seconds: cumulative_count}" % field)
    pairs = sorted((_le(k, field), _num(v, "%s[%s]" % (field, k))) for k, v in buckets.items())
    bounds = [p[0] for p in pairs]
    if len(set(bounds)) != len(bounds):
        raise JudgeError("%s has duplicate bucket bounds" % field)
    if bounds[-1] != float("inf"):
        raise JudgeError("%s must contain the +Inf bucket (Prometheus le=\"+Inf\")" % field)
    cum = [p[1] for p in pairs]
    for i in range(1, len(cum)):
        if cum[i] < cum[i - 1]:
            raise JudgeError(
                "%s is not cumulative: le=%s has %r < le=%s has %r (buckets must be non-decreasing in le)"
                % (field, bounds[i], cum[i], bounds[i - 1], cum[i - 1]))
    return req, err, (tuple(bounds), tuple(cum))


JUDGE_DEFAULTS = {
    "alpha": 0.01,
    "canary_share": 0.5,
    "pass_alpha": 0.05,
    "error_margin": 1.25,
    "error_abs_margin": 0.001,
    "latency_quantiles": (0.5, 0.9, 0.99),
    "latency_margin": 0.05,
    "error_weight": 0.5,
    "latency_shift_weight": 0.8,
    "latency_tolerance": 0.05,
    "min_requests": 0,
    "max_requests": None,
    "max_seconds": None,
    "min_seconds": 0,
    "on_reset": "error",
    "srm_alpha": 0.001,
    "confidence_bounds": True,
}


def validate_options(o):
    """Check and normalise the options dict ``o`` (every key of JUDGE_DEFAULTS) in place; returns it."""
    def prob(name, lo_open=True):
        v = o[name]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0.0 < v < 1.0):
            raise JudgeError("%s must be a number strictly between 0 and 1, got %r" % (name, v))
        o[name] = float(v)

    prob("alpha")
    prob("canary_share")
    prob("pass_alpha")
    prob("srm_alpha")
    v = o["error_weight"]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0.0 < v <= 1.0):
        raise JudgeError("error_weight must be in (0, 1], got %r" % (v,))
    v = o["latency_shift_weight"]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0.0 <= v < 1.0):
        raise JudgeError("latency_shift_weight must be in [0, 1), got %r" % (v,))
    o["latency_shift_weight"] = float(v)
    v = o["latency_tolerance"]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0.0 <= v < 10.0):
        raise JudgeError("latency_tolerance must be a relative slowdown >= 0 (0.05 = +5%%), got %r" % (v,))
    o["latency_tolerance"] = float(v)
    v = o["error_margin"]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 1.0:
        raise JudgeError("error_margin must be a ratio > 1 (e.g. 1.25), got %r" % (v,))
    v = o["error_abs_margin"]
    if v is None:
        o["error_abs_margin"] = 0.0
    elif isinstance(v, bool) or not isinstance(v, (int, float)) or not (0.0 <= v < 1.0):
        raise JudgeError("error_abs_margin must be an error rate in [0, 1), got %r" % (v,))
    v = o["latency_margin"]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0.0 < v < 10.0):
        raise JudgeError("latency_margin must be a relative margin > 0 (0.05 = +5%%), got %r" % (v,))
    qs = o["latency_quantiles"]
    if isinstance(qs, (int, float)):
        qs = [qs]
    try:
        qs = tuple(sorted(set(float(q) for q in qs)))
    except (TypeError, ValueError):
        raise JudgeError("latency_quantiles must be a list of numbers in (0, 1), got %r" % (o["latency_quantiles"],))
    if any(not (0.0 < q < 1.0) for q in qs):
        raise JudgeError("latency_quantiles must be in (0, 1), got %r" % (list(qs),))
    o["latency_quantiles"] = list(qs)
    for name in ("max_requests", "max_seconds"):
        v = o[name]
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0):
            raise JudgeError("%s must be a positive number or None, got %r" % (name, v))
    for name in ("min_requests", "min_seconds"):
        v = o[name]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise JudgeError("%s must be >= 0, got %r" % (name, v))
    if o["max_seconds"] is not None and o["min_seconds"] > o["max_seconds"]:
        raise JudgeError("min_seconds (%r) must not be above max_seconds (%r)" % (o["min_seconds"], o["max_seconds"]))
    if not isinstance(o["confidence_bounds"], bool):
        raise JudgeError("confidence_bounds must be true or false, got %r" % (o["confidence_bounds"],))
    if o["on_reset"] not in ("error", "rebase"):
        raise JudgeError("on_reset must be 'error' or 'rebase', got %r" % (o["on_reset"],))
    return o
