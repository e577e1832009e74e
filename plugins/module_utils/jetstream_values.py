# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""JetStream option values: durations (nanoseconds), sizes (bytes), counts, names, subjects, RFC 3339 times.

Plain Python. The grammars of durations and sizes are ``durations``' (``go_duration`` in nanoseconds,
``size_bytes``); this file adds JetStream's limits (``-1`` for unlimited, int64, whole bytes).
``jetstream_config`` builds stream and consumer configurations from these; every parser raises
``JetStreamConfigError`` naming the field, the value and what is accepted.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import math
import re
import time

from ansible_collections.stagegate.rollout.plugins.module_utils.durations import (
    GO_UNITS_NS, SIZE_HELP, go_duration, size_bytes, unknown_size_unit, unknown_unit)

NS, US, MS, SECOND, MINUTE, HOUR, DAY, WEEK = (GO_UNITS_NS[u] for u in ("ns", "us", "ms", "s", "m", "h", "d", "w"))
DURATION_UNITS = tuple(sorted(GO_UNITS_NS.items(), key=lambda item: item[1]))   # (unit, nanoseconds), shortest first
DURATION_HELP = ("a duration like 72h, 30m, 1h30m, 90s, 500ms or 7d (units ns, us, ms, s, m, h, d, w), "
                 "or a number of seconds")

INT64_MAX = 2 ** 63 - 1
INT32_MAX = 2 ** 31 - 1

_NAME_FORBIDDEN = re.compile(r"[\s.*>/\\]")
_RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$")


class JetStreamConfigError(ValueError):
    """An option is invalid; the message names the field, the value and what is accepted."""


# ---------------------------------------------------------------------------
# scalar parsers
# ---------------------------------------------------------------------------

def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_given(value, field, accepted):
    """A value is given and is not a boolean (YAML's ``yes``/``no`` are not numbers here)."""
    if value is None:
        raise JetStreamConfigError("%s: a value is required; expected %s" % (field, accepted))
    if isinstance(value, bool):
        raise JetStreamConfigError("%s: %r is a boolean; expected %s" % (field, value, accepted))


def parse_duration(value, field, unlimited=False, allow_zero=True):
    """Parse a duration into nanoseconds.

    Accepts Go-style strings (``72h``, ``30m``, ``1h30m``, ``500ms``, also ``d`` and ``w``),
    plain numbers of seconds (int, float or a numeric string), ``0``; and, when
    ``unlimited`` is true, ``-1`` (returned as 0: JetStream's "no limit" for ages).
    """
    accepted = DURATION_HELP + (", 0 or -1 for unlimited" if unlimited else "")
    _check_given(value, field, accepted)
    if _is_number(value):
        seconds = value
        if not math.isfinite(seconds):
            raise JetStreamConfigError("%s: %r is not a finite number; expected %s" % (field, value, accepted))
        if seconds == -1 and unlimited:
            return 0
        if seconds < 0:
            raise JetStreamConfigError("%s: %r is negative; expected %s" % (field, value, accepted))
        ns = int(round(seconds * SECOND))
    elif isinstance(value, str):
        text = value.strip()
        if text in ("-1", "-1s") and unlimited:
            return 0
        if text.startswith("-"):
            raise JetStreamConfigError("%s: %r is negative; expected %s" % (field, value, accepted))
        if text.startswith("+"):
            text = text[1:]
        ns = go_duration(text, GO_UNITS_NS)
        if ns is None:
            unit = unknown_unit(text, GO_UNITS_NS, decimals=True)
            hint = (" (unknown unit %r)" % unit) if unit else ""
            raise JetStreamConfigError("%s: %r is not a duration%s; expected %s" % (field, value, hint, accepted))
        ns = int(round(ns))
    else:
        raise JetStreamConfigError("%s: expected %s, got a %s" % (field, accepted, type(value).__name__))
    if ns > INT64_MAX:
        raise JetStreamConfigError("%s: %r is too long (more than 292 years)" % (field, value))
    if ns == 0 and not allow_zero:
        raise JetStreamConfigError("%s: %r is zero; expected a duration > 0 (%s)" % (field, value, DURATION_HELP))
    return ns


