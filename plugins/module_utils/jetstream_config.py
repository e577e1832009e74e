# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""JetStream stream and consumer configuration: parse, validate, compare, plan.

Plain Python (no nats-py): the modules validate every option here before they
connect, then compare the desired configuration with the server's and get a
plan (create, update in place, recreate, delete, replay, nothing, or blocked
with a message that names the field and how to proceed).

Configurations are kept in the JetStream API's own JSON shape (field names of
the server; durations in nanoseconds, sizes in bytes), so what is compared is
exactly what the server stores and returns.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import math
import re
import time

NS = 1
US = 1000
MS = 1000 * US
SECOND = 1000 * MS
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
WEEK = 7 * DAY

DURATION_UNITS = (
    ("ns", NS), ("us", US), (u"\u00b5s", US), ("ms", MS), ("s", SECOND), ("m", MINUTE), ("h", HOUR),
    ("d", DAY), ("w", WEEK),
)
_DURATION_UNIT = dict(DURATION_UNITS)
_DURATION_PART = re.compile(u"([0-9]+(?:\\.[0-9]*)?|\\.[0-9]+)(ns|us|\u00b5s|ms|s|m|h|d|w)")
DURATION_HELP = ("a duration like 72h, 30m, 1h30m, 90s, 500ms or 7d (units ns, us, ms, s, m, h, d, w), "
                 "or a number of seconds")

SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 10 ** 3, "kb": 10 ** 3, "kib": 2 ** 10,
    "m": 10 ** 6, "mb": 10 ** 6, "mib": 2 ** 20,
    "g": 10 ** 9, "gb": 10 ** 9, "gib": 2 ** 30,
    "t": 10 ** 12, "tb": 10 ** 12, "tib": 2 ** 40,
    "p": 10 ** 15, "pb": 10 ** 15, "pib": 2 ** 50,
}
_SIZE = re.compile(r"^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([A-Za-z]*)$")
SIZE_HELP = ("an integer number of bytes or a size like 10GB, 512MiB, 1.5G (B, KB/KiB, MB/MiB, GB/GiB, TB/TiB, PB/PiB; "
             "KB = 1000, KiB = 1024)")

INT64_MAX = 2 ** 63 - 1
INT32_MAX = 2 ** 31 - 1

STORAGE_CHOICES = ("file", "memory")
RETENTION_CHOICES = ("limits", "interest", "workqueue")
DISCARD_CHOICES = ("old", "new")
DELIVER_POLICY_CHOICES = ("all", "last", "new", "by_start_sequence", "by_start_time", "last_per_subject")
ACK_POLICY_CHOICES = ("explicit", "all", "none")
MAX_REPLICAS = 5

# JetStream's default duplicate window (the server lowers it to max_age when max_age is shorter).
DEFAULT_DUPLICATE_WINDOW = 2 * MINUTE

_NAME_FORBIDDEN = re.compile(r"[\s.*>/\\]")
_RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$")


class JetStreamConfigError(ValueError):
    """An option is invalid; the message names the field, the value and what is accepted."""


# ---------------------------------------------------------------------------
# scalar parsers
# ---------------------------------------------------------------------------

