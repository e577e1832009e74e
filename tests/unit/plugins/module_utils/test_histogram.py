# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""histogram: one histogram_quantile for the prometheus_text provider and the canary judge.

Both former copies are pinned here: the provider's (Prometheus's algorithm, NaN for no estimate) and the
judge's (bounds and cumulative counts, None for no estimate), including where they used to differ."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math

import pytest

from ansible_collections.stagegate.rollout.plugins.module_utils.histogram import (
    bucket_cdf, bucket_quantile, histogram_quantile)

INF = float("inf")


# --- the provider's former behaviour (metric_providers.bucket_quantile) ---

def test_bucket_quantile_interpolates_inside_the_bucket():
    buckets = [(0.1, 500), (0.2, 900), (INF, 1000)]
    assert bucket_quantile(0.5, buckets) == pytest.approx(0.1)               # rank at the end of the first bucket
    assert bucket_quantile(0.7, buckets) == pytest.approx(0.1 + 0.1 * 200 / 400)
    assert bucket_quantile(0.25, buckets) == pytest.approx(0.05)             # from 0 inside the first bucket
    assert bucket_quantile(0.95, buckets) == pytest.approx(0.2)              # rank in +Inf: highest finite bound


def test_bucket_quantile_edge_cases():
    assert math.isnan(bucket_quantile(0.5, [(0.1, 1), (0.2, 2)]))                # no +Inf bucket
    assert math.isnan(bucket_quantile(0.5, [(INF, 5)]))                          # no finite bucket
    assert math.isnan(bucket_quantile(0.5, [(0.1, 0), (INF, 0)]))                # no observations
    assert math.isnan(bucket_quantile(float("nan"), [(0.1, 1), (INF, 1)]))
    assert bucket_quantile(-0.1, [(0.1, 1), (INF, 1)]) == -INF
    assert bucket_quantile(1.1, [(0.1, 1), (INF, 1)]) == INF
    assert bucket_quantile(0.5, [(0.1, 4), (0.2, 3), (INF, 10)]) == pytest.approx(0.2)   # counts made monotonic
    assert bucket_quantile(0.5, [(INF, 10), (0.2, 10), (0.1, 0)]) == pytest.approx(0.15)  # order does not matter
    assert bucket_quantile(0.5, [(-1.0, 6), (0.1, 8), (INF, 10)]) == -1.0        # a non-positive first bound
    assert bucket_quantile(0.5, [(0.1, 0), (0.2, 5), (0.3, 5), (INF, 10)]) == pytest.approx(0.2)


# --- the judge's former behaviour (canary_judge.histogram_quantile) ---

def test_histogram_quantile_matches_prometheus_interpolation():
    bounds = (0.1, 0.2, INF)
    assert histogram_quantile(0.5, bounds, (50, 100, 100)) == pytest.approx(0.1)
    assert histogram_quantile(0.75, bounds, (50, 100, 100)) == pytest.approx(0.15)
    assert histogram_quantile(0.99, bounds, (50, 90, 100)) == pytest.approx(0.2)        # rank in +Inf
    assert histogram_quantile(0.5, (0.0, 0.1, INF), (50, 80, 100)) == 0.0             # an le=0 bucket
    assert histogram_quantile(0.5, (0.1, 0.2, 0.3, INF), (0, 50, 50, 100)) == pytest.approx(0.2)


def test_histogram_quantile_none_where_there_is_no_estimate():
    assert histogram_quantile(0.5, (0.1, 0.2, INF), (0, 0, 0)) is None
    # the judge's copy answered 0.0 for a histogram with only the +Inf bucket (no bound to estimate from);
    # Prometheus says NaN, the shared helper None
    assert histogram_quantile(0.5, (INF,), (10,)) is None


def test_bucket_cdf_is_the_inverse_inside_a_bucket():
    bounds, cum = (0.1, 0.2, INF), (50, 100, 100)
    assert bucket_cdf(bounds, cum, 0.05) == pytest.approx(25)
    assert bucket_cdf(bounds, cum, 0.15) == pytest.approx(75)
    assert histogram_quantile(0.75, bounds, cum) == pytest.approx(0.15)
    assert bucket_cdf(bounds, cum, 5.0) == 100           # beyond the last finite bound: what +Inf held before it
    assert bucket_cdf((0.0, 0.1, INF), (10, 20, 30), 0.0) == 10
