# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollout's own metrics, kept in a Prometheus text-format file.

node_exporter's textfile collector (or any HTTP file server Prometheus scrapes) exposes
the file; every phase updates it: progress, analysis runs and failures, rollbacks,
blue-green switches and their duration. Updates are read-modify-write under an exclusive
lock and land with an atomic rename, so a scrape never sees half a file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fcntl
import math
import os
import re

from ansible_collections.stagegate.rollout.plugins.module_utils.atomic_file import atomic_write

NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
TYPES = ("counter", "gauge")
SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)\s*$')
LABEL_PAIR_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')

# The metric families the phase roles write (docs/evidence.md); others may be added freely.
KNOWN = {
    "stagegate_rollout_progress_ratio": ("gauge", "Share of the rollout done (0..1) by release and phase."),
    "stagegate_rollout_canary_weight_percent": ("gauge", "Canary traffic weight in percent."),
    "stagegate_rollout_analysis_runs_total": ("counter", "Analysis runs (gates and judge looks)."),
    "stagegate_rollout_analysis_failures_total": ("counter", "Analysis runs that failed."),
    "stagegate_rollout_rollbacks_total": ("counter", "Rollbacks by release, phase and reason."),
    "stagegate_rollout_rollback_incomplete": ("gauge", "1 while a rollback is incomplete (what is left: the ledger)."),
    "stagegate_rollout_bluegreen_switches_total": ("counter", "Blue-green switches."),
    "stagegate_rollout_bluegreen_switch_seconds": ("gauge", "Duration of the last blue-green switch in seconds."),
}


class RolloutMetricsError(Exception):
    """Bad input or an unreadable metrics file."""


def _escape(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _unescape(value):
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def _number(text):
    try:
        return float(text)
    except ValueError:
        raise RolloutMetricsError("metrics file: %r is not a number" % text)


def parse(text):
    """Parse the file this module writes: {name: {"type", "help", "samples": {label tuple: value}}}."""
    families = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            parts = line.split(None, 3)
            if len(parts) < 4:
                raise RolloutMetricsError("metrics file line %d: malformed %r" % (lineno, line))
            fam = families.setdefault(parts[2], {"type": "gauge", "help": "", "samples": {}})
            fam["help" if parts[1] == "HELP" else "type"] = _unescape(parts[3]) if parts[1] == "HELP" else parts[3]
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        if not m:
            raise RolloutMetricsError("metrics file line %d: not a sample: %r" % (lineno, line))
        labels = tuple(sorted((k, _unescape(v)) for k, v in LABEL_PAIR_RE.findall(m.group(3) or "")))
        fam = families.setdefault(m.group(1), {"type": "gauge", "help": "", "samples": {}})
        fam["samples"][labels] = _number(m.group(4))
    return families


def render(families):
    out = []
    for name in sorted(families):
        fam = families[name]
        out.append("# HELP %s %s" % (name, fam["help"].replace("\\", "\\\\").replace("\n", "\\n")))
        out.append("# TYPE %s %s" % (name, fam["type"]))
        for labels in sorted(fam["samples"]):
            value = fam["samples"][labels]
            lab = ",".join('%s="%s"' % (k, _escape(v)) for k, v in labels)
            num = repr(float(value)) if not float(value).is_integer() else "%d" % value
            out.append("%s%s %s" % (name, "{%s}" % lab if lab else "", num))
    return "\n".join(out) + ("\n" if out else "")


def validate(updates):
    """Check every update before anything is read or written; returns normalised updates."""
    if not isinstance(updates, list) or not updates:
        raise RolloutMetricsError("metrics: a non-empty list of updates is required, got %r" % (updates,))
    norm = []
    for i, u in enumerate(updates):
        where = "metrics[%d]" % i
        if not isinstance(u, dict):
            raise RolloutMetricsError("%s: must be a dict, got %r" % (where, u))
        name = u.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise RolloutMetricsError("%s.name: %r is not a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)" % (where, name))
        known_type, known_help = KNOWN.get(name, (None, ""))
        mtype = u.get("type") or known_type or "gauge"
        if mtype not in TYPES:
            raise RolloutMetricsError("%s.type: %r is not one of %s" % (where, mtype, ", ".join(TYPES)))
        if known_type and mtype != known_type:
            raise RolloutMetricsError("%s.type: %s is a %s, not a %s" % (where, name, known_type, mtype))
        labels = u.get("labels") or {}
        if not isinstance(labels, dict):
            raise RolloutMetricsError("%s.labels: must be a dict of label name to value, got %r" % (where, labels))
        for k in labels:
            if not LABEL_RE.match(str(k)) or str(k).startswith("__"):
                raise RolloutMetricsError("%s.labels: %r is not a valid label name" % (where, k))
        has_inc, has_set = u.get("inc") is not None, u.get("set") is not None
        if has_inc == has_set:
            raise RolloutMetricsError("%s: give exactly one of inc or set" % where)
        value = u["inc"] if has_inc else u["set"]
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise RolloutMetricsError("%s.%s: %r is not a number" % (where, "inc" if has_inc else "set", value))
        if math.isnan(value) or math.isinf(value):
            raise RolloutMetricsError("%s: %r is not a finite number" % (where, value))
        if mtype == "counter" and (has_set or value < 0):
            raise RolloutMetricsError("%s: %s is a counter: only inc with a value >= 0 is accepted" % (where, name))
        norm.append({"name": name, "type": mtype, "help": u.get("help") or known_help or name,
                     "labels": tuple(sorted((str(k), str(v)) for k, v in labels.items())),
                     "op": "inc" if has_inc else "set", "value": value})
    return norm


def apply_updates(families, updates):
    """Apply normalised updates to parsed families (in place); returns the samples touched."""
    touched = []
    for u in updates:
        fam = families.setdefault(u["name"], {"type": u["type"], "help": u["help"], "samples": {}})
        if fam["type"] != u["type"]:
            raise RolloutMetricsError("%s: the file holds it as a %s, the update says %s" % (u["name"], fam["type"], u["type"]))
        before = fam["samples"].get(u["labels"])
        after = (before or 0.0) + u["value"] if u["op"] == "inc" else u["value"]
        fam["samples"][u["labels"]] = after
        touched.append({"name": u["name"], "labels": dict(u["labels"]), "before": before, "after": after})
    return touched


def update_file(path, updates, check_mode=False):
    """Validate, then read-modify-write ``path`` under a lock. Returns (changed, before_text, after_text, touched)."""
    updates = validate(updates)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise RolloutMetricsError("path: directory %s does not exist" % directory)
    lock_path = path + ".lock"
    lock = None if check_mode else open(lock_path, "a")
    try:
        if lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
        before = ""
        if os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                before = fh.read()
        families = parse(before)
        touched = apply_updates(families, updates)
        after = render(families)
        changed = after != before
        if changed and not check_mode:
            atomic_write(path, after, 0o644)
        return changed, before, after, touched
    finally:
        if lock:
            lock.close()