def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_duration(value, field, unlimited=False, allow_zero=True):
    """Parse a duration into nanoseconds.

    Accepts Go-style strings (``72h``, ``30m``, ``1h30m``, ``500ms``, also ``d`` and ``w``),
    plain numbers of seconds (int, float or a numeric string), ``0``; and, when
    ``unlimited`` is true, ``-1`` (returned as 0: JetStream's "no limit" for ages).
    """
    accepted = DURATION_HELP + (", 0 or -1 for unlimited" if unlimited else "")
    if value is None:
        raise JetStreamConfigError("%s: a value is required; expected %s" % (field, accepted))
    if isinstance(value, bool):
        raise JetStreamConfigError("%s: %r is a boolean; expected %s" % (field, value, accepted))
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
        if re.match(r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)$", text):
            ns = int(round(float(text) * SECOND))
        else:
            pos = 0
            total = 0.0
            for m in _DURATION_PART.finditer(text):
                if m.start() != pos:
                    break
                total += float(m.group(1)) * _DURATION_UNIT[m.group(2)]
                pos = m.end()
            if not text or pos != len(text):
                bad = text[pos:] if text else text
                unit = re.match(r"^[0-9.]*([^0-9.]*)", bad).group(1) if bad else ""
                hint = (" (unknown unit %r)" % unit) if unit and unit not in _DURATION_UNIT else ""
                raise JetStreamConfigError("%s: %r is not a duration%s; expected %s" % (field, value, hint, accepted))
            ns = int(round(total))
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
    if value is None:
        raise JetStreamConfigError("%s: a value is required; expected %s" % (field, accepted))
    if isinstance(value, bool):
        raise JetStreamConfigError("%s: %r is a boolean; expected %s" % (field, value, accepted))
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
        m = _SIZE.match(text)
        if not m:
            raise JetStreamConfigError("%s: %r is not a size; expected %s" % (field, value, accepted))
        unit = m.group(2).lower()
        if unit not in SIZE_UNITS:
            raise JetStreamConfigError("%s: %r has an unknown unit %r; expected %s" % (field, value, m.group(2), accepted))
        number = float(m.group(1)) * SIZE_UNITS[unit]
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
    if value is None:
        raise JetStreamConfigError("%s: a value is required; expected %s" % (field, accepted))
    if isinstance(value, bool):
        raise JetStreamConfigError("%s: %r is a boolean; expected %s" % (field, value, accepted))
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


# ---------------------------------------------------------------------------
# streams
# ---------------------------------------------------------------------------

# module option -> server field
STREAM_OPTION_FIELDS = (
    ("subjects", "subjects"),
    ("description", "description"),
    ("storage", "storage"),
    ("replicas", "num_replicas"),
    ("retention", "retention"),
    ("max_age", "max_age"),
    ("max_msgs", "max_msgs"),
    ("max_bytes", "max_bytes"),
    ("max_msg_size", "max_msg_size"),
    ("discard", "discard"),
    ("duplicate_window", "duplicate_window"),
    ("allow_rollup", "allow_rollup_hdrs"),
    ("deny_delete", "deny_delete"),
    ("deny_purge", "deny_purge"),
)
STREAM_FIELD_OPTION = dict((f, o) for o, f in STREAM_OPTION_FIELDS)

# What the server stores when a field is not given (nats-server 2.10+).
STREAM_DEFAULTS = {
    "subjects": [],
    "description": "",
    "storage": "file",
    "num_replicas": 1,
    "retention": "limits",
    "max_age": 0,
    "max_msgs": -1,
    "max_bytes": -1,
    "max_msg_size": -1,
    "discard": "old",
    "duplicate_window": DEFAULT_DUPLICATE_WINDOW,
    "allow_rollup_hdrs": False,
    "deny_delete": False,
    "deny_purge": False,
}

RECREATE_HINT = ("set recreate: true to delete the stream (its messages and consumers are lost) and create it "
                 "again with the new configuration")


