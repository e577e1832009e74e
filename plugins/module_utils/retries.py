# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Retries: the one backoff schedule of the collection's HTTP clients (the metric providers' ``metric_http``
and ``rollout_notify``'s webhook).

A failed attempt ``n`` (0 for the first) is followed by a pause of ``base * 2**n`` seconds, at most ``cap``.
Each client keeps its own loop, because what may be retried differs (the metric providers retry connection
errors and 5xx within an evaluation's deadline; the webhook also retries 429) - ansible-core's
``module_utils.api`` retry decorators retry on exceptions with jitter, which fits neither. Plain Python.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def backoff_delay(attempt, base, cap=None):
    """Seconds to wait after failed attempt ``attempt`` (0-based): ``base * 2**attempt``, at most ``cap``."""
    delay = base * (2 ** attempt)
    return delay if cap is None else min(delay, cap)
