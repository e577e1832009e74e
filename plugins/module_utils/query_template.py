# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Query templates: ``${name}`` placeholders replaced by variables (service, version, window, ...).

Inside a PromQL string the value is escaped for that string (and regex-escaped inside ``=~`` / ``!~``
matchers); outside strings only identifiers, numbers and durations are accepted; ``window`` must always be a
Prometheus duration (``60s``, ``5m``, ``1h30m``). In a JMESPath expression (``http_json``) the value is
escaped for the literal it stands in. A value that cannot be placed safely is a ValueError naming the field
and the variable, never a surprise query. Plain Python, no I/O.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

from ansible.module_utils.common.text.converters import to_text

from ansible_collections.stagegate.rollout.plugins.module_utils.durations import (
    is_prometheus_duration, parse_duration)

_IDENT_RE = re.compile(r"^[A-Za-z_:][A-Za-z0-9_:]*$")
_NUMBER_RE = re.compile(r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$")
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RE2_SPECIAL = set("\\.+*?()|[]{}^$")


def validate_variables(variables, field="vars"):
    """Check variable names and values; returns a dict of str values."""
    if variables is None:
        return {}
    if not isinstance(variables, dict):
        raise ValueError("%s must be a dict of name: value, got %r" % (field, variables))
    out = {}
    for name, value in variables.items():
        if not isinstance(name, str) or not _VAR_NAME.match(name):
            raise ValueError("%s: variable name %r is not valid (letters, digits and _, not starting with a digit)"
                             % (field, name))
        if isinstance(value, bool) or value is None or not isinstance(value, (str, int, float)):
            raise ValueError("%s.%s: %r is not a string or a number" % (field, name, value))
        text = to_text(value) if not isinstance(value, float) else repr(value)
        if any(ord(c) < 32 and c not in "\t\n" for c in text) or "\x7f" in text:
            raise ValueError("%s.%s: %r contains control characters" % (field, name, value))
        if name == "window":
            parse_duration(text, "%s.window" % field)
        out[name] = text
    return out


def _re2_escape(text):
    return "".join("\\" + c if c in _RE2_SPECIAL else c for c in text)


def _promql_string_escape(text, quote):
    if quote == "`":
        if "`" in text:
            raise ValueError("a value containing ` cannot be placed in a `raw` PromQL string")
        return text
    out = []
    for c in text:
        if c == "\\":
            out.append("\\\\")
        elif c == quote:
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        else:
            out.append(c)
    return "".join(out)


def _jmespath_string_escape(text, quote):
    if quote == "'":
        return text.replace("\\", "\\\\").replace("'", "\\'")
    if quote == "`":
        return json.dumps(text)[1:-1].replace("`", "\\`")
    return json.dumps(text)[1:-1]


def render_query(template, variables, dialect="promql", field="query"):
    """Replace ``${name}`` placeholders of ``template`` with escaped variable values.

    ``dialect`` is ``promql`` (prometheus, prometheus_text) or ``jmespath`` (http_json): see
    ``metric_spec.query_dialect``.
    Raises ValueError naming ``field`` and the variable when a value cannot be placed safely.
    """
    if not isinstance(template, str) or not template.strip():
        raise ValueError("%s must be a non-empty string, got %r" % (field, template))
    if "${" not in template:
        return template
    values = validate_variables(variables)
    out = []
    i = 0
    quote = None
    regex = False
    n = len(template)
    while i < n:
        if template.startswith("${", i):
            m = _PLACEHOLDER.match(template, i)
            if not m:
                raise ValueError("%s: malformed placeholder at %r; write ${name} with a name of letters, digits and _"
                                 % (field, template[i:i + 20]))
            name = m.group(1)
            if name not in values:
                raise ValueError("%s: unknown variable ${%s}; known: %s" % (field, name, ", ".join(sorted(values)) or "none"))
            out.append(_place(values[name], name, quote, regex, dialect, field))
            i = m.end()
            continue
        c = template[i]
        if quote:
            if c == "\\" and quote != "`":
                out.append(template[i:i + 2])
                i += 2
                continue
            if c == quote:
                quote = None
        elif c in "\"'`":
            quote = c
            before = "".join(out).rstrip()
            regex = dialect == "promql" and (before.endswith("=~") or before.endswith("!~"))
        out.append(c)
        i += 1
    return "".join(out)


def _place(value, name, quote, regex, dialect, field):
    if quote:
        try:
            if dialect == "promql":
                return _promql_string_escape(_re2_escape(value) if regex else value, quote)
            return _jmespath_string_escape(value, quote)
        except ValueError as exc:
            raise ValueError("%s: ${%s}: %s" % (field, name, exc))
    if dialect == "jmespath":
        if re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", value) or _NUMBER_RE.match(value):
            return value
    elif _IDENT_RE.match(value) or _NUMBER_RE.match(value) or is_prometheus_duration(value):
        return value
    where = "a quoted label value (label=\"${%s}\")" % name if dialect == "promql" else "a quoted literal ('${%s}')" % name
    raise ValueError("%s: ${%s} = %r is outside a quoted string; there only identifiers, numbers and durations are "
                     "accepted; put the placeholder inside %s" % (field, name, value, where))
