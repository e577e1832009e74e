# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Release windows and change freezes: may a rollout change anything now?

A spec (``rollout_release_windows`` of an inventory)::

    timezone: Europe/Berlin          # of the windows' hours and of freeze dates without a time (default UTC)
    windows:                         # when changes may happen; none - any time (but for freezes)
      - {days: [mon, tue, wed, thu], start: "09:00", end: "16:00"}
      - {days: [fri], start: "09:00", end: "12:00"}
    freezes:                         # when no change may happen, whatever the windows say
      - {start: "2026-12-21", end: "2027-01-04", reason: year-end freeze}
      - {start: "2026-12-02T18:00:00Z", end: "2026-12-02T20:00:00Z", reason: database migration}

A window's ``end`` at or before its ``start`` runs past midnight into the next day (``22:00``-``02:00``); ``24:00``
is the end of the day. A freeze's ``start`` and ``end`` are RFC 3339 times or dates; a date ``end`` includes that
whole day. :func:`check_spec` validates a spec (errors name the field, the value and what is accepted);
:func:`evaluate` answers for one moment: open or not, why, and the next moment it opens. Plain Python (``zoneinfo``),
no I/O.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re

try:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
except ImportError:  # pragma: no cover - Python < 3.9
    ZoneInfo = None
    ZoneInfoNotFoundError = Exception

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FULL_DAYS = {"monday": "mon", "tuesday": "tue", "wednesday": "wed", "thursday": "thu", "friday": "fri",
             "saturday": "sat", "sunday": "sun"}
FIELD = "rollout_release_windows"
UTC = datetime.timezone.utc
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$|^24:00$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
LOOKAHEAD_DAYS = 400   # how far next_open is searched (a year of freezes and windows)


class WindowError(ValueError):
    """A release window spec is invalid; the message names the field, the value and what is accepted."""


def _minutes(text, field):
    if not isinstance(text, str) or not _HHMM.match(text):
        raise WindowError("%s: %r is not a time of day (accepted: HH:MM from 00:00 to 24:00, e.g. \"09:00\"; quote it "
                          "in YAML)" % (field, text))
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _zone(name, field):
    if ZoneInfo is None:
        raise WindowError("%s: time zones need Python 3.9 or later (zoneinfo) where the check runs" % field)
    if not isinstance(name, str) or not name:
        raise WindowError("%s: %r is not a time zone name (accepted: an IANA name such as UTC or Europe/Berlin)"
                          % (field, name))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise WindowError("%s: %r is not a known time zone (accepted: an IANA name such as UTC or Europe/Berlin)"
                          % (field, name))


def _moment(value, zone, field, end=False):
    """An aware datetime from an RFC 3339 time or a date (its start; with ``end``, the start of the next day)."""
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=zone)
    if isinstance(value, datetime.date):
        value = value.isoformat()
    if not isinstance(value, str):
        raise WindowError("%s: %r is not a date or a time (accepted: 2026-12-21 or 2026-12-21T18:00:00Z)" % (field, value))
    text = value.strip()
    if _DATE.match(text):
        try:
            day = datetime.date.fromisoformat(text)
        except ValueError:
            raise WindowError("%s: %r is not a date" % (field, value))
        if end:
            day += datetime.timedelta(days=1)
        return datetime.datetime(day.year, day.month, day.day, tzinfo=zone)
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise WindowError("%s: %r is not a date or a time (accepted: 2026-12-21 or 2026-12-21T18:00:00Z)" % (field, value))
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def _check_keys(value, where, keys):
    """``value`` must be a dict with no keys but ``keys``."""
    if not isinstance(value, dict):
        raise WindowError("%s must be a dict {%s}, got %r" % (where, ", ".join(keys), value))
    unknown = sorted(set(value) - set(keys))
    if unknown:
        raise WindowError("%s: unknown keys %s (accepted: %s)" % (where, ", ".join(unknown), ", ".join(keys)))


def _entries(spec, key, field, keys):
    """``(where, entry)`` of the list ``spec[key]`` (none when missing), each entry checked by _check_keys."""
    items = spec.get(key) or []
    if not isinstance(items, list):
        raise WindowError("%s.%s must be a list of {%s}, got %r" % (field, key, ", ".join(keys), items))
    for i, item in enumerate(items):
        where = "%s.%s[%d]" % (field, key, i)
        _check_keys(item, where, keys)
        yield where, item


