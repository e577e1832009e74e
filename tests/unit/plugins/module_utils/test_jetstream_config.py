# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of module_utils/jetstream_config.py: parsers, validation, comparison and plans (no server)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.stagegate.rollout.plugins.module_utils.jetstream_config import (
    HOUR, MINUTE, SECOND, JetStreamConfigError, build_consumer_config, build_stream_config, format_duration,
    consumer_info_for_return, normalise_stream_config, ns_to_seconds, parse_count, parse_duration, parse_rfc3339, parse_size, plan_consumer, plan_stream,
    render_changes, render_stream, stream_config_for_return)

GB = 10 ** 9


# -- durations ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value,ns", [
    ("72h", 72 * HOUR), ("24h", 24 * HOUR), ("30m", 30 * MINUTE), ("1h30m", 90 * MINUTE), ("90s", 90 * SECOND),
    ("500ms", 500 * 10 ** 6), ("1.5h", 90 * MINUTE), ("7d", 168 * HOUR), ("1w", 168 * HOUR), ("2m30s", 150 * SECOND),
    ("0", 0), ("-1", 0), (0, 0), (-1, 0), (3600, HOUR), (0.5, SECOND // 2), ("3600", HOUR), (" 72h ", 72 * HOUR),
    ("10us", 10000), ("10ns", 10),
])
def test_parse_duration_accepts(value, ns):
    assert parse_duration(value, "max_age", unlimited=True) == ns


@pytest.mark.parametrize("value,words", [
    ("72x", ["max_age", "unknown unit 'x'"]),
    ("-5m", ["max_age", "negative"]),
    (-2, ["max_age", "negative"]),
    ("ten hours", ["max_age", "not a duration"]),
    ("", ["max_age", "not a duration"]),
    ("h", ["max_age", "not a duration"]),
    ("1h 30m", ["max_age"]),
    ("1h-30m", ["max_age"]),
    (True, ["max_age", "boolean"]),
    ([1], ["max_age", "list"]),
    (float("nan"), ["max_age", "finite"]),
    ("1e400h", ["max_age"]),
])
def test_parse_duration_rejects(value, words):
    with pytest.raises(JetStreamConfigError) as err:
        parse_duration(value, "max_age", unlimited=True)
    for word in words:
        assert word in str(err.value)


def test_duration_unlimited_only_where_allowed():
    with pytest.raises(JetStreamConfigError, match="duplicate_window.*negative"):
        parse_duration("-1", "duplicate_window")
    with pytest.raises(JetStreamConfigError, match="ack_wait.*zero"):
        parse_duration("0", "ack_wait", allow_zero=False)


@pytest.mark.parametrize("ns,text", [
    (0, "0"), (72 * HOUR, "72h"), (90 * MINUTE, "1h30m"), (120 * SECOND, "2m"), (1500 * 10 ** 6, "1s500ms"),
    (24 * HOUR + 1, "24h1ns"),
])
def test_format_duration(ns, text):
    assert format_duration(ns) == text
    assert parse_duration(text, "x", unlimited=True) == ns


# -- sizes and counts -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value,size", [
    ("10GB", 10 * GB), ("10 GB", 10 * GB), ("10gb", 10 * GB), ("512MiB", 512 * 2 ** 20), ("1.5G", 1500000000),
    ("1KiB", 1024), ("1KB", 1000), ("4096", 4096), (4096, 4096), (-1, -1), ("-1", -1), (0, -1), ("2TiB", 2 * 2 ** 40),
    ("100B", 100), (10.0, 10),
])
def test_parse_size_accepts(value, size):
    assert parse_size(value, "max_bytes") == size


@pytest.mark.parametrize("value,words", [
    ("10XB", ["max_bytes", "unknown unit 'XB'"]),
    ("10 bytes", ["max_bytes", "unknown unit"]),
    (-2, ["max_bytes", "negative"]),
    ("-10GB", ["max_bytes", "negative"]),
    ("1.5B", ["max_bytes", "whole number"]),
    ("lots", ["max_bytes", "not a size"]),
    ("", ["max_bytes", "not a size"]),
    (False, ["max_bytes", "boolean"]),
    (2.5, ["max_bytes", "whole number"]),
    ({"GB": 10}, ["max_bytes", "dict"]),
    ("100000PB", ["max_bytes", "maximum"]),
])
def test_parse_size_rejects(value, words):
    with pytest.raises(JetStreamConfigError) as err:
        parse_size(value, "max_bytes")
    for word in words:
        assert word in str(err.value)


