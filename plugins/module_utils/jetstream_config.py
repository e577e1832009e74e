# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""JetStream stream and consumer configuration: build, validate, compare, plan.

Plain Python (no nats-py): the modules validate every option here before they
connect, then compare the desired configuration with the server's and get a
plan (create, update in place, recreate, delete, replay, nothing, or blocked
with a message that names the field and how to proceed).

Configurations are kept in the JetStream API's own JSON shape (field names of
the server; durations in nanoseconds, sizes in bytes), so what is compared is
exactly what the server stores and returns. The option values (durations, sizes, counts, names, subjects,
times) are read by ``jetstream_values``; its names are also this module's (``__all__``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


from ansible_collections.stagegate.rollout.plugins.module_utils.durations import SIZE_UNITS
from ansible_collections.stagegate.rollout.plugins.module_utils.jetstream_values import (
    DAY, DURATION_HELP, DURATION_UNITS, HOUR, INT32_MAX, INT64_MAX, JetStreamConfigError, MINUTE, MS, NS, SECOND,
    SIZE_HELP, US, WEEK, _time_ns, check_bool, check_choice, check_name, check_subject,
    format_duration, parse_count, parse_duration, parse_rfc3339, parse_size)

STORAGE_CHOICES = ("file", "memory")
RETENTION_CHOICES = ("limits", "interest", "workqueue")
DISCARD_CHOICES = ("old", "new")
DELIVER_POLICY_CHOICES = ("all", "last", "new", "by_start_sequence", "by_start_time", "last_per_subject")
ACK_POLICY_CHOICES = ("explicit", "all", "none")
MAX_REPLICAS = 5

# JetStream's default duplicate window (the server lowers it to max_age when max_age is shorter).
DEFAULT_DUPLICATE_WINDOW = 2 * MINUTE


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


def plan_result(module, plan, before, after, render, **result):
    """The result of a module that applied (or, in check mode, would apply) ``plan``: changed, operation,
    changes and msg; in diff mode the ``before`` and ``after`` configurations, as ``render`` shows them."""
    result.update(changed=plan.changed, operation=plan.action, changes=render_changes(plan.changes),
                  msg=plan.message + (" (check mode)" if module.check_mode and plan.changed else ""))
    if module._diff:
        result["diff"] = dict(before=render(before and before.get("config")),
                              after=render(after.get("config")) if after else {})
    return result


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


def _config_for_return(config, duration_fields):
    """A server configuration with its ``duration_fields`` in seconds ({} for None)."""
    if not config:
        return {}
    out = dict(config)
    for field in duration_fields:
        if field in out:
            out[field] = ns_to_seconds(out[field])
    return out


def stream_config_for_return(config):
    """A server stream configuration with its durations in seconds ({} for None)."""
    return _config_for_return(config, STREAM_DURATION_FIELDS)


def consumer_config_for_return(config):
    """A server consumer configuration with its durations (and ``backoff``) in seconds ({} for None)."""
    out = _config_for_return(config, CONSUMER_DURATION_FIELDS)
    if isinstance(out.get("backoff"), list):
        out["backoff"] = [ns_to_seconds(v) for v in out["backoff"]]
    return out


def _info_for_return(info, config_for_return):
    if not info:
        return {}
    out = dict(info)
    out["config"] = config_for_return(info.get("config"))
    return out


def stream_info_for_return(info):
    """Stream info (config, state, created, ...) with the config's durations in seconds."""
    return _info_for_return(info, stream_config_for_return)


def consumer_info_for_return(info):
    """Consumer info (config, num_pending, delivered, ...) with the config's durations in seconds."""
    return _info_for_return(info, consumer_config_for_return)


__all__ = ["ACK_POLICY_CHOICES", "CONSUMER_CREATE_DEFAULTS", "CONSUMER_DEFAULTS", "CONSUMER_DURATION_FIELDS",
           "CONSUMER_FIELD_OPTION", "CONSUMER_IMMUTABLE", "CONSUMER_OPTION_FIELDS", "CONSUMER_RECREATE_HINT",
           "DEFAULT_DUPLICATE_WINDOW", "DELIVER_POLICY_CHOICES", "DISCARD_CHOICES", "MAX_REPLICAS", "Plan",
           "RECREATE_HINT", "RETENTION_CHOICES", "STORAGE_CHOICES", "STREAM_DEFAULTS", "STREAM_DURATION_FIELDS",
           "STREAM_FIELD_OPTION", "STREAM_OPTION_FIELDS", "build_consumer_config", "build_stream_config",
           "consumer_config_for_return", "consumer_info_for_return", "describe_server_rejection",
           "normalise_consumer_config", "normalise_stream_config", "ns_to_seconds", "plan_consumer",
           "plan_result", "plan_stream", "render_changes", "render_consumer", "render_stream", "stream_config_for_return",
           "stream_info_for_return", "DAY", "DURATION_HELP", "DURATION_UNITS", "HOUR", "INT32_MAX", "INT64_MAX",
           "JetStreamConfigError", "MINUTE", "MS", "NS", "SECOND", "SIZE_HELP", "SIZE_UNITS", "US", "WEEK",
           "check_bool", "check_choice", "check_name", "check_subject", "format_duration", "parse_count",
           "parse_duration", "parse_rfc3339", "parse_size"]
