# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Feature flags: a declared schema, validation, rendering to an env file or Helm values (written with ``atomic_file``).

Schema (one mapping per flag, keyed by the flag's name, which is also the
environment variable name)::

    CODEX_PUBLISH_PORTAL:   {type: enum, choices: [build-only, external], default: build-only}
    CODEX_PUBLISH_ENABLED:  {type: bool, default: false}
    CODEX_GRAPH_API_ENABLED: {type: bool, default: false, min_phase: advanced,
                              requires: [CODEX_PUBLISH_ENABLED]}
    CODEX_REPO_INCLUDE_LIST: {type: list, default: []}
    CODEX_WORKERS:          {type: int, default: 4, min: 1, max: 64}

Types: ``bool``, ``int``, ``str``, ``enum``, ``list`` (of strings or
integers, rendered comma-joined).  A flag is *on* when it is a true bool, a
non-empty list, or an int/str/enum value different from its default.  A flag that is
on in a phase before its ``min_phase`` is refused unless forced; a flag that is
on while one it ``requires`` is off is refused.

Every problem is collected (not just the first) and reported with the flag's
name, the value and what is accepted, before anything is written.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import hashlib
import json
import re

PHASES = ("staging", "canary", "production", "advanced")
TYPES = ("bool", "int", "str", "enum", "list")
SCHEMA_KEYS = ("type", "default", "choices", "min", "max", "pattern", "min_phase", "requires", "description")
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TRUE_STRINGS = ("true", "yes", "on")
FALSE_STRINGS = ("false", "no", "off")
INT_RE = re.compile(r"^[+-]?\d+$")
HEADER = "Managed by stagegate.rollout.feature_flags; do not edit by hand."


class FlagError(ValueError):
    """Invalid schema or flags; ``problems`` lists every problem found, each naming its flag."""

    def __init__(self, problems):
        if isinstance(problems, str):
            problems = [problems]
        self.problems = list(problems)
        super(FlagError, self).__init__("; ".join(self.problems))


def _type_name(value):
    return "null" if value is None else type(value).__name__


def validate_schema(schema, phases=PHASES):
    """Check a declared schema; returns a normalised copy or raises FlagError with every problem."""
    problems = []
    if not isinstance(schema, dict) or not schema:
        raise FlagError("schema must be a non-empty mapping of flag name -> {type, default, ...}, got %s"
                        % _type_name(schema))
    out = {}
    for name in sorted(schema, key=str):
        spec = schema[name]
        where = "schema.%s" % name
        if not isinstance(name, str) or not NAME_RE.match(name):
            problems.append("%s: flag names must match %s (they are environment variable names)"
                            % (where, NAME_RE.pattern))
            continue
        if not isinstance(spec, dict):
            problems.append("%s must be a mapping with at least 'type', got %s" % (where, _type_name(spec)))
            continue
        unknown = sorted(set(spec) - set(SCHEMA_KEYS), key=str)
        if unknown:
            problems.append("%s: unknown keys %s (accepted: %s)"
                            % (where, ", ".join(map(str, unknown)), ", ".join(SCHEMA_KEYS)))
        ftype = spec.get("type")
        if ftype not in TYPES:
            problems.append("%s.type is %r; accepted: %s" % (where, ftype, ", ".join(TYPES)))
            continue
        norm = {"type": ftype, "requires": [], "min_phase": None}
        if ftype == "enum":
            choices = spec.get("choices")
            if not isinstance(choices, list) or not choices or \
                    not all(isinstance(c, (str, int)) and not isinstance(c, bool) for c in choices):
                problems.append("%s.choices must be a non-empty list of strings for an enum, got %r" % (where, choices))
                continue
            norm["choices"] = [str(c) for c in choices]
        elif "choices" in spec:
            problems.append("%s.choices is only for type enum (type is %s)" % (where, ftype))
        for bound in ("min", "max"):
            if bound in spec:
                if ftype != "int":
                    problems.append("%s.%s is only for type int (type is %s)" % (where, bound, ftype))
                elif isinstance(spec[bound], bool) or not isinstance(spec[bound], int):
                    problems.append("%s.%s must be an integer, got %r" % (where, bound, spec[bound]))
                else:
                    norm[bound] = spec[bound]
        if "pattern" in spec:
            if ftype not in ("str", "list"):
                problems.append("%s.pattern is only for types str and list (type is %s)" % (where, ftype))
            else:
                try:
                    norm["pattern"] = re.compile(spec["pattern"])
                except (re.error, TypeError) as exc:
                    problems.append("%s.pattern %r is not a regular expression: %s" % (where, spec["pattern"], exc))
        if spec.get("min_phase") is not None:
            if spec["min_phase"] not in phases:
                problems.append("%s.min_phase is %r; accepted: %s" % (where, spec["min_phase"], ", ".join(phases)))
            else:
                norm["min_phase"] = spec["min_phase"]
        requires = spec.get("requires", [])
        if isinstance(requires, str):
            requires = [requires]
        if not isinstance(requires, list):
            problems.append("%s.requires must be a list of flag names, got %r" % (where, requires))
            requires = []
        for req in requires:
            if req not in schema:
                problems.append("%s.requires names %r, which is not a declared flag" % (where, req))
            elif req == name:
                problems.append("%s.requires names the flag itself" % where)
        norm["requires"] = [r for r in requires if r in schema and r != name]
        out[name] = norm
        default = spec.get("default", _implicit_default(ftype, norm))
        try:
            norm["default"] = coerce(name, norm, default, what="default")
        except FlagError as exc:
            problems.extend(["%s: %s" % (where, p) for p in exc.problems])
    if problems:
        raise FlagError(problems)
    return out