def check_spec(spec, field=FIELD):
    """The spec validated and normalised: ``{timezone, zone, windows: [{days, start, end}], freezes: [...]}``."""
    if spec is None:
        spec = {}
    _check_keys(spec, field, ("timezone", "windows", "freezes"))
    tz_name = spec.get("timezone") or "UTC"
    zone = _zone(tz_name, "%s.timezone" % field)
    out = {"timezone": tz_name, "zone": zone, "windows": [], "freezes": []}
    for where, w in _entries(spec, "windows", field, ("days", "start", "end")):
        days = w.get("days", list(DAYS))
        if isinstance(days, str):
            days = [days]
        if not isinstance(days, list) or not days:
            raise WindowError("%s.days must be a list of days (accepted: %s), got %r" % (where, ", ".join(DAYS), days))
        norm = []
        for d in days:
            key = str(d).strip().lower()
            key = FULL_DAYS.get(key, key)
            if key not in DAYS:
                raise WindowError("%s.days: %r is not a day (accepted: %s or the full names)" % (where, d, ", ".join(DAYS)))
            norm.append(DAYS.index(key))
        start = _minutes(w.get("start"), "%s.start" % where)
        end = _minutes(w.get("end"), "%s.end" % where)
        if start == 24 * 60:
            raise WindowError("%s.start: '24:00' is the end of a day, not a start (use \"00:00\")" % where)
        out["windows"].append({"days": sorted(set(norm)), "start": start, "end": end,
                               "text": "%s %s-%s" % (",".join(DAYS[d] for d in sorted(set(norm))), w["start"], w["end"])})
    for where, f in _entries(spec, "freezes", field, ("start", "end", "reason")):
        for key in ("start", "end"):
            if f.get(key) in (None, ""):
                raise WindowError("%s.%s is required (a date such as 2026-12-21 or a time such as 2026-12-21T18:00:00Z)"
                                  % (where, key))
        start = _moment(f["start"], zone, "%s.start" % where)
        end = _moment(f["end"], zone, "%s.end" % where, end=True)
        if end <= start:
            raise WindowError("%s: end %r is not after start %r" % (where, f["end"], f["start"]))
        out["freezes"].append({"start": start, "end": end, "reason": str(f.get("reason") or "change freeze")})
    return out


def _iso(moment):
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _in_window(w, local):
    """Whether ``local`` (aware, in the spec's zone) is inside window ``w``."""
    minute = local.hour * 60 + local.minute
    today, yesterday = local.weekday(), (local.weekday() - 1) % 7
    if w["end"] > w["start"]:
        return today in w["days"] and w["start"] <= minute < w["end"]
    # past midnight: from start on its day to end on the next day
    return (today in w["days"] and minute >= w["start"]) or (yesterday in w["days"] and minute < w["end"])


def _state(spec, moment):
    """(open, freeze or None, window or None) at ``moment``."""
    for f in spec["freezes"]:
        if f["start"] <= moment < f["end"]:
            return False, f, None
    if not spec["windows"]:
        return True, None, None
    local = moment.astimezone(spec["zone"])
    for w in spec["windows"]:
        if _in_window(w, local):
            return True, None, w
    return False, None, None


def _candidates(spec, moment):
    """Moments after ``moment`` at which the answer may turn to open: window starts and freeze ends."""
    out = [f["end"] for f in spec["freezes"] if f["end"] > moment]
    local = moment.astimezone(spec["zone"])
    for k in range(LOOKAHEAD_DAYS + 1):
        day = local.date() + datetime.timedelta(days=k)
        for w in spec["windows"]:
            if day.weekday() in w["days"]:
                t = datetime.datetime(day.year, day.month, day.day, w["start"] // 60, w["start"] % 60,
                                      tzinfo=spec["zone"])
                if t > moment:
                    out.append(t)
    return sorted(set(out))


def evaluate(spec, now=None):
    """Whether changes may happen at ``now`` (aware datetime, default the current time) under a checked ``spec``.

    -> ``{open, reason, freeze, window, next_open}``; ``next_open`` (UTC, RFC 3339) is None when it is open, or when
    nothing opens within LOOKAHEAD_DAYS.
    """
    now = now or datetime.datetime.now(UTC)
    is_open, freeze, window = _state(spec, now)
    local = now.astimezone(spec["zone"])
    at = "%s %s (%s)" % (DAYS[local.weekday()], local.strftime("%Y-%m-%d %H:%M"), spec["timezone"])
    out = {"open": is_open, "freeze": None, "window": None, "next_open": None, "at": _iso(now)}
    if freeze is not None:
        out["freeze"] = {"start": _iso(freeze["start"]), "end": _iso(freeze["end"]), "reason": freeze["reason"]}
        out["reason"] = "change freeze until %s: %s" % (_iso(freeze["end"]), freeze["reason"])
    elif is_open:
        out["window"] = window["text"] if window else None
        out["reason"] = ("inside the release window %s at %s" % (window["text"], at) if window
                         else "no release windows declared and no freeze")
    else:
        out["reason"] = "outside every release window (%s) at %s" % ("; ".join(w["text"] for w in spec["windows"]), at)
    if not is_open:
        for t in _candidates(spec, now):
            if _state(spec, t)[0]:
                out["next_open"] = _iso(t)
                break
        out["reason"] += "; next open %s" % (out["next_open"] or "not within %d days" % LOOKAHEAD_DAYS)
    return out


__all__ = ["WindowError", "check_spec", "evaluate", "DAYS"]