def build_stream_config(params):
    """Validate the stream options of ``params`` (module option names) and build the desired configuration.

    Returns a dict in the server's JSON shape with ``name`` and only the fields
    whose option was given (None = not managed: kept as it is on the server,
    the server's default on creation). Raises JetStreamConfigError.
    """
    name = check_name(params.get("name"), "name", "stream")
    cfg = {"name": name}
    subjects = params.get("subjects")
    if subjects is not None:
        if isinstance(subjects, str):
            subjects = [subjects]
        if not isinstance(subjects, (list, tuple)) or not subjects:
            raise JetStreamConfigError("subjects: at least one subject is required, e.g. ['orders.>']")
        seen = set()
        for s in subjects:
            check_subject(s, "subjects")
            if s in seen:
                raise JetStreamConfigError("subjects: %r is listed twice" % s)
            seen.add(s)
        cfg["subjects"] = list(subjects)
    if params.get("description") is not None:
        if not isinstance(params["description"], str):
            raise JetStreamConfigError("description: expected a string, got %r" % (params["description"],))
        cfg["description"] = params["description"]
    if params.get("storage") is not None:
        cfg["storage"] = check_choice(params["storage"], "storage", STORAGE_CHOICES)
    if params.get("replicas") is not None:
        cfg["num_replicas"] = parse_count(params["replicas"], "replicas", allow_unlimited=False, minimum=1,
                                          maximum=MAX_REPLICAS)
    if params.get("retention") is not None:
        cfg["retention"] = check_choice(params["retention"], "retention", RETENTION_CHOICES)
    if params.get("max_age") is not None:
        cfg["max_age"] = parse_duration(params["max_age"], "max_age", unlimited=True)
    if params.get("max_msgs") is not None:
        cfg["max_msgs"] = parse_count(params["max_msgs"], "max_msgs")
    if params.get("max_bytes") is not None:
        cfg["max_bytes"] = parse_size(params["max_bytes"], "max_bytes")
    if params.get("max_msg_size") is not None:
        cfg["max_msg_size"] = parse_size(params["max_msg_size"], "max_msg_size", maximum=INT32_MAX)
    if params.get("discard") is not None:
        cfg["discard"] = check_choice(params["discard"], "discard", DISCARD_CHOICES)
    if params.get("duplicate_window") is not None:
        cfg["duplicate_window"] = parse_duration(params["duplicate_window"], "duplicate_window")
    for opt, field in (("allow_rollup", "allow_rollup_hdrs"), ("deny_delete", "deny_delete"),
                       ("deny_purge", "deny_purge")):
        if params.get(opt) is not None:
            cfg[field] = check_bool(params[opt], opt)

    if cfg.get("allow_rollup_hdrs") and cfg.get("deny_purge"):
        raise JetStreamConfigError("allow_rollup: roll-ups purge messages, so allow_rollup: true needs "
                                   "deny_purge: false")
    max_age = cfg.get("max_age")
    window = cfg.get("duplicate_window")
    if max_age and window and window > max_age:
        raise JetStreamConfigError("duplicate_window: %s is longer than max_age %s; JetStream needs "
                                   "duplicate_window <= max_age" % (format_duration(window), format_duration(max_age)))
    max_bytes = cfg.get("max_bytes", -1)
    if max_bytes > 0 and cfg.get("max_msg_size", -1) > max_bytes:
        raise JetStreamConfigError("max_msg_size: %d bytes is larger than max_bytes %d" % (cfg["max_msg_size"], max_bytes))
    return cfg


def normalise_stream_config(config):
    """The managed fields of a server stream configuration, defaults filled in."""
    config = config or {}
    out = {}
    for field, default in STREAM_DEFAULTS.items():
        value = config.get(field)
        out[field] = default if value is None else value
    if out["max_age"] < 0:
        out["max_age"] = 0
    for field in ("max_msgs", "max_bytes", "max_msg_size"):
        if out[field] == 0:
            out[field] = -1
    return out


def _same(field, a, b):
    if field == "subjects":
        return sorted(a or []) == sorted(b or [])
    return a == b


def _immutable_violations(current, target):
    """Changes JetStream refuses to apply to an existing stream: [(option, before, after, why)]."""
    out = []
    if current["storage"] != target["storage"]:
        out.append(("storage", current["storage"], target["storage"],
                    "JetStream cannot change a stream's storage type in place"))
    if current["retention"] != target["retention"] and "workqueue" in (current["retention"], target["retention"]):
        out.append(("retention", current["retention"], target["retention"],
                    "JetStream cannot change the retention policy to or from workqueue in place"))
    if current["deny_delete"] and not target["deny_delete"]:
        out.append(("deny_delete", True, False, "JetStream cannot lift deny_delete in place"))
    if current["deny_purge"] and not target["deny_purge"]:
        out.append(("deny_purge", True, False, "JetStream cannot lift deny_purge in place"))
    return out