def _implicit_default(ftype, norm):
    return {"bool": False, "int": 0, "str": "", "list": []}.get(ftype, norm.get("choices", [None])[0])


def _check_text(name, text, what):
    if "\n" in text or "\r" in text or "\x00" in text:
        raise FlagError("%s %s: %r contains a newline or NUL, which an env file cannot hold" % (name, what, text))


def coerce(name, spec, value, what="value"):
    """Validate one value against its spec; returns the typed value or raises FlagError naming the flag."""
    ftype = spec["type"]
    if ftype == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in TRUE_STRINGS + FALSE_STRINGS:
            return value.strip().lower() in TRUE_STRINGS
        raise FlagError("%s %s: expected a bool (true/false), got %s %r" % (name, what, _type_name(value), value))
    if ftype == "int":
        if isinstance(value, bool):
            raise FlagError("%s %s: expected an integer, got bool %r" % (name, what, value))
        if isinstance(value, int):
            number = value
        elif isinstance(value, str) and INT_RE.match(value.strip()):
            number = int(value.strip())
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        else:
            raise FlagError("%s %s: expected an integer, got %s %r" % (name, what, _type_name(value), value))
        if "min" in spec and number < spec["min"]:
            raise FlagError("%s %s: %d is below the minimum %d" % (name, what, number, spec["min"]))
        if "max" in spec and number > spec["max"]:
            raise FlagError("%s %s: %d is above the maximum %d" % (name, what, number, spec["max"]))
        return number
    if ftype == "str":
        if not isinstance(value, str):
            raise FlagError("%s %s: expected a string, got %s %r (quote it)" % (name, what, _type_name(value), value))
        _check_text(name, value, what)
        if "pattern" in spec and not spec["pattern"].search(value):
            raise FlagError("%s %s: %r does not match the pattern %r" % (name, what, value, spec["pattern"].pattern))
        return value
    if ftype == "enum":
        if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value) not in spec["choices"]:
            raise FlagError("%s %s: %r is not one of %s" % (name, what, value, ", ".join(spec["choices"])))
        return str(value)
    # list
    if isinstance(value, str):
        items = [item.strip() for item in value.split(",")] if value.strip() else []
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise FlagError("%s %s: expected a list (or a comma-separated string), got %s %r"
                        % (name, what, _type_name(value), value))
    out = []
    for i, item in enumerate(items):
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            raise FlagError("%s %s[%d]: list items must be strings or integers, got %s %r"
                            % (name, what, i, _type_name(item), item))
        text = str(item)
        if "," in text or not text.strip():
            raise FlagError("%s %s[%d]: %r is empty or contains a comma (the list is rendered comma-joined)"
                            % (name, what, i, text))
        _check_text(name, text, "%s[%d]" % (what, i))
        if "pattern" in spec and not spec["pattern"].search(text):
            raise FlagError("%s %s[%d]: %r does not match the pattern %r"
                            % (name, what, i, text, spec["pattern"].pattern))
        out.append(text)
    return out


