# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of module_utils/jetstream_quiet.py: when paused consumers are quiet (no server, a fake clock)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.stagegate.rollout.plugins.module_utils.jetstream_quiet import (
    JetStreamQuietError, QuietWatch, watch_quiet)


def info(delivered, pending=0):
    return {"delivered": {"stream_seq": delivered, "consumer_seq": delivered}, "num_ack_pending": pending}


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def run(reads, settle=1.0, timeout=10.0):
    """watch_quiet over ``reads`` (a function of the time since the start -> name -> info)."""
    clock = FakeClock()
    start = clock.now
    return watch_quiet(lambda: reads(clock.now - start), ["stable", "canary"], settle, timeout, clock, clock.sleep), \
        clock.now - start


def test_quiet_once_nothing_pending_and_nothing_more_delivered_for_settle_seconds_after_settle_seconds():
    # paused from the start: the window opens at 1 s (the pause's time to take effect) and holds 1 s more
    (watch, infos), took = run(lambda t: {"stable": info(50), "canary": info(40)})
    assert 2.0 <= took < 2.3
    assert watch.result(100.0 + took)["consumers"] == {"stable": {"delivered_stream_seq": 50, "num_ack_pending": 0},
                                                       "canary": {"delivered_stream_seq": 40, "num_ack_pending": 0}}
    assert infos["stable"]["delivered"]["stream_seq"] == 50


def test_the_window_opens_again_at_each_delivery_and_while_anything_is_unacknowledged():
    # delivering until 3 s, then 2 unacknowledged until 5 s, then quiet: quiet at 5 + 1 s
    def reads(t):
        if t < 3:
            return {"stable": info(int(10 * t)), "canary": info(7)}
        return {"stable": info(30, 2 if t < 5 else 0), "canary": info(7)}
    dummy, took = run(reads)
    assert 6.0 <= took < 6.3


def test_a_consumer_that_goes_on_fails_at_the_timeout_naming_it_and_what_it_was_delivered():
    with pytest.raises(JetStreamQuietError) as err:
        run(lambda t: {"stable": info(int(10 * t) + 1, 1), "canary": info(7)}, timeout=5.0)
    msg = str(err.value)
    assert "consumer stable: 1 delivered and unacknowledged, delivered up to stream sequence 1, then" in msg
    assert "canary" not in msg.split("; a paused", maxsplit=1)[0].split("reads): ")[1]
    assert msg.startswith("not quiet within 5 s")


def test_a_missing_consumer_is_never_quiet_and_is_named():
    with pytest.raises(JetStreamQuietError, match="consumer canary does not exist"):
        run(lambda t: {"stable": info(5), "canary": None}, timeout=3.0)


def test_a_read_before_settle_seconds_never_counts():
    watch = QuietWatch(["a"], 2.0, 10.0, start=0.0)
    # quiet reads from 0 to 3.9 s: the window opens at 2 s, so not quiet before 4 s
    assert [watch.observe(t / 10.0, {"a": info(9)}) for t in range(0, 40)] == [False] * 40
    assert watch.observe(4.0, {"a": info(9)}) is True


@pytest.mark.parametrize("names,settle,timeout", [
    ([], 1, 5), ([""], 1, 5), (None, 1, 5), (["a"], -1, 5), (["a"], 6, 5)])
def test_bad_arguments_are_refused(names, settle, timeout):
    with pytest.raises(ValueError):
        QuietWatch(names, settle, timeout, 0.0)
