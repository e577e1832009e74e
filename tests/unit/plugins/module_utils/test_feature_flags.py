# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Feature flags: schema, types, phases, requirements, rendering, atomic write."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib

import pytest
import yaml

from ansible_collections.stagegate.rollout.plugins.module_utils.feature_flags import (
    FlagError, checksum, render_env, render_helm, resolve, validate_schema)

# The flag timeline of zero-drama-phased-rollout.md
SCHEMA = {
    "CODEX_PUBLISH_ENABLED": {"type": "bool", "default": False},
    "CODEX_PUBLISH_PORTAL": {"type": "enum", "choices": ["build-only", "external"], "default": "build-only",
                             "min_phase": "canary"},
    "CODEX_REPO_INCLUDE_LIST": {"type": "list", "default": [], "pattern": r"^[\w.-]+/[\w.-]+$"},
    "CODEX_EMBEDDINGS_ENABLED": {"type": "bool", "default": False, "min_phase": "production"},
    "CODEX_OWNERS_ENABLED": {"type": "bool", "default": False, "min_phase": "production"},
    "CODEX_GRAPH_API_ENABLED": {"type": "bool", "default": False, "min_phase": "advanced",
                                "requires": ["CODEX_PUBLISH_ENABLED"]},
    "CODEX_GRAPH_API_PORT": {"type": "int", "default": 8002, "min": 1, "max": 65535},
    "CODEX_CORS_ORIGIN": {"type": "str", "default": "", "description": "Graph API CORS origin"},
}


def test_defaults_fill_in_and_types_are_kept():
    flags, forced = resolve(SCHEMA, {}, phase="staging")
    assert forced == []
    assert flags == {"CODEX_PUBLISH_ENABLED": False, "CODEX_PUBLISH_PORTAL": "build-only",
                     "CODEX_REPO_INCLUDE_LIST": [], "CODEX_EMBEDDINGS_ENABLED": False,
                     "CODEX_OWNERS_ENABLED": False, "CODEX_GRAPH_API_ENABLED": False,
                     "CODEX_GRAPH_API_PORT": 8002, "CODEX_CORS_ORIGIN": ""}


def test_string_forms_from_extra_vars_are_accepted():
    flags, dummy = resolve(SCHEMA, {"CODEX_PUBLISH_ENABLED": "True", "CODEX_GRAPH_API_PORT": "9000",
                                    "CODEX_REPO_INCLUDE_LIST": "org/a, org/b"}, phase="canary")
    assert flags["CODEX_PUBLISH_ENABLED"] is True
    assert flags["CODEX_GRAPH_API_PORT"] == 9000
    assert flags["CODEX_REPO_INCLUDE_LIST"] == ["org/a", "org/b"]


def test_timeline_phases():
    canary = {"CODEX_PUBLISH_ENABLED": True, "CODEX_PUBLISH_PORTAL": "external",
              "CODEX_REPO_INCLUDE_LIST": ["org/a", "org/b"]}
    resolve(SCHEMA, canary, phase="canary")
    production = dict(canary, CODEX_REPO_INCLUDE_LIST=[], CODEX_EMBEDDINGS_ENABLED=True, CODEX_OWNERS_ENABLED=True)
    resolve(SCHEMA, production, phase="production")
    advanced = dict(production, CODEX_GRAPH_API_ENABLED=True, CODEX_CORS_ORIGIN="https://portal.example.com")
    resolve(SCHEMA, advanced, phase="advanced")


def test_graph_api_before_advanced_needs_force():
    flags = {"CODEX_PUBLISH_ENABLED": True, "CODEX_GRAPH_API_ENABLED": True}
    with pytest.raises(FlagError, match="flags.CODEX_GRAPH_API_ENABLED may not be on before the advanced phase "
                                        r"\(this is production\)"):
        resolve(SCHEMA, flags, phase="production")
    resolved, forced = resolve(SCHEMA, flags, phase="production", force=True)
    assert forced == ["CODEX_GRAPH_API_ENABLED"] and resolved["CODEX_GRAPH_API_ENABLED"] is True


