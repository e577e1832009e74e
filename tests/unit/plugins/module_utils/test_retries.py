# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""retries: the backoff schedule of the metric providers and the webhook."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.stagegate.rollout.plugins.module_utils.retries import backoff_delay


def test_backoff_doubles_from_the_base():
    assert [backoff_delay(n, 0.5) for n in range(4)] == [0.5, 1.0, 2.0, 4.0]
    assert [backoff_delay(n, 1) for n in range(3)] == [1, 2, 4]          # rollout_notify's retry_delay 1


def test_backoff_is_capped_and_zero_stays_zero():
    assert [backoff_delay(n, 10, cap=30.0) for n in range(4)] == [10, 20, 30.0, 30.0]
    assert backoff_delay(5, 0) == 0