def test_max_msg_size_is_int32():
    assert parse_size("1MiB", "max_msg_size", maximum=2 ** 31 - 1) == 2 ** 20
    with pytest.raises(JetStreamConfigError, match="max_msg_size.*maximum"):
        parse_size("3GiB", "max_msg_size", maximum=2 ** 31 - 1)


@pytest.mark.parametrize("value,count", [(1000000, 1000000), ("1000000", 1000000), ("1_000_000", 1000000),
                                         (-1, -1), (0, -1), ("-1", -1), (5.0, 5)])
def test_parse_count_accepts(value, count):
    assert parse_count(value, "max_msgs") == count


@pytest.mark.parametrize("value", [-7, "-2", "1e6", "many", 1.5, True, None, [3]])
def test_parse_count_rejects(value):
    with pytest.raises(JetStreamConfigError, match="max_msgs"):
        parse_count(value, "max_msgs")


# -- timestamps ---------------------------------------------------------------------------------------------------

def test_rfc3339_keeps_nanoseconds():
    text, ns = parse_rfc3339("2026-11-25T23:37:52.899216005Z", "replay_from_time")
    assert text == "2026-11-25T23:37:52.899216005Z" and ns % SECOND == 899216005
    ns2 = parse_rfc3339("2026-11-26T00:37:52.899216005+01:00", "replay_from_time")[1]
    assert ns2 == ns


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-01-01",
                                   "2026-01-01T25:00:00Z", "2026-01-01T00:00:00", 1700000000])
def test_rfc3339_rejects(value):
    with pytest.raises(JetStreamConfigError, match="replay_from_time"):
        parse_rfc3339(value, "replay_from_time")


# -- stream options -------------------------------------------------------------------------------------------------

BASE = {"name": "EVENTS", "subjects": ["events.>"]}


def test_build_stream_config_full():
    cfg = build_stream_config(dict(BASE, storage="file", replicas=1, retention="limits", max_age="72h", max_msgs=-1,
                                   max_bytes=-1, max_msg_size="1MiB", discard="old", duplicate_window="2m",
                                   allow_rollup=True, deny_delete=False, deny_purge=False, description="d"))
    assert cfg == {"name": "EVENTS", "subjects": ["events.>"], "storage": "file", "num_replicas": 1,
                   "retention": "limits", "max_age": 72 * HOUR, "max_msgs": -1, "max_bytes": -1,
                   "max_msg_size": 2 ** 20, "discard": "old", "duplicate_window": 2 * MINUTE,
                   "allow_rollup_hdrs": True, "deny_delete": False, "deny_purge": False, "description": "d"}


def test_unset_options_are_not_managed():
    assert build_stream_config(dict(BASE, max_age=None, storage=None)) == BASE


BAD_STREAMS = [
    (dict(max_age="72x"), "max_age"),
    (dict(max_age="-3h"), "max_age"),
    (dict(max_bytes="10XB"), "max_bytes"),
    (dict(max_bytes=-5), "max_bytes"),
    (dict(max_msgs=-3), "max_msgs"),
    (dict(max_msg_size="huge"), "max_msg_size"),
    (dict(retention="forever"), "retention"),
    (dict(discard="oldest"), "discard"),
    (dict(storage="ssd"), "storage"),
    (dict(replicas=0), "replicas"),
    (dict(replicas=7), "replicas"),
    (dict(subjects=[]), "subjects"),
    (dict(subjects=["events..x"]), "subjects"),
    (dict(subjects=["events.>.x"]), "subjects"),
    (dict(subjects=["ev*nts"]), "subjects"),
    (dict(subjects=["a b"]), "subjects"),
    (dict(subjects=["a", "a"]), "subjects"),
    (dict(name="bad.name"), "name"),
    (dict(name=""), "name"),
    (dict(name="a b"), "name"),
    (dict(duplicate_window="2h", max_age="1h"), "duplicate_window"),
    (dict(duplicate_window="-1"), "duplicate_window"),
    (dict(allow_rollup=True, deny_purge=True), "allow_rollup"),
    (dict(deny_delete="yes"), "deny_delete"),
    (dict(max_msg_size="2MB", max_bytes="1MB"), "max_msg_size"),
]