def test_every_problem_is_reported_together():
    with pytest.raises(FlagError) as err:
        resolve(SCHEMA, {"CODEX_NOPE": 1, "CODEX_ALSO_NOPE": 2, "CODEX_PUBLISH_ENABLED": "maybe"}, phase="canary")
    assert len(err.value.problems) == 3
    assert "flags.CODEX_ALSO_NOPE: unknown flag" in err.value.problems[0]
    assert "flags.CODEX_NOPE: unknown flag" in err.value.problems[1]
    assert "CODEX_PUBLISH_ENABLED" in err.value.problems[2]


@pytest.mark.parametrize("flags, phase, message", [
    ({"CODEX_PUBLISH_ENABELD": True}, "canary", r"flags.CODEX_PUBLISH_ENABELD: unknown flag \(declared: "),
    ({"CODEX_PUBLISH_ENABLED": "maybe"}, "canary", r"flags.CODEX_PUBLISH_ENABLED value: expected a bool .* 'maybe'"),
    ({"CODEX_PUBLISH_ENABLED": 1}, "canary", r"flags.CODEX_PUBLISH_ENABLED value: expected a bool .*got int 1"),
    ({"CODEX_GRAPH_API_PORT": "80a"}, "canary", r"flags.CODEX_GRAPH_API_PORT value: expected an integer"),
    ({"CODEX_GRAPH_API_PORT": True}, "canary", r"flags.CODEX_GRAPH_API_PORT value: expected an integer, got bool"),
    ({"CODEX_GRAPH_API_PORT": 70000}, "canary", r"flags.CODEX_GRAPH_API_PORT value: 70000 is above the maximum 65535"),
    ({"CODEX_GRAPH_API_PORT": 0}, "canary", r"flags.CODEX_GRAPH_API_PORT value: 0 is below the minimum 1"),
    ({"CODEX_PUBLISH_PORTAL": "internal"}, "canary",
     r"flags.CODEX_PUBLISH_PORTAL value: 'internal' is not one of build-only, external"),
    ({"CODEX_CORS_ORIGIN": 42}, "canary", r"flags.CODEX_CORS_ORIGIN value: expected a string, got int"),
    ({"CODEX_CORS_ORIGIN": "a\nB=1"}, "canary", r"flags.CODEX_CORS_ORIGIN value: .* contains a newline"),
    ({"CODEX_REPO_INCLUDE_LIST": {"org/a": 1}}, "canary", r"flags.CODEX_REPO_INCLUDE_LIST value: expected a list"),
    ({"CODEX_REPO_INCLUDE_LIST": ["org/a", "org/b,org/c"]}, "canary",
     r"flags.CODEX_REPO_INCLUDE_LIST value\[1\]: 'org/b,org/c' is empty or contains a comma"),
    ({"CODEX_REPO_INCLUDE_LIST": ["org/a", "not a repo"]}, "canary",
     r"flags.CODEX_REPO_INCLUDE_LIST value\[1\]: 'not a repo' does not match the pattern"),
    ({"CODEX_REPO_INCLUDE_LIST": [["nested"]]}, "canary",
     r"flags.CODEX_REPO_INCLUDE_LIST value\[0\]: list items must be strings or integers, got list"),
    ({"CODEX_PUBLISH_PORTAL": "external"}, "staging",
     r"flags.CODEX_PUBLISH_PORTAL may not be on before the canary phase \(this is staging\)"),
    ({"CODEX_EMBEDDINGS_ENABLED": True}, "canary", r"flags.CODEX_EMBEDDINGS_ENABLED may not be on before the production"),
    ({"CODEX_GRAPH_API_ENABLED": True}, "advanced",
     r"flags.CODEX_GRAPH_API_ENABLED requires CODEX_PUBLISH_ENABLED to be on \(it is false\)"),
    ({"CODEX_OWNERS_ENABLED": True}, None, r"flags.CODEX_OWNERS_ENABLED is on and declares min_phase production: "
                                           "give the phase"),
    ({}, "beta", r"phase is 'beta'; accepted: staging, canary, production, advanced"),
    (["CODEX_PUBLISH_ENABLED"], "canary", r"flags must be a mapping of flag name -> value, got list"),
])
def test_bad_flags_are_refused_naming_the_flag(flags, phase, message):
    with pytest.raises(FlagError, match=message):
        resolve(SCHEMA, flags, phase=phase)