def is_on(spec, value):
    if spec["type"] == "bool":
        return value is True
    if spec["type"] == "list":
        return bool(value)
    return value != spec["default"]


def resolve(schema, flags, phase=None, force=False, phases=PHASES):
    """Schema + flags -> (resolved flags with defaults, forced flag names).

    Raises FlagError listing every unknown flag, type mismatch, phase violation
    and missing requirement.
    """
    specs = validate_schema(schema, phases)
    if flags is None:
        flags = {}
    if not isinstance(flags, dict):
        raise FlagError("flags must be a mapping of flag name -> value, got %s" % _type_name(flags))
    if phase is not None and phase not in phases:
        raise FlagError("phase is %r; accepted: %s" % (phase, ", ".join(phases)))
    problems = []
    for name in sorted(flags, key=str):
        if name not in specs:
            problems.append("flags.%s: unknown flag (declared: %s)" % (name, ", ".join(sorted(specs))))
    resolved = {}
    for name, spec in specs.items():
        if name in flags:
            try:
                resolved[name] = coerce(name, spec, flags[name])
            except FlagError as exc:
                problems.extend(["flags.%s" % p for p in exc.problems])
        else:
            resolved[name] = spec["default"]
    if problems:
        raise FlagError(problems)
    forced = []
    for name in sorted(specs):
        spec = specs[name]
        if not is_on(spec, resolved[name]):
            continue
        if spec["min_phase"] is not None:
            if phase is None:
                problems.append("flags.%s is on and declares min_phase %s: give the phase the flags are for"
                                % (name, spec["min_phase"]))
            elif phases.index(phase) < phases.index(spec["min_phase"]):
                if force:
                    forced.append(name)
                else:
                    problems.append("flags.%s may not be on before the %s phase (this is %s); set force to override"
                                    % (name, spec["min_phase"], phase))
        for req in spec["requires"]:
            if not is_on(specs[req], resolved[req]):
                problems.append("flags.%s requires %s to be on (it is %s)" % (name, req, render_value(resolved[req])))
    if problems:
        raise FlagError(problems)
    return resolved, forced


def render_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(value)
    return str(value)


def _header_lines(header, phase):
    lines = ["# " + HEADER]
    if phase:
        lines.append("# phase: %s" % phase)
    if header:
        for line in str(header).splitlines():
            lines.append("# " + line if line else "#")
    return lines


def render_env(flags, header=None, phase=None):
    """KEY=value lines sorted by key, after a header comment; booleans true/false, lists comma-joined."""
    lines = _header_lines(header, phase)
    for name in sorted(flags):
        lines.append("%s=%s" % (name, render_value(flags[name])))
    return "\n".join(lines) + "\n"


def render_helm(flags, key="flags", header=None, phase=None):
    """A Helm values file: ``key:`` mapping of typed flag values (YAML, JSON-quoted strings)."""
    lines = _header_lines(header, phase)
    lines.append("%s:" % key if flags else "%s: {}" % key)
    for name in sorted(flags):
        value = flags[name]
        if isinstance(value, list):
            if not value:
                lines.append("  %s: []" % name)
            else:
                lines.append("  %s:" % name)
                lines.extend("    - %s" % json.dumps(item, ensure_ascii=False) for item in value)
        else:
            lines.append("  %s: %s" % (name, json.dumps(value, ensure_ascii=False)))
    return "\n".join(lines) + "\n"


def checksum(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_text(path):
    """Current content of ``path`` or None when it does not exist."""
    try:
        with open(path, "rb") as fh:
            return fh.read().decode("utf-8", "replace")
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
