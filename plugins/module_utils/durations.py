# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Durations and sizes: the one place that reads ``60s``, ``1h30m``, ``72h`` or ``10GB``.

Two duration grammars are read, because two kinds of consumer read them:

* :func:`parse_duration` - a Prometheus duration (``60s``, ``5m``, ``1h30m``, ``250ms``): whole numbers,
  units ``ms s m h d w y``, longer than 0 - what PromQL takes in ``[window]``, so a window valid here is
  valid in the query it is placed in. :func:`parse_seconds` also takes a number of seconds.
* :func:`parse_go_duration` - a number of seconds or a Go-style duration (``24h``, ``1d12h``, ``1.5h``,
  ``500ms``): decimal parts, units ``ns us µs ms s m h d w`` - what ``time.ParseDuration`` reads plus
  days and weeks (the NATS server's own grammar, and the drift monitor's ``escalate_after``).
  :func:`go_duration` reads the same text in seconds (``GO_UNITS``) or in nanoseconds (``GO_UNITS_NS``,
  integers: ``jetstream_values.parse_duration``).

:func:`split_duration` is the tokenizer both use; :func:`unknown_unit` names the unit a refused text has.

Sizes (``10GB``, ``512MiB``, ``1.5G``, a number of bytes): :func:`size_bytes`, with ``SIZE_UNITS`` (KB = 1000,
KiB = 1024, case-insensitive) and :func:`unknown_size_unit`; ``jetstream_values.parse_size`` adds JetStream's
limits (-1 for unlimited, whole bytes). Plain Python, no I/O.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import re

PROMETHEUS_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0,
                    "y": 365 * 86400.0}
GO_UNITS_NS = {"ns": 1, "us": 1000, u"\u00b5s": 1000, "ms": 10 ** 6, "s": 10 ** 9, "m": 60 * 10 ** 9,
               "h": 3600 * 10 ** 9, "d": 86400 * 10 ** 9, "w": 7 * 86400 * 10 ** 9}
GO_UNITS = dict((unit, ns / 1e9) for unit, ns in GO_UNITS_NS.items())     # the same units in seconds
PROMETHEUS_HELP = "a string like 60s, 5m or 1h30m"
GO_HELP = "a number of seconds or a duration like 24h, 90m, 1d12h, 1.5h or 500ms (units ns, us, ms, s, m, h, d, w)"

_WHOLE = r"[0-9]+"
_DECIMAL = r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+"
_NUMBER_RE = re.compile(r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$")
_PLAIN_SECONDS = re.compile(r"^(?:%s)$" % _DECIMAL)
_PART_RES = {}

SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 10 ** 3, "kb": 10 ** 3, "kib": 2 ** 10,
    "m": 10 ** 6, "mb": 10 ** 6, "mib": 2 ** 20,
    "g": 10 ** 9, "gb": 10 ** 9, "gib": 2 ** 30,
    "t": 10 ** 12, "tb": 10 ** 12, "tib": 2 ** 40,
    "p": 10 ** 15, "pb": 10 ** 15, "pib": 2 ** 50,
}
SIZE_HELP = ("an integer number of bytes or a size like 10GB, 512MiB, 1.5G (B, KB/KiB, MB/MiB, GB/GiB, TB/TiB, PB/PiB; "
             "KB = 1000, KiB = 1024)")
_SIZE = re.compile(r"^(%s)\s*([A-Za-z]*)$" % _DECIMAL)


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


def go_duration(text, units=None):
    """How long a Go-style duration text is (a plain number of seconds or ``<number><unit>`` parts, decimals
    allowed: ``90``, ``1.5h``, ``1d12h``, ``500ms``), in what ``units`` measures in - ``GO_UNITS`` (the default):
    seconds, ``GO_UNITS_NS``: nanoseconds; None when it is not one."""
    units = GO_UNITS if units is None else units
    if is_plain_seconds(text):
        return float(text) * units["s"]
    parts = split_duration(text, units, decimals=True)
    if parts is None:
        return None
    return sum(float(n) * units[u] for n, u in parts)


def size_bytes(text):
    """The number of bytes (a float; ``1.5KiB`` is 1536.0, ``0.5B`` is 0.5) of a size text (``4096``, ``10GB``,
    ``512 MiB``, ``1.5g``), None when it is not a size in ``SIZE_UNITS`` (see :func:`unknown_size_unit`)."""
    m = _SIZE.match(text) if isinstance(text, str) else None
    if not m or m.group(2).lower() not in SIZE_UNITS:
        return None
    return float(m.group(1)) * SIZE_UNITS[m.group(2).lower()]


def unknown_size_unit(text):
    """For a message on a text :func:`size_bytes` refused: its unit as written when the text is a number and a
    unit that is not one of ``SIZE_UNITS`` (``gigs`` in ``10 gigs``), else None."""
    m = _SIZE.match(text) if isinstance(text, str) else None
    return m.group(2) if m and m.group(2).lower() not in SIZE_UNITS else None


def parse_go_duration(value, field):
    """Seconds (>= 0) in a number or a Go-style duration string (see the module docstring); ValueError
    naming ``field`` and what is accepted."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError("%s: %r is not %s" % (field, value, GO_HELP))
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        seconds = go_duration(value.strip())
        if seconds is None:
            raise ValueError("%s: %r is not %s" % (field, value, GO_HELP))
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        raise ValueError("%s: %r is not %s" % (field, value, GO_HELP))
    return seconds
