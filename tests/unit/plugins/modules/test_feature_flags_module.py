# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The feature_flags module in-process: update=true changes an existing env file in one run (read, change,
validate, write), refuses what it cannot change before writing anything."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.stagegate.rollout.plugins.modules import feature_flags
from tests.unit.module_run import run_module_main

SCHEMA = {"PUBLISH": {"type": "bool", "default": True}, "CONSUME": {"type": "bool", "default": True},
          "UNTIL": {"type": "int", "default": 0}, "REPOS": {"type": "list", "default": []}}


def run(args, capsys, check=False):
    return run_module_main(feature_flags, dict({"schema": SCHEMA}, **args), capsys, check=check)[1]


def write(tmp_path, text):
    path = tmp_path / "service.env"
    path.write_text(text)
    return str(path)


def test_update_keeps_the_file_s_flags_sets_the_given_and_takes_out_the_unset(tmp_path, capsys):
    path = write(tmp_path, "# written by feature_flags\nPUBLISH=false\nREPOS=a/b,c/d\nUNTIL=42\n")
    res = run({"path": path, "update": True, "flags": {"CONSUME": False}, "unset": ["UNTIL"]}, capsys)
    assert res["changed"] is True, res
    assert res["flags"] == {"PUBLISH": False, "CONSUME": False, "UNTIL": 0, "REPOS": ["a/b", "c/d"]}, res
    text = open(path).read()
    assert "PUBLISH=false" in text and "CONSUME=false" in text and "UNTIL=0" in text and "REPOS=a/b,c/d" in text
    # the same change again changes nothing
    assert run({"path": path, "update": True, "flags": {"CONSUME": False}, "unset": ["UNTIL"]}, capsys)["changed"] \
        is False


def test_update_in_check_mode_reports_the_change_and_writes_nothing(tmp_path, capsys):
    path = write(tmp_path, "PUBLISH=true\n")
    res = run({"path": path, "update": True, "flags": {"CONSUME": False}}, capsys, check=True)
    assert res["changed"] is True and res["flags"]["CONSUME"] is False, res
    assert open(path).read() == "PUBLISH=true\n"


def test_update_refuses_before_writing(tmp_path, capsys):
    path = write(tmp_path, "PUBLISH=true\nnot a flag line\n")
    res = run({"path": path, "update": True, "flags": {"CONSUME": False}}, capsys)
    assert res["failed"] and "line 2" in res["msg"] and open(path).read() == "PUBLISH=true\nnot a flag line\n", res
    res = run({"path": str(tmp_path / "missing.env"), "update": True}, capsys)
    assert res["failed"] and "does not exist" in res["msg"], res
    good = write(tmp_path, "PUBLISH=true\n")
    res = run({"path": good, "update": True, "flags": {"CONSUME": "maybe"}}, capsys)
    assert res["failed"] and "CONSUME" in res["msg"] and open(good).read() == "PUBLISH=true\n", res
    res = run({"path": good, "update": True, "flags": {"UNTIL": 1}, "unset": ["UNTIL"]}, capsys)
    assert res["failed"] and "set and unset both name UNTIL" in res["msg"], res
    res = run({"path": good, "unset": ["UNTIL"]}, capsys)
    assert res["failed"] and "unset is given without update=true" in res["msg"], res
    res = run({"update": True}, capsys)
    assert res["failed"] and "path" in res["msg"], res
