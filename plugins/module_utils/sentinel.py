# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sentinel probes: requests or commands that must return results (the calibration guide: a sentinel returning zero
results is the kill-switch condition). Nothing here does I/O: the plan is checked before any change, the module
``sentinel_probe`` runs the probes on each app host and counts with :func:`count`, the role ``sentinels`` tallies
them over every host with :func:`tally`.

A sentinel (``rollout_sentinels`` in the inventory) is ``{name, path | url | command, results, min_results}``:

* ``path`` - an HTTP GET of this path on a slot of every app host (``url``: one absolute URL, from every app host;
  ``command``: an argv run on every app host; its exit code must be 0);
* ``results`` - where the results are in the JSON answer (dotted keys, e.g. ``data.items``): a list or mapping counts
  its items, a number is the count, null or missing is 0. Omitted: a JSON list counts its items, any other JSON
  value not null, empty or false counts 1, an answer that is not JSON counts its non-empty lines;
* ``min_results`` (default 1) - fewer than this is an empty sentinel.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

FIELD = "rollout_sentinels"
TARGETS = ("path", "url", "command")
REQUIRED = ("all", "any")


class SentinelError(ValueError):
    """A sentinel that cannot run; the message names the field, the value and what is accepted."""


def plan(sentinels, field=FIELD):
    """The declared sentinels -> [{name, path|url|command, results, min_results}] with defaults filled in.
    Raises SentinelError naming the field."""
    if sentinels in (None, ""):
        return []
    if not isinstance(sentinels, list):
        raise SentinelError("%s: %r is not accepted (accepted: a list of sentinels, each a mapping with name and "
                            "one of %s)" % (field, sentinels, ", ".join(TARGETS)))
    out, names = [], set()
    for i, sentinel in enumerate(sentinels):
        out.append(_sentinel("%s[%d]" % (field, i), sentinel, names))
    return out


def _sentinel(where, sentinel, names):
    if not isinstance(sentinel, dict):
        raise SentinelError("%s: %r is not a sentinel (a mapping with name and one of %s)"
                            % (where, sentinel, ", ".join(TARGETS)))
    accepted = {"name", "results", "min_results"} | set(TARGETS)
    unknown = sorted(set(sentinel) - accepted)
    if unknown:
        raise SentinelError("%s: unknown key(s) %s (accepted: %s)" % (where, ", ".join(unknown), ", ".join(sorted(accepted))))
    name = sentinel.get("name")
    if not isinstance(name, str) or not name.strip() or name in names:
        raise SentinelError("%s.name: %r is not accepted (accepted: a name of its own, not empty)" % (where, name))
    names.add(name)
    given = [k for k in TARGETS if sentinel.get(k) not in (None, "", [])]
    if len(given) != 1:
        raise SentinelError("%s: %s given (accepted: exactly one of %s)"
                            % (where, ", ".join(given) or "none of them", ", ".join(TARGETS)))
    kind = given[0]
    value = sentinel[kind]
    if kind == "path" and not (isinstance(value, str) and value.startswith("/")):
        raise SentinelError("%s.path: %r is not accepted (accepted: a path starting with /)" % (where, value))
    if kind == "url" and not (isinstance(value, str) and value.startswith(("http://", "https://"))):
        raise SentinelError("%s.url: %r is not accepted (accepted: an http:// or https:// URL)" % (where, "<url>"))
    if kind == "command" and not (isinstance(value, list) and all(isinstance(a, str) and a for a in value)):
        raise SentinelError("%s.command: %r is not accepted (accepted: an argv, a list of strings, not empty)"
                            % (where, value))
    results = sentinel.get("results")
    if results is not None and not (isinstance(results, str) and results.strip(".") and "" not in results.split(".")):
        raise SentinelError("%s.results: %r is not accepted (accepted: dotted keys into the JSON answer, e.g. data.items)"
                            % (where, results))
    minimum = sentinel.get("min_results", 1)
    if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 1:
        raise SentinelError("%s.min_results: %r is not accepted (accepted: a whole number, at least 1)" % (where, minimum))
    return {"name": name, kind: value, "results": results, "min_results": minimum}


def count(answer, results=None):
    """How many results an answer (an HTTP body, a command's stdout) holds (see the module's docstring)."""
    text = answer if isinstance(answer, str) else (answer or b"").decode("utf-8", "replace")
    try:
        value = json.loads(text)
    except ValueError:
        if results is not None:
            return 0
        return len([line for line in text.splitlines() if line.strip()])
    if results is None:
        return len(value) if isinstance(value, list) else (1 if value not in (None, "", {}, False) else 0)
    for key in results.split("."):
        if isinstance(value, dict):
            value = value.get(key)
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return 0
    if isinstance(value, (list, dict)):
        return len(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return max(int(value), 0)
    return 0


def tally(probes, required="all"):
    """Every host's probes ([{name, host, results, min_results, error}]) -> {passed, returned, total, empty}.

    ``required``: ``all`` - every sentinel on every host returned at least its min_results (a promotion gate);
    ``any`` - at least one did (zero results from every sentinel is the kill-switch condition)."""
    if required not in REQUIRED:
        raise SentinelError("sentinels_required: %r is not accepted (accepted: %s)" % (required, ", ".join(REQUIRED)))
    empty = ["%s on %s: %s" % (p.get("name"), p.get("host"), p.get("error") or _too_few(p))
             for p in probes if not _returned(p)]
    returned = len(probes) - len(empty)
    passed = (not empty) if required == "all" else returned > 0
    return {"passed": bool(probes) and passed, "returned": returned, "total": len(probes), "empty": empty}


def _returned(probe):
    return not probe.get("error") and (probe.get("results") or 0) >= probe.get("min_results", 1)


def _too_few(probe):
    return "%s result(s), %s needed" % (probe.get("results"), probe.get("min_results", 1))
