# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

import pytest

from ansible_collections.stagegate.rollout.plugins.module_utils.release_window import (
    WindowError, check_spec, evaluate)
from tests.unit.module_run import run_module_main

UTC = datetime.timezone.utc
BERLIN_OFFICE = {"timezone": "Europe/Berlin",
                 "windows": [{"days": ["mon", "tue", "wed", "thu"], "start": "09:00", "end": "16:00"},
                             {"days": ["friday"], "start": "09:00", "end": "12:00"}],
                 "freezes": [{"start": "2026-12-21", "end": "2027-01-03", "reason": "year-end freeze"}]}


def at(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.parametrize("moment, is_open, next_open", [
    ("2026-12-02T08:30:00Z", True, None),                       # Wednesday 09:30 in Berlin (UTC+1)
    ("2026-12-02T07:59:00Z", False, "2026-12-02T08:00:00Z"),    # 08:59 Berlin: opens at 09:00
    ("2026-12-02T15:00:00Z", False, "2026-12-03T08:00:00Z"),    # 16:00 Berlin: the end is not inside
    ("2026-12-04T11:30:00Z", False, "2026-12-07T08:00:00Z"),    # Friday 12:30: next Monday
    ("2026-12-05T10:00:00Z", False, "2026-12-07T08:00:00Z"),    # Saturday
    ("2026-12-22T10:00:00Z", False, "2027-01-04T08:00:00Z"),    # frozen; 3 January (a Sunday) is frozen all day
    ("2026-06-03T07:30:00Z", True, None),                       # summer time: 09:30 Berlin is 07:30 UTC
])
def test_windows_and_freezes_in_the_spec_s_time_zone(moment, is_open, next_open):
    res = evaluate(check_spec(BERLIN_OFFICE), at(moment))
    assert res["open"] is is_open, res
    assert res["next_open"] == next_open, res
    if not is_open:
        assert "next open %s" % next_open in res["reason"]


def test_a_freeze_names_its_reason_and_beats_any_window():
    res = evaluate(check_spec(BERLIN_OFFICE), at("2026-12-22T10:00:00Z"))
    assert res["freeze"]["reason"] == "year-end freeze" and res["freeze"]["end"] == "2027-01-03T23:00:00Z"
    assert res["reason"].startswith("change freeze until 2027-01-03T23:00:00Z: year-end freeze")
    res = evaluate(check_spec(BERLIN_OFFICE), at("2026-12-02T08:30:00Z"))
    assert res["window"] == "mon,tue,wed,thu 09:00-16:00" and "inside the release window" in res["reason"]


def test_no_windows_means_any_time_but_a_freeze():
    spec = check_spec({"freezes": [{"start": "2026-12-02T18:00:00Z", "end": "2026-12-02T20:00:00Z",
                                    "reason": "database migration"}]})
    assert evaluate(spec, at("2026-12-02T17:59:59Z"))["open"]
    res = evaluate(spec, at("2026-12-02T18:00:00Z"))
    assert not res["open"] and res["next_open"] == "2026-12-02T20:00:00Z"
    assert evaluate(check_spec(None), at("2026-12-02T18:00:00Z"))["open"]


def test_a_window_past_midnight_and_one_to_the_end_of_the_day():
    spec = check_spec({"windows": [{"days": ["sat"], "start": "22:00", "end": "02:00"},
                                   {"days": ["sun"], "start": "20:00", "end": "24:00"}]})
    assert evaluate(spec, at("2026-12-05T23:00:00Z"))["open"]        # Saturday 23:00
    assert evaluate(spec, at("2026-12-06T01:59:00Z"))["open"]        # Sunday 01:59, from Saturday's window
    assert not evaluate(spec, at("2026-12-06T02:00:00Z"))["open"]
    assert evaluate(spec, at("2026-12-06T23:59:00Z"))["open"]
    assert evaluate(spec, at("2026-12-06T02:00:00Z"))["next_open"] == "2026-12-06T20:00:00Z"


@pytest.mark.parametrize("spec, words", [
    ("weekdays", ["rollout_release_windows must be a dict"]),
    ({"timezone": "Mars/Olympus"}, ["rollout_release_windows.timezone", "'Mars/Olympus'", "IANA"]),
    ({"windows": [{"days": ["mon"], "start": "9:00", "end": "17:00"}]},
     ["rollout_release_windows.windows[0].start", "'9:00'", "HH:MM"]),
    ({"windows": [{"days": ["mon"], "start": 900, "end": "17:00"}]},
     ["windows[0].start", "900", "quote it"]),
    ({"windows": [{"days": ["moon"], "start": "09:00", "end": "17:00"}]},
     ["windows[0].days", "'moon'", "mon, tue"]),
    ({"windows": [{"days": ["mon"], "start": "24:00", "end": "17:00"}]}, ["windows[0].start", "end of a day"]),
    ({"windows": [{"day": ["mon"], "start": "09:00", "end": "17:00"}]}, ["windows[0]", "unknown keys day"]),
    ({"freezes": [{"start": "2026-12-24", "reason": "x"}]}, ["freezes[0].end is required"]),
    ({"freezes": [{"start": "2026-12-24", "end": "2026-12-20"}]}, ["freezes[0]", "not after start"]),
    ({"freezes": [{"start": "Christmas", "end": "2026-12-26"}]}, ["freezes[0].start", "'Christmas'", "2026-12-21"]),
    ({"holidays": []}, ["unknown keys holidays", "timezone, windows, freezes"]),
])
def test_bad_specs_are_named(spec, words):
    with pytest.raises(WindowError) as err:
        check_spec(spec)
    for w in words:
        assert w in str(err.value), str(err.value)


def run_module(args, capsys):
    from ansible_collections.stagegate.rollout.plugins.modules import release_window as mod
    return run_module_main(mod, args, capsys)[1]


def test_module_fails_when_closed_unless_a_reason_is_given(capsys):
    out = run_module({"windows": BERLIN_OFFICE, "now": "2026-12-22T10:00:00Z"}, capsys)
    assert out["failed"] and "no change may happen now: change freeze until" in out["msg"]
    assert "override_reason" in out["msg"] and out["next_open"] == "2027-01-04T08:00:00Z"
    out = run_module({"windows": BERLIN_OFFICE, "now": "2026-12-22T10:00:00Z", "override_reason": "  "}, capsys)
    assert out["failed"]
    out = run_module({"windows": BERLIN_OFFICE, "now": "2026-12-22T10:00:00Z", "override_reason": "INC-4711"}, capsys)
    assert not out.get("failed") and out["overridden"] and not out["open"] and not out["changed"]
    out = run_module({"windows": BERLIN_OFFICE, "now": "2026-12-02T08:30:00Z"}, capsys)
    assert out["open"] and not out["overridden"]
    out = run_module({"windows": {"timezone": "Nowhere/City"}}, capsys)
    assert out["failed"] and out["msg"].startswith("windows.timezone: 'Nowhere/City'")
    out = run_module({"windows": BERLIN_OFFICE, "now": "tomorrow"}, capsys)
    assert out["failed"] and "now: 'tomorrow'" in out["msg"]