class Plan:
    """What a module will do: ``action`` is one of create, update, recreate, delete, replay, none, blocked."""

    def __init__(self, action, payload=None, changes=None, message=None, blocked_fields=None):
        self.action = action
        self.payload = payload
        self.changes = changes or {}
        self.message = message
        self.blocked_fields = blocked_fields or []

    @property
    def changed(self):
        return self.action in ("create", "update", "recreate", "delete", "replay")

    def __repr__(self):
        return "Plan(%s, changes=%r)" % (self.action, sorted(self.changes))


def _strip_internal_metadata(config):
    meta = config.get("metadata")
    if isinstance(meta, dict):
        kept = dict((k, v) for k, v in meta.items() if not k.startswith("_nats."))
        if kept:
            config["metadata"] = kept
        else:
            config.pop("metadata", None)
    return config


def plan_stream(desired, current, state="present", recreate=False):
    """Compare ``desired`` (from build_stream_config) with ``current`` (server config or None).

    Returns a Plan. ``changes`` maps module option names to (before, after) in
    server units. A change the server cannot apply in place gives action
    ``blocked`` (message naming the field and suggesting ``recreate: true``)
    unless ``recreate`` is true, which gives ``recreate``.
    """
    name = desired["name"]
    if state == "absent":
        if current is None:
            return Plan("none", message="stream %s does not exist" % name)
        return Plan("delete", message="stream %s deleted" % name)
    if current is None:
        payload = dict(desired)
        if "max_age" in payload and "duplicate_window" not in payload and 0 < payload["max_age"] < \
                DEFAULT_DUPLICATE_WINDOW:
            payload["duplicate_window"] = payload["max_age"]
        after = normalise_stream_config(payload)
        changes = dict((STREAM_FIELD_OPTION[f], (None, after[f])) for f in STREAM_DEFAULTS)
        return Plan("create", payload=payload, changes=changes, message="stream %s created" % name)

    before = normalise_stream_config(current)
    merged = dict(current)
    merged.update(desired)
    target = normalise_stream_config(merged)
    # the server lowers the default duplicate window to a shorter max_age on creation; keep that rule on update
    if "duplicate_window" not in desired and target["max_age"] and target["duplicate_window"] > target["max_age"]:
        merged["duplicate_window"] = target["duplicate_window"] = target["max_age"]
    changes = {}
    for field in STREAM_DEFAULTS:
        if not _same(field, before[field], target[field]):
            changes[STREAM_FIELD_OPTION[field]] = (before[field], target[field])
    if not changes:
        return Plan("none", payload=merged, message="stream %s is up to date" % name)
    if target["allow_rollup_hdrs"] and target["deny_purge"]:
        return Plan("blocked", changes=changes, blocked_fields=["allow_rollup"],
                    message="allow_rollup: stream %s has deny_purge: true, and roll-ups need the purge permission; "
                            "set allow_rollup: false or deny_purge: false (lifting deny_purge needs recreate: true)"
                    % name)
    violations = _immutable_violations(before, target)
    if violations and not recreate:
        details = "; ".join("%s: %s (%r -> %r)" % (opt, why, b, a) for opt, b, a, why in violations)
        return Plan("blocked", changes=changes, blocked_fields=[v[0] for v in violations],
                    message="cannot update stream %s in place: %s. The stream was not changed. To apply it, %s; "
                            "otherwise keep %s as it is." % (name, details, RECREATE_HINT,
                                                             " and ".join(v[0] for v in violations)))
    if violations:
        payload = _strip_internal_metadata(dict(merged))
        payload.pop("created", None)
        return Plan("recreate", payload=payload, changes=changes, blocked_fields=[v[0] for v in violations],
                    message="stream %s deleted and created again (%s cannot change in place)"
                    % (name, ", ".join(v[0] for v in violations)))
    return Plan("update", payload=merged, changes=changes, message="stream %s updated in place" % name)


def render_stream(config):
    """Managed stream fields as module options, for diffs: durations as strings (``72h``), sizes in bytes."""
    if config is None:
        return {}
    n = normalise_stream_config(config)
    out = {"name": config.get("name")}
    for opt, field in STREAM_OPTION_FIELDS:
        value = n[field]
        if field in ("max_age", "duplicate_window"):
            value = format_duration(value)
        elif field == "subjects":
            value = list(value)
        out[opt] = value
    return out