@pytest.mark.parametrize("options,field", BAD_STREAMS)
def test_build_stream_config_rejects(options, field):
    with pytest.raises(JetStreamConfigError) as err:
        build_stream_config(dict(BASE, **options))
    assert str(err.value).startswith(field) or field in str(err.value)


def test_at_least_ten_bad_stream_inputs():
    assert len(BAD_STREAMS) >= 10


# -- stream plans ---------------------------------------------------------------------------------------------------

def server(**overrides):
    """A stream config as nats-server 2.10+ returns it."""
    cfg = {"name": "EVENTS", "subjects": ["events.>"], "retention": "limits", "max_consumers": -1, "max_msgs": -1,
           "max_bytes": -1, "max_age": 0, "max_msgs_per_subject": -1, "max_msg_size": -1, "discard": "old",
           "storage": "file", "num_replicas": 1, "duplicate_window": 120 * SECOND, "compression": "none",
           "allow_direct": False, "mirror_direct": False, "sealed": False, "deny_delete": False, "deny_purge": False,
           "allow_rollup_hdrs": False, "consumer_limits": {},
           "metadata": {"_nats.level": "1", "_nats.ver": "2.15.1", "team": "x"}}
    cfg.update(overrides)
    return cfg


def test_plan_create_and_absent():
    desired = build_stream_config(dict(BASE, max_age="72h"))
    plan = plan_stream(desired, None)
    assert plan.action == "create" and plan.changed and plan.payload == desired
    assert plan.changes["max_age"] == (None, 72 * HOUR)
    assert plan_stream({"name": "EVENTS"}, None, state="absent").action == "none"
    assert plan_stream({"name": "EVENTS"}, server(), state="absent").action == "delete"


def test_plan_create_short_max_age_lowers_duplicate_window():
    plan = plan_stream(build_stream_config(dict(BASE, max_age="30s")), None)
    assert plan.payload["duplicate_window"] == 30 * SECOND


def test_plan_idempotent_with_server_defaults():
    desired = build_stream_config(dict(BASE, max_age="0", max_msgs=-1, max_bytes=-1, storage="file", replicas=1,
                                       discard="old", description=""))
    plan = plan_stream(desired, server())
    assert plan.action == "none" and not plan.changed


def test_plan_subjects_order_does_not_matter():
    desired = build_stream_config(dict(BASE, subjects=["b", "a"]))
    assert plan_stream(desired, server(subjects=["a", "b"])).action == "none"


def test_plan_update_retention_timeline():
    during = server(max_age=72 * HOUR)
    desired = build_stream_config(dict(BASE, max_age="24h", max_msgs=1000000, max_bytes="10GB"))
    plan = plan_stream(desired, during)
    assert plan.action == "update"
    assert plan.changes == {"max_age": (72 * HOUR, 24 * HOUR), "max_msgs": (-1, 1000000),
                            "max_bytes": (-1, 10 * GB)}
    # unmanaged fields of the server are sent back unchanged
    assert plan.payload["max_consumers"] == -1 and plan.payload["metadata"]["team"] == "x"
    assert render_changes(plan.changes)["max_age"] == {"before": "72h", "after": "24h"}


def test_plan_update_lowers_duplicate_window_to_short_max_age():
    plan = plan_stream(build_stream_config(dict(BASE, max_age="1m")), server())
    assert plan.action == "update" and plan.payload["duplicate_window"] == MINUTE
    assert plan.changes["duplicate_window"] == (120 * SECOND, MINUTE)