def format_duration(ns):
    """Nanoseconds as a short duration string (``259200000000000`` -> ``72h``); 0 -> ``0``."""
    if ns is None:
        return None
    ns = int(ns)
    if ns == 0:
        return "0"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    parts = []
    for unit, size in (("h", HOUR), ("m", MINUTE), ("s", SECOND)):
        if ns >= size:
            parts.append("%d%s" % (ns // size, unit))
            ns %= size
    for unit, size in (("ms", MS), ("us", US), ("ns", NS)):
        if ns >= size:
            parts.append("%d%s" % (ns // size, unit))
            ns %= size
    return sign + "".join(parts)


def parse_size(value, field, allow_unlimited=True, maximum=INT64_MAX):
    """Parse a size into bytes: integers, ``10GB``, ``512MiB``; ``-1`` (and 0) mean unlimited -> -1."""
    accepted = SIZE_HELP + (", or -1 for unlimited" if allow_unlimited else "")
    _check_given(value, field, accepted)
    if _is_number(value):
        if isinstance(value, float):
            if not math.isfinite(value):
                raise JetStreamConfigError("%s: %r is not a finite number; expected %s" % (field, value, accepted))
            if value != int(value):
                raise JetStreamConfigError("%s: %r is not a whole number of bytes; expected %s"
                                           % (field, value, accepted))
        number = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if text in ("-1",) and allow_unlimited:
            return -1
        if text.startswith("-"):
            raise JetStreamConfigError("%s: %r is negative; expected %s" % (field, value, accepted))
        number = size_bytes(text)
        if number is None:
            unit = unknown_size_unit(text)
            if unit is None:
                raise JetStreamConfigError("%s: %r is not a size; expected %s" % (field, value, accepted))
            raise JetStreamConfigError("%s: %r has an unknown unit %r; expected %s" % (field, value, unit, accepted))
        if number != int(number):
            raise JetStreamConfigError("%s: %r is not a whole number of bytes; expected %s" % (field, value, accepted))
        number = int(number)
    else:
        raise JetStreamConfigError("%s: expected %s, got a %s" % (field, accepted, type(value).__name__))
    if number in (-1, 0) and allow_unlimited:
        return -1
    if number < 0:
        raise JetStreamConfigError("%s: %r is negative; expected %s" % (field, value, accepted))
    if number == 0:
        raise JetStreamConfigError("%s: %r is zero; expected %s" % (field, value, accepted))
    if number > maximum:
        raise JetStreamConfigError("%s: %r is larger than the maximum %d" % (field, value, maximum))
    return number


def parse_count(value, field, allow_unlimited=True, minimum=1, maximum=INT64_MAX):
    """Parse a count (messages, deliveries): an integer (or numeric string) >= ``minimum``; -1 = unlimited.

    0 is read as unlimited too when ``allow_unlimited`` (JetStream stores 0 as -1).
    """
    accepted = "an integer >= %d%s" % (minimum, " or -1 for unlimited" if allow_unlimited else "")
    _check_given(value, field, accepted)
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise JetStreamConfigError("%s: %r is not a whole number; expected %s" % (field, value, accepted))
        value = int(value)
    if isinstance(value, str):
        text = value.strip().replace("_", "")
        if not re.match(r"^-?[0-9]+$", text):
            raise JetStreamConfigError("%s: %r is not an integer; expected %s" % (field, value, accepted))
        number = int(text)
    elif isinstance(value, int):
        number = value
    else:
        raise JetStreamConfigError("%s: expected %s, got a %s" % (field, accepted, type(value).__name__))
    if allow_unlimited and number in (-1, 0):
        return -1
    if number < minimum:
        raise JetStreamConfigError("%s: %r is out of range; expected %s" % (field, value, accepted))
    if number > maximum:
        raise JetStreamConfigError("%s: %r is larger than the maximum %d" % (field, value, maximum))
    return number


def check_choice(value, field, choices):
    if value not in choices:
        raise JetStreamConfigError("%s: %r is not one of the accepted values %s" % (field, value, ", ".join(choices)))
    return value


def check_bool(value, field):
    if not isinstance(value, bool):
        raise JetStreamConfigError("%s: expected true or false, got %r" % (field, value))
    return value


def check_name(value, field, what="stream"):
    """A stream or consumer name: 1..255 characters, no whitespace, '.', '*', '>', '/' or '\\'."""
    if not isinstance(value, str) or not value:
        raise JetStreamConfigError("%s: a %s name is required (a non-empty string)" % (field, what))
    if len(value) > 255:
        raise JetStreamConfigError("%s: %r is longer than 255 characters" % (field, value[:40] + "..."))
    if _NAME_FORBIDDEN.search(value):
        raise JetStreamConfigError("%s: %r is not a valid %s name; it must not contain whitespace, '.', '*', '>', "
                                   "'/' or '\\'" % (field, value, what))
    return value


def check_subject(value, field, wildcards=True):
    """A NATS subject (``orders.>``, ``orders.*.created``): dot-separated non-empty tokens, no whitespace."""
    if not isinstance(value, str) or not value:
        raise JetStreamConfigError("%s: a subject must be a non-empty string, got %r" % (field, value))
    if re.search(r"\s", value):
        raise JetStreamConfigError("%s: subject %r contains whitespace" % (field, value))
    tokens = value.split(".")
    for i, tok in enumerate(tokens):
        if tok == "":
            raise JetStreamConfigError("%s: subject %r has an empty token (leading, trailing or double '.')"
                                       % (field, value))
        if ("*" in tok or ">" in tok) and tok not in ("*", ">"):
            raise JetStreamConfigError("%s: subject %r: wildcards '*' and '>' must be whole tokens" % (field, value))
        if tok == ">" and i != len(tokens) - 1:
            raise JetStreamConfigError("%s: subject %r: '>' must be the last token" % (field, value))
        if tok in ("*", ">") and not wildcards:
            raise JetStreamConfigError("%s: subject %r: wildcards are not allowed here" % (field, value))
    return value


def parse_rfc3339(value, field):
    """Validate an RFC 3339 timestamp; returns (normalised string, nanoseconds since the epoch).

    The string keeps its nanosecond fraction (JetStream stores message times in
    nanoseconds); ``T``/``Z`` are upper-cased.
    """
    accepted = "an RFC 3339 timestamp like 2025-01-31T12:00:00Z or 2025-01-31T12:00:00.123456789+01:00"
    if not isinstance(value, str):
        raise JetStreamConfigError("%s: expected %s, got a %s" % (field, accepted, type(value).__name__))
    text = value.strip()
    m = _RFC3339.match(text)
    if not m:
        raise JetStreamConfigError("%s: %r is not %s" % (field, value, accepted))
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    frac = (m.group(7) or "")
    zone = m.group(8).upper()
    try:
        time.strptime("%04d-%02d-%02d %02d:%02d:%02d" % (year, month, day, hour, minute, min(second, 59)),
                      "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise JetStreamConfigError("%s: %r is not a valid date and time; expected %s" % (field, value, accepted))
    if hour > 23 or minute > 59 or second > 60:
        raise JetStreamConfigError("%s: %r is not a valid time of day" % (field, value))
    offset = 0
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        oh, om = int(zone[1:3]), int(zone[4:6])
        if oh > 23 or om > 59:
            raise JetStreamConfigError("%s: %r has an invalid UTC offset %s" % (field, value, zone))
        offset = sign * (oh * 3600 + om * 60)
    epoch = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)) - offset
    ns = epoch * SECOND + (int(frac.ljust(9, "0")) if frac else 0)
    normalised = "%04d-%02d-%02dT%02d:%02d:%02d%s%s" % (year, month, day, hour, minute, second,
                                                        ("." + frac) if frac else "", zone)
    return normalised, ns


def _time_ns(value):
    """Nanoseconds of an RFC 3339 string from the server (None when unset/unparseable)."""
    if not value:
        return None
    try:
        return parse_rfc3339(value, "time")[1]
    except JetStreamConfigError:
        return None