def render_changes(changes):
    """``{option: (before, after)}`` in server units -> ``{option: {before, after}}`` in option units."""
    out = {}
    for opt, (before, after) in sorted(changes.items()):
        if opt in ("max_age", "duplicate_window", "ack_wait"):
            before, after = format_duration(before), format_duration(after)
        out[opt] = {"before": before, "after": after}
    return out


def describe_server_rejection(name, changes, description):
    """Message for an update the server refused (beyond the known immutable fields)."""
    fields = ", ".join(sorted(changes)) or "none"
    return ("JetStream refused the update of stream %s (changed fields: %s): %s. The stream was not changed. If the "
            "change cannot be applied in place, %s." % (name, fields, description, RECREATE_HINT))


# ---------------------------------------------------------------------------
# consumers
# ---------------------------------------------------------------------------

CONSUMER_OPTION_FIELDS = (
    ("description", "description"),
    ("filter_subject", "filter_subject"),
    ("deliver_policy", "deliver_policy"),
    ("start_sequence", "opt_start_seq"),
    ("start_time", "opt_start_time"),
    ("ack_policy", "ack_policy"),
    ("ack_wait", "ack_wait"),
    ("max_deliver", "max_deliver"),
    ("max_ack_pending", "max_ack_pending"),
)
CONSUMER_FIELD_OPTION = dict((f, o) for o, f in CONSUMER_OPTION_FIELDS)

CONSUMER_DEFAULTS = {
    "description": "",
    "filter_subject": "",
    "deliver_policy": "all",
    "opt_start_seq": 0,
    "opt_start_time": None,
    "ack_policy": "explicit",
    "ack_wait": 30 * SECOND,
    "max_deliver": -1,
    "max_ack_pending": 1000,
}
# Sent on creation when not given: JetStream's zero value for ack_policy is "none", the module's default is explicit.
CONSUMER_CREATE_DEFAULTS = {"deliver_policy": "all", "ack_policy": "explicit"}
CONSUMER_IMMUTABLE = ("deliver_policy", "opt_start_seq", "opt_start_time", "ack_policy")

CONSUMER_RECREATE_HINT = ("set recreate: true to delete the consumer and create it again (its delivery position "
                          "and pending acknowledgements are lost; delivery restarts according to deliver_policy), "
                          "or use replay_from_seq / replay_from_time to reposition it")