@pytest.mark.parametrize("current,options,field", [
    (server(), dict(storage="memory"), "storage"),
    (server(), dict(retention="workqueue"), "retention"),
    (server(retention="workqueue"), dict(retention="limits"), "retention"),
    (server(deny_delete=True), dict(deny_delete=False), "deny_delete"),
    (server(deny_purge=True), dict(deny_purge=False), "deny_purge"),
])
def test_plan_blocks_in_place_impossible_changes(current, options, field):
    desired = build_stream_config(dict(BASE, **options))
    plan = plan_stream(desired, current)
    assert plan.action == "blocked" and not plan.changed
    assert plan.blocked_fields == [field]
    assert field in plan.message and "recreate: true" in plan.message and "not changed" in plan.message
    recreate = plan_stream(desired, current, recreate=True)
    assert recreate.action == "recreate" and recreate.changed
    assert not any(k.startswith("_nats.") for k in recreate.payload.get("metadata", {}))


def test_plan_allows_interest_limits_switch_in_place():
    assert plan_stream(build_stream_config(dict(BASE, retention="interest")), server()).action == "update"


def test_plan_rollup_with_existing_deny_purge():
    plan = plan_stream(build_stream_config(dict(BASE, allow_rollup=True)), server(deny_purge=True))
    assert plan.action == "blocked" and "allow_rollup" in plan.message


def test_normalise_and_render():
    n = normalise_stream_config({"name": "X", "max_bytes": 0, "max_age": -5})
    assert n["max_bytes"] == -1 and n["max_age"] == 0 and n["storage"] == "file"
    view = render_stream(server(max_age=24 * HOUR, allow_rollup_hdrs=True))
    assert view["max_age"] == "24h" and view["allow_rollup"] is True and view["replicas"] == 1
    assert view["duplicate_window"] == "2m"
    assert render_stream(None) == {}


# -- consumers ------------------------------------------------------------------------------------------------------

CBASE = {"stream": "EVENTS", "name": "processor", "state": "present"}


def consumer_server(**overrides):
    cfg = {"durable_name": "processor", "name": "processor", "deliver_policy": "all", "ack_policy": "explicit",
           "ack_wait": 30 * SECOND, "max_deliver": -1, "filter_subject": "events.>", "replay_policy": "instant",
           "max_waiting": 512, "max_ack_pending": 1000, "num_replicas": 0, "metadata": {"_nats.level": "1"}}
    cfg.update(overrides)
    return cfg


def test_build_consumer_config():
    stream, cfg, replay = build_consumer_config(dict(CBASE, filter_subject="events.>", ack_wait="1m", max_deliver=5))
    assert stream == "EVENTS" and replay is None
    assert cfg == {"durable_name": "processor", "name": "processor", "filter_subject": "events.>",
                   "ack_wait": MINUTE, "max_deliver": 5}
    replay = build_consumer_config(dict(CBASE, replay_from_seq=40))[2]
    assert replay == {"deliver_policy": "by_start_sequence", "opt_start_seq": 40}
    replay = build_consumer_config(dict(CBASE, replay_from_time="2026-01-01T00:00:00.000000040Z"))[2]
    assert replay == {"deliver_policy": "by_start_time", "opt_start_time": "2026-01-01T00:00:00.000000040Z"}


BAD_CONSUMERS = [
    (dict(name="a.b"), "name"),
    (dict(stream=""), "stream"),
    (dict(deliver_policy="sometimes"), "deliver_policy"),
    (dict(deliver_policy="by_start_sequence"), "start_sequence"),
    (dict(deliver_policy="by_start_time"), "start_time"),
    (dict(deliver_policy="all", start_sequence=3), "start_sequence"),
    (dict(deliver_policy="by_start_time", start_time="noon"), "start_time"),
    (dict(ack_policy="maybe"), "ack_policy"),
    (dict(ack_wait="0"), "ack_wait"),
    (dict(ack_wait="soon"), "ack_wait"),
    (dict(max_deliver=-4), "max_deliver"),
    (dict(filter_subject="events..x"), "filter_subject"),
    (dict(replay_from_seq=0), "replay_from_seq"),
    (dict(replay_from_time="yesterday"), "replay_from_time"),
    (dict(replay_from_seq=3, replay_from_time="2026-01-01T00:00:00Z"), "replay_from_seq"),
    (dict(replay_from_seq=3, deliver_policy="all"), "deliver_policy"),
    (dict(replay_from_seq=3, state="absent"), "replay_from_seq"),
    (dict(ack_policy="none", max_deliver=3), "max_deliver"),
]


