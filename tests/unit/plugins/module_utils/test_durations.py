# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""durations: the Prometheus grammar (windows), the Go-style grammar (escalate_after) and their tokenizer."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.stagegate.rollout.plugins.module_utils.durations import (
    GO_UNITS, GO_UNITS_NS, PROMETHEUS_UNITS, go_duration, is_plain_seconds, is_prometheus_duration, parse_duration,
    parse_go_duration, parse_seconds, size_bytes, split_duration, unknown_size_unit, unknown_unit)


def test_split_duration_needs_the_whole_text_in_parts():
    assert split_duration("1h30m", PROMETHEUS_UNITS) == [("1", "h"), ("30", "m")]
    assert split_duration("250ms", PROMETHEUS_UNITS) == [("250", "ms")]       # ms, not m then s
    assert split_duration("1.5h", PROMETHEUS_UNITS) is None                  # whole numbers only
    assert split_duration("1.5h", GO_UNITS, decimals=True) == [("1.5", "h")]
    for bad in ("", "5", "5 m", "m5", "5mx", " 5m", None, 5):
        assert split_duration(bad, PROMETHEUS_UNITS) is None, bad


@pytest.mark.parametrize("text, seconds", [("60s", 60), ("5m", 300), ("1h30m", 5400), ("250ms", 0.25), ("1d", 86400),
                                           ("2w", 14 * 86400), ("1y", 365 * 86400), (" 5m ", 300)])
def test_prometheus_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["5 minutes", "1.5h", "0s", "", "5", 5, None, True, "-5m", "5M"])
def test_prometheus_duration_refusals_name_the_field(value):
    with pytest.raises(ValueError, match="my.window"):
        parse_duration(value, "my.window")


@pytest.mark.parametrize("text, unit", [("72x", "x"), ("1h30x", "x"), ("5hx", "x"), ("1h 30m", " "), ("1h-30m", "-"),
                                        ("1e400h", "e"), ("h", None), ("", None), ("1.2.3h", None), (None, None)])
def test_unknown_unit_is_the_one_where_the_valid_parts_end(text, unit):
    assert unknown_unit(text, GO_UNITS, decimals=True) == unit


def test_is_plain_seconds():
    assert is_plain_seconds("3600") and is_plain_seconds("1.5") and is_plain_seconds(".5")
    assert not is_plain_seconds("-1") and not is_plain_seconds("1h") and not is_plain_seconds("")


def test_is_prometheus_duration_takes_no_spaces():
    assert is_prometheus_duration("5m") and is_prometheus_duration("1h30m")
    assert not is_prometheus_duration(" 5m") and not is_prometheus_duration("5")


def test_parse_seconds_numbers_and_durations():
    assert parse_seconds(None, "t") is None
    assert parse_seconds(30, "t") == 30.0 and parse_seconds("2.5", "t") == 2.5 and parse_seconds("5m", "t") == 300
    assert parse_seconds(0, "t") == 0.0
    for bad in (-3, True, float("inf"), float("nan"), "soon", [1]):
        with pytest.raises(ValueError, match="timeout"):
            parse_seconds(bad, "timeout")


@pytest.mark.parametrize("value, seconds", [("24h", 86400), ("90m", 5400), ("1d12h", 129600), ("30s", 30),
                                            ("3600", 3600), ("1.5h", 5400), (".5h", 1800), ("500ms", 0.5),
                                            (u"10\u00b5s", 1e-5), ("0s", 0), (3600, 3600), (0.5, 0.5), ("1w", 604800)])
def test_go_durations(value, seconds):
    assert parse_go_duration(value, "escalate_after") == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["soon", "", "-1h", "1y", "24 h", "h", None, True, float("nan"), -1, "1h-5m"])
def test_go_duration_refusals_name_the_field_and_the_grammar(value):
    with pytest.raises(ValueError, match="escalate_after.*duration like 24h"):
        parse_go_duration(value, "escalate_after")


def test_go_duration_in_seconds_and_in_nanoseconds():
    assert GO_UNITS == dict((u, ns / 1e9) for u, ns in GO_UNITS_NS.items()) and GO_UNITS["ms"] == 0.001
    assert go_duration("1h30m") == 5400.0 and go_duration("90") == 90.0 and go_duration(".5") == 0.5
    assert go_duration("72h", GO_UNITS_NS) == 72 * 3600 * 10 ** 9 and go_duration("1.5us", GO_UNITS_NS) == 1500
    assert go_duration("1h30x") is None and go_duration("-1h") is None and go_duration("") is None


@pytest.mark.parametrize("text, count", [("4096", 4096), ("10GB", 10 ** 10), ("512 MiB", 512 * 2 ** 20),
                                         ("1.5g", 1.5e9), ("1.5KiB", 1536), ("0.5B", 0.5), (".5k", 500)])
def test_size_bytes(text, count):
    assert size_bytes(text) == count


@pytest.mark.parametrize("text, unit", [("10 gigs", "gigs"), ("1XB", "XB"), ("lots", None), ("-1", None),
                                        ("1e3", None), (None, None)])
def test_sizes_refused_and_their_unit(text, unit):
    assert size_bytes(text) is None
    assert unknown_size_unit(text) == unit