def build_consumer_config(params):
    """Validate the consumer options of ``params`` and build the desired durable pull consumer configuration.

    Returns (config, replay) where ``replay`` is None or
    ``{"deliver_policy": ..., "opt_start_seq"|"opt_start_time": ...}``.
    """
    stream = check_name(params.get("stream"), "stream", "stream")
    name = check_name(params.get("name"), "name", "consumer")
    cfg = {"durable_name": name, "name": name}
    if params.get("description") is not None:
        if not isinstance(params["description"], str):
            raise JetStreamConfigError("description: expected a string, got %r" % (params["description"],))
        cfg["description"] = params["description"]
    if params.get("filter_subject") is not None:
        if params["filter_subject"] == "":
            cfg["filter_subject"] = ""
        else:
            cfg["filter_subject"] = check_subject(params["filter_subject"], "filter_subject")
    policy = params.get("deliver_policy")
    start_seq = params.get("start_sequence")
    start_time = params.get("start_time")
    if policy is not None:
        cfg["deliver_policy"] = check_choice(policy, "deliver_policy", DELIVER_POLICY_CHOICES)
    if policy == "by_start_sequence":
        if start_seq is None:
            raise JetStreamConfigError("start_sequence: required with deliver_policy: by_start_sequence")
        cfg["opt_start_seq"] = parse_count(start_seq, "start_sequence", allow_unlimited=False, minimum=1)
    elif start_seq is not None:
        raise JetStreamConfigError("start_sequence: only used with deliver_policy: by_start_sequence (got "
                                   "deliver_policy %r)" % (policy,))
    if policy == "by_start_time":
        if start_time is None:
            raise JetStreamConfigError("start_time: required with deliver_policy: by_start_time")
        cfg["opt_start_time"] = parse_rfc3339(start_time, "start_time")[0]
    elif start_time is not None:
        raise JetStreamConfigError("start_time: only used with deliver_policy: by_start_time (got deliver_policy %r)"
                                   % (policy,))
    if params.get("ack_policy") is not None:
        cfg["ack_policy"] = check_choice(params["ack_policy"], "ack_policy", ACK_POLICY_CHOICES)
    if params.get("ack_wait") is not None:
        cfg["ack_wait"] = parse_duration(params["ack_wait"], "ack_wait", allow_zero=False)
    if params.get("max_deliver") is not None:
        cfg["max_deliver"] = parse_count(params["max_deliver"], "max_deliver")
    if params.get("max_ack_pending") is not None:
        cfg["max_ack_pending"] = parse_count(params["max_ack_pending"], "max_ack_pending")

    replay = None
    seq, at = params.get("replay_from_seq"), params.get("replay_from_time")
    if seq is not None and at is not None:
        raise JetStreamConfigError("replay_from_seq and replay_from_time are mutually exclusive: give one start point")
    if seq is not None:
        replay = {"deliver_policy": "by_start_sequence",
                  "opt_start_seq": parse_count(seq, "replay_from_seq", allow_unlimited=False, minimum=1)}
    elif at is not None:
        replay = {"deliver_policy": "by_start_time", "opt_start_time": parse_rfc3339(at, "replay_from_time")[0]}
    if replay is not None and (start_seq is not None or start_time is not None or policy is not None):
        raise JetStreamConfigError("deliver_policy: leave deliver_policy/start_sequence/start_time out with "
                                   "replay_from_seq or replay_from_time (the replay sets the start point)")
    if replay is not None and params.get("state", "present") == "absent":
        raise JetStreamConfigError("replay_from_seq/replay_from_time need state: present")
    if cfg.get("ack_policy") == "none" and cfg.get("max_deliver", -1) not in (-1,):
        raise JetStreamConfigError("max_deliver: redeliveries need acknowledgements; with ack_policy: none leave "
                                   "max_deliver out (or -1)")
    return stream, cfg, replay


def normalise_consumer_config(config):
    config = config or {}
    out = {}
    for field, default in CONSUMER_DEFAULTS.items():
        value = config.get(field)
        out[field] = default if value is None else value
    if out["max_deliver"] == 0:
        out["max_deliver"] = -1
    if out["opt_start_time"] is not None:
        out["opt_start_time"] = _time_ns(out["opt_start_time"])
    return out


