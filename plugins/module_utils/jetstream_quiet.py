# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""When paused JetStream consumers are quiet: the decision behind ``jetstream_info``'s ``quiet_consumers``.

Plain Python, no I/O: fed successive reads of the consumers (the time and each one's info), it says when every
one has had nothing delivered and unacknowledged and has been delivered nothing more for ``settle`` seconds - a
consumer that stopped fetching and acknowledged what it had. The quiet window opens no earlier than ``settle``
seconds after the start, so whatever paused the consumers (a flags reload) has had that long to take effect; a
consumer that goes on taking messages never gives a window, and ``timeout`` seconds after the start the watch
fails naming each consumer that was not quiet and why.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class JetStreamQuietError(Exception):
    """The consumers were not quiet within the timeout (the message names each one and why)."""


def _state(info):
    """(delivered stream sequence, delivered and unacknowledged) of a consumer's info; None when it is missing."""
    if not info:
        return None
    return (int((info.get("delivered") or {}).get("stream_seq") or 0), int(info.get("num_ack_pending") or 0))


class QuietWatch:
    """Successive reads of ``names`` -> quiet or not yet (see the module's docstring)."""

    def __init__(self, names, settle, timeout, start):
        names = list(names or [])
        if not names or any(not isinstance(n, str) or not n for n in names):
            raise ValueError("quiet_consumers: %r is not a list of consumer names" % (names,))
        if settle < 0 or timeout < settle:
            raise ValueError("quiet_seconds %s and quiet_timeout %s: need 0 <= quiet_seconds <= quiet_timeout"
                             % (settle, timeout))
        self.names, self.settle, self.timeout, self.start = names, float(settle), float(timeout), float(start)
        self.window_start = None      # when the current quiet window opened
        self.window_states = None     # the consumers' (delivered, 0) throughout it
        self.first = None             # the first read's states (for the error message)
        self.last = None              # the last read's states
        self.reads = 0

    def observe(self, now, infos):
        """One read at ``now`` of ``infos`` (name -> consumer info or None); True once quiet.

        Raises JetStreamQuietError once ``timeout`` seconds have passed since the start without a quiet window.
        """
        states = dict((n, _state(infos.get(n))) for n in self.names)
        self.reads += 1
        if self.first is None:
            self.first = states
        self.last = states
        clean = all(s is not None and s[1] == 0 for s in states.values())
        if not clean or now < self.start + self.settle:
            self.window_start = self.window_states = None
        elif self.window_states != states:
            self.window_start, self.window_states = now, states
        if self.window_start is not None and now - self.window_start >= self.settle:
            return True
        if now - self.start >= self.timeout:
            raise JetStreamQuietError(self.why_not(now))
        return False

    def why_not(self, now):
        """Why the consumers are not quiet, each named (the timeout's message)."""
        reasons = []
        for n in self.names:
            first, last = self.first.get(n), self.last.get(n)
            if last is None:
                reasons.append("consumer %s does not exist" % n)
                continue
            parts = []
            if last[1]:
                parts.append("%d delivered and unacknowledged" % last[1])
            if first is not None and last[0] != first[0]:
                parts.append("delivered up to stream sequence %d, then %d" % (first[0], last[0]))
            if parts:
                reasons.append("consumer %s: %s" % (n, ", ".join(parts)))
        if not reasons:
            reasons.append("no %g s without a delivery to %s" % (self.settle, ", ".join(self.names)))
        return ("not quiet within %.0f s (%d reads): %s; a paused consumer must stop fetching and acknowledge what it "
                "was delivered" % (now - self.start, self.reads, "; ".join(reasons)))

    def result(self, now):
        """What the module returns: the seconds waited and each consumer's delivered sequence."""
        return {"seconds": round(now - self.start, 3), "reads": self.reads,
                "consumers": dict((n, {"delivered_stream_seq": s[0], "num_ack_pending": s[1]})
                                  for n, s in (self.last or {}).items() if s is not None)}


def watch_quiet(read, names, settle, timeout, clock, sleep, interval=0.25):
    """Read (``read()`` -> name -> info) until ``names`` are quiet; the last read's infos. Raises on the timeout."""
    watch = QuietWatch(names, settle, timeout, clock())
    while True:
        infos = read()
        now = clock()
        if watch.observe(now, infos):
            return watch, infos
        sleep(min(interval, max(settle / 4.0, 0.05)))
