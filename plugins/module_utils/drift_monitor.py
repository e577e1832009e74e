# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Two-sided tabular CUSUM (Page 1954) drift monitor, pure Python.

Each value x is standardised, z = (x - target) / sigma, and two one-sided
statistics are updated::

    S+ = max(0, S+ + z - k)        (upward drift)
    S- = max(0, S- - z - k)        (downward drift)

The alarm is on while S+ > h or S- > h.  k (the reference value) and h (the
decision interval) are in units of sigma.  k is usually half the shift worth
detecting (k = 0.5 for a 1 sigma shift).  Their effect is expressed as average
run lengths (ARL, number of observations until an alarm):

=====  =====  ==============  ================  ================
k      h      ARL0 one-sided  ARL0 two-sided    ARL1 (1 sigma)
=====  =====  ==============  ================  ================
0.5    4      336             168               8.4
0.5    5      930             465               10.4
0.5    6      2,600           1,300             12.4
=====  =====  ==============  ================  ================

(Montgomery, Introduction to Statistical Quality Control, table 9.3; two-sided
ARL0 from 1/ARL = 1/ARL+ + 1/ARL-.)  With one value a minute, h = 5 gives a
false alarm about every 8 hours of a stable process and catches a 1 sigma
shift in about 10 minutes.

``escalate`` turns on when the alarm has been on for longer than
``escalate_after`` seconds (24 h by default: "CUSUM alarms active > 24 hours"
in deployment-guide-canary-calibration-sentinels.md).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import time

STATE_VERSION = 1


class DriftError(ValueError):
    """Bad input to the drift monitor; the message names the field."""


def _number(value, field, positive=False, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool):
        raise DriftError("%s must be a number, got %r" % (field, value))
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise DriftError("%s must be a number, got %r" % (field, value))
    if math.isnan(v) or math.isinf(v):
        raise DriftError("%s must be finite, got %r" % (field, value))
    if positive and v <= 0:
        raise DriftError("%s must be > 0, got %r" % (field, value))
    return v


class Cusum:
    """Page's two-sided CUSUM with state, reset and escalation.

    target / sigma: in-control mean and standard deviation of the values.  If
    either is None the first ``warmup`` values estimate it (they are not
    monitored).  k (0.5) and h (5.0) in sigma units.  escalate_after: seconds.
    """

    def __init__(self, target=None, sigma=None, k=0.5, h=5.0, escalate_after=86400.0, warmup=30):
        self.target = _number(target, "target", allow_none=True)
        self.sigma = _number(sigma, "sigma", positive=True, allow_none=True)
        self.k = _number(k, "k")
        if self.k < 0:
            raise DriftError("k must be >= 0 (sigma units), got %r" % (k,))
        self.h = _number(h, "h", positive=True)
        self.escalate_after = _number(escalate_after, "escalate_after")
        if self.escalate_after < 0:
            raise DriftError("escalate_after must be >= 0 seconds, got %r" % (escalate_after,))
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 2:
            raise DriftError("warmup must be an integer >= 2, got %r" % (warmup,))
        self.warmup = warmup
        self.reset()

    def reset(self, now=None):
        """Manual reset: statistics to zero, alarm cleared (calibration kept)."""
        self.s_pos = 0.0
        self.s_neg = 0.0
        self.n = 0
        self.alarm_since = None
        self.last_alarm_direction = None
        self.reset_at = now
        self._warm = []  # values collected for calibration
        self.alarms = 0

    def calibrated(self):
        return self.target is not None and self.sigma is not None

    def _calibrate(self, x):
        self._warm.append(x)
        if len(self._warm) < self.warmup:
            return False
        n = len(self._warm)
        mean = sum(self._warm) / n
        var = sum((v - mean) ** 2 for v in self._warm) / (n - 1)
        if self.target is None:
            self.target = mean
        if self.sigma is None:
            if var <= 0:
                raise DriftError("sigma: the %d warm-up values are all equal (%r); give sigma explicitly" % (n, mean))
            self.sigma = math.sqrt(var)
        self._warm = []
        return True

    def update(self, value, now=None):
        """Add one value; returns the status dict."""
        x = _number(value, "value")
        now = time.time() if now is None else float(now)
        if not self.calibrated():
            self._calibrate(x)
            return self.status(now)
        z = (x - self.target) / self.sigma
        self.s_pos = max(0.0, self.s_pos + z - self.k)
        self.s_neg = max(0.0, self.s_neg - z - self.k)
        self.n += 1
        if self.s_pos > self.h or self.s_neg > self.h:
            if self.alarm_since is None:
                self.alarm_since = now
                self.alarms += 1
            self.last_alarm_direction = "up" if self.s_pos > self.h else "down"
        else:
            self.alarm_since = None
        return self.status(now)

    def status(self, now=None):
        now = time.time() if now is None else float(now)
        alarm = self.alarm_since is not None
        duration = (now - self.alarm_since) if alarm else 0.0
        return {
            "calibrated": self.calibrated(),
            "warmup_remaining": 0 if self.calibrated() else self.warmup - len(self._warm),
            "target": self.target, "sigma": self.sigma, "k": self.k, "h": self.h,
            "s_pos": self.s_pos, "s_neg": self.s_neg, "n": self.n,
            "alarm": alarm,
            "direction": self.last_alarm_direction if alarm else None,
            "alarm_since": self.alarm_since,
            "alarm_seconds": duration,
            "escalate": alarm and duration >= self.escalate_after,
            "escalate_after": self.escalate_after,
            "alarms": self.alarms,
        }

    def to_state(self):
        return {
            "version": STATE_VERSION, "target": self.target, "sigma": self.sigma,
            "k": self.k, "h": self.h, "escalate_after": self.escalate_after, "warmup": self.warmup,
            "s_pos": self.s_pos, "s_neg": self.s_neg, "n": self.n,
            "alarm_since": self.alarm_since, "direction": self.last_alarm_direction,
            "reset_at": self.reset_at, "warm": list(self._warm), "alarms": self.alarms,
        }

    @classmethod
    def from_state(cls, st):
        if not isinstance(st, dict) or st.get("version") != STATE_VERSION:
            raise DriftError("state: not a drift monitor state of version %d" % STATE_VERSION)
        c = cls(st["target"], st["sigma"], st["k"], st["h"], st["escalate_after"], st["warmup"])
        c.s_pos, c.s_neg, c.n = float(st["s_pos"]), float(st["s_neg"]), int(st["n"])
        c.alarm_since = st["alarm_since"]
        c.last_alarm_direction = st.get("direction")
        c.reset_at = st.get("reset_at")
        c._warm = [float(v) for v in st.get("warm", [])]
        c.alarms = int(st.get("alarms", 0))
        return c


def siegmund_arl(k=0.5, h=5.0, shift=0.0):
    """Siegmund's approximation of the two-sided CUSUM's ARL at a mean shift (sigma units)."""
    b = h + 1.166

    def one(delta):
        if abs(delta) < 1e-12:
            return b * b
        return (math.exp(-2 * delta * b) + 2 * delta * b - 1) / (2 * delta * delta)

    return 1.0 / (1.0 / one(shift - k) + 1.0 / one(-shift - k))