@pytest.mark.parametrize("options,field", BAD_CONSUMERS)
def test_build_consumer_config_rejects(options, field):
    with pytest.raises(JetStreamConfigError) as err:
        build_consumer_config(dict(CBASE, **options))
    assert field in str(err.value)


def test_plan_consumer_create_defaults_to_explicit_ack():
    cfg = build_consumer_config(CBASE)[1]
    plan = plan_consumer(cfg, None)
    assert plan.action == "create"
    assert plan.payload["ack_policy"] == "explicit" and plan.payload["deliver_policy"] == "all"


def test_plan_consumer_idempotent_update_and_blocked():
    cfg = build_consumer_config(dict(CBASE, filter_subject="events.>", ack_wait="30s"))[1]
    assert plan_consumer(cfg, consumer_server()).action == "none"
    cfg = build_consumer_config(dict(CBASE, ack_wait="1m", max_deliver=3))[1]
    plan = plan_consumer(cfg, consumer_server())
    assert plan.action == "update" and sorted(plan.changes) == ["ack_wait", "max_deliver"]
    cfg = build_consumer_config(dict(CBASE, deliver_policy="new"))[1]
    plan = plan_consumer(cfg, consumer_server())
    assert plan.action == "blocked" and "deliver_policy" in plan.message and "recreate: true" in plan.message
    assert plan_consumer(cfg, consumer_server(), recreate=True).action == "recreate"
    cfg = build_consumer_config(dict(CBASE, ack_policy="all"))[1]
    assert "ack_policy" in plan_consumer(cfg, consumer_server()).message


def test_plan_consumer_after_replay_still_satisfies_declaration():
    cfg = build_consumer_config(dict(CBASE, filter_subject="events.>"))[1]
    replayed = consumer_server(deliver_policy="by_start_sequence", opt_start_seq=40)
    assert plan_consumer(cfg, replayed).action == "none"


def test_plan_consumer_replay():
    cfg, replay = build_consumer_config(dict(CBASE, replay_from_seq=40))[1:]
    current = consumer_server(deliver_policy="by_start_time", opt_start_time="2026-01-01T00:00:00Z")
    plan = plan_consumer(cfg, current, replay=replay)
    assert plan.action == "replay" and plan.changed
    assert plan.payload["deliver_policy"] == "by_start_sequence" and plan.payload["opt_start_seq"] == 40
    assert "opt_start_time" not in plan.payload
    assert plan.payload["filter_subject"] == "events.>" and plan.payload["ack_policy"] == "explicit"
    assert "metadata" not in plan.payload
    # replay of a consumer that does not exist yet creates it at the start point
    plan = plan_consumer(cfg, None, replay=replay)
    assert plan.action == "replay" and plan.payload["opt_start_seq"] == 40


def test_plan_consumer_refuses_push_consumers():
    cfg = build_consumer_config(CBASE)[1]
    plan = plan_consumer(cfg, consumer_server(deliver_subject="push.inbox"))
    assert plan.action == "blocked" and "push consumer" in plan.message


def test_returned_durations_are_seconds():
    assert ns_to_seconds(72 * HOUR) == 259200 and isinstance(ns_to_seconds(72 * HOUR), int)
    assert ns_to_seconds(1500 * 10 ** 6) == 1.5 and ns_to_seconds(None) is None
    cfg = stream_config_for_return(server(max_age=72 * HOUR))
    assert cfg["max_age"] == 259200 and cfg["duplicate_window"] == 120 and cfg["max_msgs"] == -1
    assert stream_config_for_return(None) == {}
    info = consumer_info_for_return({"config": consumer_server(backoff=[SECOND, 2 * SECOND]), "num_pending": 61})
    assert info["config"]["ack_wait"] == 30 and info["config"]["backoff"] == [1, 2] and info["num_pending"] == 61
    assert consumer_info_for_return(None) == {}
