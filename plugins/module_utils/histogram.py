# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Histogram quantiles as Prometheus's ``histogram_quantile`` computes them, for every caller.

* :func:`bucket_quantile` - on ``[(upper_bound, cumulative_count), ...]``, exactly Prometheus's algorithm:
  linear interpolation inside the bucket the rank falls in (from 0 for the first bucket when its bound is
  positive), the highest finite bound when the rank falls in ``+Inf``, the bound of a bucket with no
  observations of its own, counts made monotonic first; NaN without observations, without a ``+Inf``
  bucket or with fewer than two buckets; ``-Inf`` / ``+Inf`` for ``q`` below 0 / above 1.
* :func:`histogram_quantile` - the same on ``bounds`` and ``cum`` sequences, with None where Prometheus
  says NaN (the canary judge reports it as "no estimate"); :func:`bucket_cdf` is its inverse.

Plain Python, no I/O.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math


def bucket_quantile(q, buckets):
    """Prometheus's histogram_quantile on ``[(upper_bound, cumulative_count), ...]``."""
    if math.isnan(q):
        return float("nan")
    if q < 0:
        return float("-inf")
    if q > 1:
        return float("inf")
    buckets = sorted(buckets)
    if len(buckets) < 2 or not math.isinf(buckets[-1][0]):
        return float("nan")
    fixed = []
    top = 0.0
    for ub, c in buckets:
        top = max(top, c)
        fixed.append((ub, top))
    observations = fixed[-1][1]
    if observations == 0 or math.isnan(observations):
        return float("nan")
    rank = q * observations
    b = 0
    while b < len(fixed) - 1 and fixed[b][1] < rank:
        b += 1
    if b == len(fixed) - 1:
        return fixed[-2][0]
    if b == 0 and fixed[0][0] <= 0:
        return fixed[0][0]
    start = 0.0
    end = fixed[b][0]
    count = fixed[b][1]
    if b > 0:
        start = fixed[b - 1][0]
        count -= fixed[b - 1][1]
        rank -= fixed[b - 1][1]
    if count == 0:
        return end
    return start + (end - start) * (rank / count)


def histogram_quantile(q, bounds, cum):
    """:func:`bucket_quantile` of ``zip(bounds, cum)``; None where that is NaN (no observations, no finite
    bucket)."""
    value = bucket_quantile(q, list(zip(bounds, cum)))
    return None if math.isnan(value) else value


def bucket_cdf(bounds, cum, x):
    """The cumulative count at ``x`` by linear interpolation inside the buckets (the inverse of
    :func:`histogram_quantile`, as the canary judge maps a latency margin onto a bucket boundary)."""
    prev_b, prev_c = 0.0, 0.0
    for b, c in zip(bounds, cum):
        if x <= b:
            if b == float("inf"):
                return prev_c
            if b <= prev_b:
                return c
            return prev_c + (c - prev_c) * (x - prev_b) / (b - prev_b)
        prev_b, prev_c = b, c
    return cum[-1]