@pytest.mark.parametrize("schema, message", [
    ({}, "schema must be a non-empty mapping"),
    ({"X": {"type": "float"}}, r"schema.X.type is 'float'; accepted: bool, int, str, enum, list"),
    ({"X": {"type": "enum"}}, r"schema.X.choices must be a non-empty list of strings for an enum"),
    ({"X": {"type": "bool", "choices": ["a"]}}, r"schema.X.choices is only for type enum"),
    ({"X": {"type": "bool", "requires": ["Y"]}}, r"schema.X.requires names 'Y', which is not a declared flag"),
    ({"X": {"type": "bool", "requires": ["X"]}}, r"schema.X.requires names the flag itself"),
    ({"X": {"type": "bool", "min_phase": "beta"}}, r"schema.X.min_phase is 'beta'; accepted: staging"),
    ({"X": {"type": "bool", "defualt": True}}, r"schema.X: unknown keys defualt"),
    ({"X": {"type": "int", "default": "ten"}}, r"schema.X: X default: expected an integer"),
    ({"X": {"type": "int", "min": "1"}}, r"schema.X.min must be an integer"),
    ({"X": {"type": "str", "max": 3}}, r"schema.X.max is only for type int"),
    ({"X": {"type": "str", "pattern": "("}}, r"schema.X.pattern '\(' is not a regular expression"),
    ({"BAD-NAME": {"type": "bool"}}, r"schema.BAD-NAME: flag names must match"),
    ({"X": "bool"}, r"schema.X must be a mapping with at least 'type', got str"),
])
def test_bad_schema_is_refused_naming_the_field(schema, message):
    with pytest.raises(FlagError, match=message):
        validate_schema(schema)


def test_render_env_sorted_typed_with_header():
    flags, dummy = resolve(SCHEMA, {"CODEX_PUBLISH_ENABLED": True, "CODEX_PUBLISH_PORTAL": "external",
                                    "CODEX_REPO_INCLUDE_LIST": ["org/b", "org/a"]}, phase="canary")
    text = render_env(flags, phase="canary", header="release 2.1.0")
    lines = text.splitlines()
    assert lines[0].startswith("# Managed by stagegate.rollout.feature_flags")
    assert lines[1] == "# phase: canary" and lines[2] == "# release 2.1.0"
    body = [line for line in lines if not line.startswith("#")]
    assert body == sorted(body)
    assert "CODEX_PUBLISH_ENABLED=true" in body
    assert "CODEX_EMBEDDINGS_ENABLED=false" in body
    assert "CODEX_REPO_INCLUDE_LIST=org/b,org/a" in body
    assert "CODEX_GRAPH_API_PORT=8002" in body
    assert "CODEX_CORS_ORIGIN=" in body
    assert text.endswith("\n")
    assert render_env(flags, phase="canary", header="release 2.1.0") == text  # same input, same bytes


def test_render_helm_is_valid_yaml_with_types():
    flags, dummy = resolve(SCHEMA, {"CODEX_PUBLISH_ENABLED": True, "CODEX_REPO_INCLUDE_LIST": ["org/a"],
                                    "CODEX_CORS_ORIGIN": "yes: no # not a comment"}, phase="canary")
    doc = yaml.safe_load(render_helm(flags, key="env"))
    assert doc["env"]["CODEX_PUBLISH_ENABLED"] is True
    assert doc["env"]["CODEX_REPO_INCLUDE_LIST"] == ["org/a"]
    assert doc["env"]["CODEX_GRAPH_API_PORT"] == 8002
    assert doc["env"]["CODEX_CORS_ORIGIN"] == "yes: no # not a comment"
    assert doc["env"]["CODEX_PUBLISH_PORTAL"] == "build-only"


def test_checksum_is_sha256_of_content():
    assert checksum("A=1\n") == hashlib.sha256(b"A=1\n").hexdigest()
