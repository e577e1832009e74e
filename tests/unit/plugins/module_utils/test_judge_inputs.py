# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of what the canary judge accepts: its options and a look's counts (judge_inputs)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.stagegate.rollout.plugins.module_utils import canary_judge
from ansible_collections.stagegate.rollout.plugins.module_utils.judge_inputs import (
    JUDGE_DEFAULTS, CounterResetError, JudgeError, parse_counts, validate_options)


def test_the_judge_uses_these_defaults_and_errors():
    assert canary_judge.CanaryJudge.DEFAULTS is JUDGE_DEFAULTS
    assert canary_judge.JudgeError is JudgeError
    assert canary_judge.CounterResetError is CounterResetError
    assert issubclass(CounterResetError, JudgeError)


def test_validate_options_normalises():
    o = validate_options(dict(JUDGE_DEFAULTS, latency_quantiles=0.9, error_abs_margin=None, alpha=0.05))
    assert o["latency_quantiles"] == [0.9]
    assert o["error_abs_margin"] == 0.0
    assert isinstance(o["latency_shift_weight"], float)
    o = validate_options(dict(JUDGE_DEFAULTS, latency_quantiles=[0.99, 0.5, 0.99]))
    assert o["latency_quantiles"] == [0.5, 0.99]


@pytest.mark.parametrize("name, value, message", [
    ("alpha", 0, "alpha must be a number strictly between 0 and 1"),
    ("error_weight", 0, r"error_weight must be in \(0, 1\]"),
    ("latency_shift_weight", 1.0, r"latency_shift_weight must be in \[0, 1\)"),
    ("error_margin", 1.0, "error_margin must be a ratio > 1"),
    ("latency_quantiles", [1.5], r"latency_quantiles must be in \(0, 1\)"),
    ("on_reset", "ignore", "on_reset must be 'error' or 'rebase'"),
    ("confidence_bounds", "yes", "confidence_bounds must be true or false"),
])
def test_validate_options_names_the_bad_option(name, value, message):
    with pytest.raises(JudgeError, match=message):
        validate_options(dict(JUDGE_DEFAULTS, **{name: value}))


def test_parse_counts():
    req, err, hist = parse_counts({"requests": 10, "errors": "2", "latency_buckets": {"+Inf": 10, "0.1": 4}}, "canary")
    assert (req, err) == (10, 2.0)
    assert hist == ((0.1, float("inf")), (4, 10))
    assert parse_counts({"requests": 3}, "baseline") == (3, 0, None)


@pytest.mark.parametrize("counts, message", [
    ([], "canary must be a dict"),
    ({"requests": 1, "latency": 2}, r"canary: unknown keys \['latency'\]"),
    ({"errors": 1}, "canary.requests is required"),
    ({"requests": 1, "errors": 2}, r"canary.errors \(2\) must not exceed"),
    ({"requests": -1}, "canary.requests must be >= 0"),
    ({"requests": 5, "latency_buckets": {"0.1": 1}}, r"must contain the \+Inf bucket"),
    ({"requests": 5, "latency_buckets": {"0.1": 3, "+Inf": 2}}, "is not cumulative"),
    ({"requests": 5, "latency_buckets": {"fast": 3, "+Inf": 5}}, "bucket bound 'fast' is not a number"),
])
def test_parse_counts_names_the_bad_field(counts, message):
    with pytest.raises(JudgeError, match=message):
        parse_counts(counts, "canary")
