# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""env_flags: a slot's env file read back and changed (deploy_hosts' reload action)."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.stagegate.rollout.plugins.filter.env_flags import FilterModule, env_flags
from ansible_collections.stagegate.rollout.plugins.module_utils.env_flags import EnvFlagsError, changed, parse

TEXT = "# written by feature_flags\n# phase: canary\n\nCODEX_EVENTS=rest\nA=1=2\nLIST=a,b\nCODEX_EVENTS=all\n"


def test_the_lines_read_back_as_strings_the_last_of_a_key_wins():
    assert parse(TEXT) == {"CODEX_EVENTS": "all", "A": "1=2", "LIST": "a,b"}
    assert parse("") == parse(None) == {}


def test_flags_set_and_taken_out():
    assert changed(TEXT, {"CODEX_EVENTS": "rest", "AFTER": 41}, ["A", "MISSING"]) == {
        "CODEX_EVENTS": "rest", "AFTER": 41, "LIST": "a,b"}
    assert FilterModule().filters()["env_flags"] is env_flags
    assert env_flags(TEXT, set={"X": True}) == dict(parse(TEXT), X=True)


@pytest.mark.parametrize("text, set_flags, unset, expected", [
    ("A=1\nnot a flag\n", None, None, "env file line 2: 'not a flag' is not KEY=value (accepted: KEY=value lines"),
    ("1A=x\n", None, None, "env file line 1: '1A=x' is not KEY=value"),
    ("A=1\n", ["A"], None, "set: ['A'] is not accepted (accepted: a mapping of flag name -> value)"),
    ("A=1\n", None, "A", "unset: 'A' is not accepted (accepted: a list of flag names)"),
    ("A=1\n", {"A": 2}, ["A"], "set and unset both name A (accepted: a flag in one of them)"),
])
def test_bad_input_is_refused_naming_what_is_accepted(text, set_flags, unset, expected):
    with pytest.raises(EnvFlagsError) as err:
        changed(text, set_flags, unset)
    assert str(err.value).startswith(expected)
    with pytest.raises(AnsibleFilterError, match="env_flags: "):
        env_flags(text, set=set_flags, unset=unset)
