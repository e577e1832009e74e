# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Durations: the one place that reads ``60s``, ``1h30m`` or ``72h`` into seconds.

Two grammars are read, because two kinds of consumer read them:

* :func:`parse_duration` - a Prometheus duration (``60s``, ``5m``, ``1h30m``, ``250ms``): whole numbers,
  units ``ms s m h d w y``, longer than 0 - what PromQL takes in ``[window]``, so a window valid here is
  valid in the query it is placed in. :func:`parse_seconds` also takes a number of seconds.
* :func:`parse_go_duration` - a number of seconds or a Go-style duration (``24h``, ``1d12h``, ``1.5h``,
  ``500ms``): decimal parts, units ``ns us µs ms s m h d w`` - what ``time.ParseDuration`` reads plus
  days and weeks (the NATS server's own grammar, and the drift monitor's ``escalate_after``).

:func:`split_duration` is the tokenizer both use; a caller that needs other units (nanoseconds, say)
passes its own unit table. Plain Python, no I/O.

``jetstream_values.parse_duration`` (nanoseconds, ``-1`` for unlimited) reads the Go-style grammar with
``split_duration(text, <units in ns>, decimals=True)`` and names an unknown unit with :func:`unknown_unit`.
Sizes (``10GB``, ``512MiB``) are read in one place only, ``jetstream_values.parse_size``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import re

PROMETHEUS_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0,
                    "y": 365 * 86400.0}
GO_UNITS = {"ns": 1e-9, "us": 1e-6, u"\u00b5s": 1e-6, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0,
            "d": 86400.0, "w": 7 * 86400.0}
PROMETHEUS_HELP = "a string like 60s, 5m or 1h30m"
GO_HELP = "a number of seconds or a duration like 24h, 90m, 1d12h, 1.5h or 500ms (units ns, us, ms, s, m, h, d, w)"

_WHOLE = r"[0-9]+"
_DECIMAL = r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+"
_NUMBER_RE = re.compile(r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$")
_PLAIN_SECONDS = re.compile(r"^(?:%s)$" % _DECIMAL)
_PART_RES = {}


def _part_re(units, decimals):
    key = (tuple(sorted(units)), decimals)
    if key not in _PART_RES:
        names = "|".join(re.escape(u) for u in sorted(units, key=len, reverse=True))   # ms before m and s
        _PART_RES[key] = re.compile(u"(%s)(%s)" % (_DECIMAL if decimals else _WHOLE, names))
    return _PART_RES[key]


def _leading_parts(text, units, decimals):
    """The ``<number><unit>`` parts at the start of ``text`` and where they end."""
    parts = []
    pos = 0
    for m in _part_re(units, decimals).finditer(text):
        if m.start() != pos:
            break
        parts.append((m.group(1), m.group(2)))
        pos = m.end()
    return parts, pos


def split_duration(text, units, decimals=False):
    """The ``[(number_text, unit), ...]`` of ``text`` when it is nothing but ``<number><unit>`` parts
    (``1h30m``), else None. ``units`` names the accepted units; ``decimals`` allows ``1.5h``."""
    if not isinstance(text, str) or not text:
        return None
    parts, pos = _leading_parts(text, units, decimals)
    return parts if pos == len(text) else None


def unknown_unit(text, units, decimals=False):
    """For a message on a text :func:`split_duration` refused: the unit written where the valid parts end
    when it is not one of ``units`` (``x`` in ``1h30x``), else None."""
    if not isinstance(text, str):
        return None
    pos = _leading_parts(text, units, decimals)[1]
    unit = re.match(r"^[0-9.]*([^0-9.]*)", text[pos:]).group(1)
    return unit if unit and unit not in units else None


def is_plain_seconds(text):
    """Whether ``text`` is a plain, unsigned number of seconds (``3600``, ``1.5``, ``.5``)."""
    return bool(_PLAIN_SECONDS.match(text))


def is_prometheus_duration(text):
    """Whether ``text`` is a Prometheus duration as written (no spaces)."""
    return split_duration(text, PROMETHEUS_UNITS) is not None


def parse_duration(value, field="window"):
    """Seconds in a Prometheus duration (``60s``, ``5m``, ``1h30m``, ``250ms``); ValueError naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError("%s: %r is not a Prometheus duration; use %s" % (field, value, PROMETHEUS_HELP))
    parts = split_duration(value.strip(), PROMETHEUS_UNITS)
    if parts is None:
        raise ValueError("%s: %r is not a Prometheus duration; use %s (units ms, s, m, h, d, w, y)"
                         % (field, value, PROMETHEUS_HELP))
    seconds = sum(int(n) * PROMETHEUS_UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError("%s: %r must be longer than 0" % (field, value))
    return seconds


def parse_seconds(value, field):
    """A number of seconds given as a number or a Prometheus duration string (``30``, ``30s``, ``5m``);
    None stays None; ValueError naming ``field`` for anything negative, infinite or not a duration."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("%s: %r is not a number of seconds or a duration like 30s, 5m" % (field, value))
    if isinstance(value, (int, float)):
        v = float(value)
    elif isinstance(value, str) and _NUMBER_RE.match(value.strip()):
        v = float(value)
    elif isinstance(value, str):
        v = parse_duration(value, field)
    else:
        raise ValueError("%s: %r is not a number of seconds or a duration like 30s, 5m" % (field, value))
    if math.isnan(v) or math.isinf(v) or v < 0:
        raise ValueError("%s: %r must be a finite number of seconds >= 0" % (field, value))
    return v


def parse_go_duration(value, field):
    """Seconds (>= 0) in a number or a Go-style duration string (see the module docstring); ValueError
    naming ``field`` and what is accepted."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError("%s: %r is not %s" % (field, value, GO_HELP))
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = value.strip()
        if is_plain_seconds(text):
            seconds = float(text)
        else:
            parts = split_duration(text, GO_UNITS, decimals=True)
            if parts is None:
                raise ValueError("%s: %r is not %s" % (field, value, GO_HELP))
            seconds = sum(float(n) * GO_UNITS[u] for n, u in parts)
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        raise ValueError("%s: %r is not %s" % (field, value, GO_HELP))
    return seconds