def plan_consumer(desired, current, state="present", recreate=False, replay=None):
    """Plan for a durable pull consumer (``current`` is the server's consumer config or None)."""
    name = desired["durable_name"]
    if state == "absent":
        if current is None:
            return Plan("none", message="consumer %s does not exist" % name)
        return Plan("delete", message="consumer %s deleted" % name)
    if current is not None and current.get("deliver_subject"):
        return Plan("blocked", blocked_fields=["name"],
                    message="name: consumer %s is a push consumer (deliver_subject %s); this module manages durable "
                            "pull consumers. Delete it (state: absent) or choose another name."
                    % (name, current.get("deliver_subject")))
    base = dict(current) if current is not None else dict(CONSUMER_CREATE_DEFAULTS)
    base.update(desired)
    if replay is not None:
        base.pop("opt_start_seq", None)
        base.pop("opt_start_time", None)
        base.update(replay)
        before = normalise_consumer_config(current) if current is not None else None
        after = normalise_consumer_config(base)
        changes = dict((CONSUMER_FIELD_OPTION[f], (before[f] if before else None, after[f]))
                       for f in CONSUMER_DEFAULTS if before is None or before[f] != after[f])
        start = ("sequence %d" % replay["opt_start_seq"]) if "opt_start_seq" in replay \
            else ("time %s" % replay["opt_start_time"])
        verb = "deleted and created again" if current is not None else "created"
        return Plan("replay", payload=_strip_internal_metadata(base), changes=changes,
                    message="consumer %s %s to deliver again from stream %s" % (name, verb, start))
    if current is None:
        after = normalise_consumer_config(base)
        changes = dict((CONSUMER_FIELD_OPTION[f], (None, after[f])) for f in CONSUMER_DEFAULTS)
        return Plan("create", payload=base, changes=changes, message="consumer %s created" % name)
    before = normalise_consumer_config(current)
    after = normalise_consumer_config(base)
    changes = {}
    for field in CONSUMER_DEFAULTS:
        if before[field] != after[field]:
            changes[CONSUMER_FIELD_OPTION[field]] = (before[field], after[field])
    if not changes:
        return Plan("none", payload=base, message="consumer %s is up to date" % name)
    immutable = [f for f in CONSUMER_IMMUTABLE if CONSUMER_FIELD_OPTION[f] in changes]
    if immutable and not recreate:
        opts = [CONSUMER_FIELD_OPTION[f] for f in immutable]
        details = "; ".join("%s %r -> %r" % (CONSUMER_FIELD_OPTION[f], before[f], after[f]) for f in immutable)
        return Plan("blocked", changes=changes, blocked_fields=opts,
                    message="cannot update consumer %s in place: JetStream cannot change %s of an existing consumer "
                            "(%s). The consumer was not changed. To apply it, %s."
                            % (name, " or ".join(opts), details, CONSUMER_RECREATE_HINT))
    if immutable:
        return Plan("recreate", payload=_strip_internal_metadata(base), changes=changes,
                    blocked_fields=[CONSUMER_FIELD_OPTION[f] for f in immutable],
                    message="consumer %s deleted and created again" % name)
    return Plan("update", payload=base, changes=changes, message="consumer %s updated in place" % name)


def render_consumer(config):
    """Managed consumer fields as module options, for diffs."""
    if config is None:
        return {}
    n = normalise_consumer_config(config)
    out = {"name": config.get("durable_name") or config.get("name")}
    for opt, field in CONSUMER_OPTION_FIELDS:
        value = n[field]
        if field == "ack_wait":
            value = format_duration(value)
        elif field == "opt_start_time":
            value = config.get("opt_start_time")
        out[opt] = value
    return out


# ---------------------------------------------------------------------------
# returned values: durations in seconds (as nats-py's StreamConfig / ConsumerConfig)
# ---------------------------------------------------------------------------

STREAM_DURATION_FIELDS = ("max_age", "duplicate_window", "subject_delete_marker_ttl")
CONSUMER_DURATION_FIELDS = ("ack_wait", "idle_heartbeat", "inactive_threshold")


def ns_to_seconds(ns):
    """Nanoseconds -> seconds, an int when whole (259200000000000 -> 259200)."""
    if ns is None or isinstance(ns, bool) or not isinstance(ns, (int, float)):
        return ns
    if ns % SECOND == 0:
        return int(ns // SECOND)
    return ns / float(SECOND)


def stream_config_for_return(config):
    """A server stream configuration with its durations in seconds ({} for None)."""
    if not config:
        return {}
    out = dict(config)
    for field in STREAM_DURATION_FIELDS:
        if field in out:
            out[field] = ns_to_seconds(out[field])
    return out


def consumer_config_for_return(config):
    if not config:
        return {}
    out = dict(config)
    for field in CONSUMER_DURATION_FIELDS:
        if field in out:
            out[field] = ns_to_seconds(out[field])
    if isinstance(out.get("backoff"), list):
        out["backoff"] = [ns_to_seconds(v) for v in out["backoff"]]
    return out


def stream_info_for_return(info):
    """Stream info (config, state, created, ...) with the config's durations in seconds."""
    if not info:
        return {}
    out = dict(info)
    out["config"] = stream_config_for_return(info.get("config"))
    return out


def consumer_info_for_return(info):
    """Consumer info (config, num_pending, delivered, ...) with the config's durations in seconds."""
    if not info:
        return {}
    out = dict(info)
    out["config"] = consumer_config_for_return(info.get("config"))
    return out
