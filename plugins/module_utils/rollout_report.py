# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollout report of one release: a JSON-able model built from the ledger (and optional metric series).

* :func:`load_ledger` - the verified chain and the entries of one release (``ledger.py``).
* :func:`metric_plan` - the range queries of the report (error rate and p99 per slot), ``$window`` filled in.
* :func:`fetch_series` - runs them through a provider (``metric_providers``); never raises for an
  unreachable provider: the report then carries a note instead of the plots' data.
* :func:`build_model` - the model: summary, phases and their events, canary weights, judge e-values, gate
  values, rollbacks and their timing, retention and replay, chaos/sentinel drills, ledger verification.
  Every field of every entry is optional; input that is not of the expected shape raises
  :class:`ReportError` naming the field.

``rollout_report_html.render_html(model)`` turns the model into one self-contained HTML file (inline SVG).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import datetime
import json
import math
import os
import re

from ansible_collections.stagegate.rollout.plugins.module_utils.atomic_file import atomic_write
from ansible_collections.stagegate.rollout.plugins.module_utils.ledger import (
    Ledger, LedgerError, read_entries, unfinished_attempts)
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_base import (
    MetricError, UnreachableError, one_line)
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_providers import build_provider
from ansible_collections.stagegate.rollout.plugins.module_utils.redact import scrub
from ansible_collections.stagegate.rollout.plugins.module_utils.rollout_report_html import render_html

SCHEMA = 1
PHASES = ("staging", "canary", "production", "advanced")
SLOTS = ("stable", "canary")
SERIES_KEYS = ("error_rate", "p99_latency_ms")
OUTCOME_EVENTS = ("promote", "rollback", "rollback_incomplete", "aborted")
ROLLBACK_EVENTS = ("rollback", "rollback_incomplete", "partial_rollback")
DRILL_EVENTS = ("chaos", "sentinel")
MAX_POINTS = 500
TS_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]00:?00)?\Z")


class ReportError(ValueError):
    """Input of the report that is not of the expected shape; the message names the field."""


# ---------------------------------------------------------------- small helpers

def num(value):
    """A float from a ledger value (numbers, numeric text from templates, ``inf``); None when it is none."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value) if not math.isnan(value) else None
    if isinstance(value, str):
        try:
            v = float(value.strip())
        except ValueError:
            return None
        return None if math.isnan(v) else v
    return None


def jnum(value):
    """:func:`num` made JSON-safe (infinity as the text ``inf``)."""
    v = num(value)
    if v is None:
        return None
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return int(v) if v.is_integer() and abs(v) < 1e15 else v


def truthy(value):
    """Booleans as templates write them (``True``, ``"true"``, ``"False"``); None when absent."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "yes", "1", "pass", "passed"):
            return True
        if low in ("false", "no", "0", "fail", "failed", ""):
            return False
    if isinstance(value, (int, float)):
        return bool(value)
    return None


def epoch(ts, field):
    """Unix seconds of a ledger ``ts`` (RFC 3339 UTC); ReportError naming ``field`` otherwise."""
    m = TS_RE.match(ts) if isinstance(ts, str) else None
    if not m:
        raise ReportError("%s: %r is not an RFC 3339 UTC time such as 2025-01-01T00:00:00.000000Z" % (field, ts))
    y, mo, d, h, mi, s = (int(x) for x in m.groups()[:6])
    frac = float("0." + m.group(7)) if m.group(7) else 0.0
    try:
        return calendar.timegm(datetime.datetime(y, mo, d, h, mi, s).timetuple()) + frac
    except ValueError as exc:
        raise ReportError("%s: %r is not a time: %s" % (field, ts, exc))


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ") \
        if t is not None else None


def _dict(value):
    return value if isinstance(value, dict) else {}


def _list(value):
    return value if isinstance(value, list) else []


# ---------------------------------------------------------------- the ledger

def load_ledger(path, release, key=None):
    """-> (entries of ``release``, verification, releases in the ledger). LedgerError when it cannot be read."""
    ledger = Ledger(path, key=key)
    data = ledger.read_bytes()
    state = ledger.verify_data(data)
    entries = read_entries(data, strict=False)
    releases = []
    for e in entries:
        if e.get("release") not in releases:
            releases.append(e.get("release"))
    verification = dict((k, state.get(k)) for k in (
        "valid", "count", "head_hash", "head_seq", "broken_seq", "broken_line", "problem", "torn_tail",
        "authenticated", "keyed_entries"))
    verification["entries_in_file"] = len(entries)
    return [e for e in entries if e.get("release") == release], verification, releases


# ---------------------------------------------------------------- metric series

def check_queries(queries, field="queries"):
    """``{stable|canary: {error_rate|p99_latency_ms: query}}`` checked; {} for none."""
    if queries is None:
        return {}
    if not isinstance(queries, dict):
        raise ReportError("%s must be a dict {stable: {error_rate: ..., p99_latency_ms: ...}, canary: {...}}, got %r"
                          % (field, type(queries).__name__))
    out = {}
    for slot, named in queries.items():
        if slot not in SLOTS:
            raise ReportError("%s.%s: unknown slot (accepted: %s)" % (field, slot, ", ".join(SLOTS)))
        if named is None:
            continue
        if not isinstance(named, dict):
            raise ReportError("%s.%s must be a dict {error_rate: query, p99_latency_ms: query}" % (field, slot))
        for name, text in named.items():
            if name not in SERIES_KEYS:
                raise ReportError("%s.%s.%s: unknown series (accepted: %s)" % (field, slot, name, ", ".join(SERIES_KEYS)))
            if text is None or text == "":
                continue
            if not isinstance(text, str):
                raise ReportError("%s.%s.%s must be a query string, got %r" % (field, slot, name, text))
            out.setdefault(slot, {})[name] = text
    return out


def span(entries):
    """(start, end) Unix seconds of the entries, first to last (never later: the series of a finished release must
    not change when the report is made again)."""
    ts = [epoch(e.get("ts"), "entries[seq %s].ts" % e.get("seq")) for e in entries if e.get("ts") is not None]
    if not ts:
        return None, None
    return min(ts), max(ts)


def auto_step(start, end):
    """Seconds between the points of a range query: about MAX_POINTS points, at least 1 s."""
    return float(max(1, int(math.ceil((end - start) / float(MAX_POINTS)))))


def metric_plan(queries, window):
    """The range queries to run, ``[(slot, name, expr)]``, with ``$window`` replaced by ``window``."""
    plan = []
    for slot in SLOTS:
        for name in SERIES_KEYS:
            text = queries.get(slot, {}).get(name)
            if text:
                plan.append((slot, name, text.replace("${window}", window).replace("$window", window)))
    return plan


def fetch_series(provider, plan, start, end, step, secrets=()):
    """Run ``plan`` (:func:`metric_plan`) from ``start`` to ``end``. -> (series, notes).

    ``series``: ``{slot: {name: [[t, value], ...]}}``; ``notes``: what could not be read, one text each (scrubbed
    of ``secrets``). Nothing raises: after the provider is found unreachable the other queries are not tried.
    """
    series, notes = {}, []
    provider.begin_round()
    for slot, name, expr in plan:
        try:
            samples = provider.query_range(expr, start, end, step)
        except MetricError as exc:
            notes.append(scrub("%s %s: %s (query %s)" % (slot, name, exc, one_line(expr)), secrets))
            if isinstance(exc, UnreachableError):
                notes.append("metrics provider unreachable: the other series were not read")
                break
            continue
        points = []
        for sample in samples[:1]:
            for t, v in sample.get("values") or []:
                if v is not None and not math.isnan(v) and not math.isinf(v):
                    points.append([float(t), float(v)])
        if len(samples) > 1:
            notes.append("%s %s: %d series returned, the first is shown (aggregate the query)" % (slot, name, len(samples)))
        if not points:
            notes.append("%s %s: no data between the first and the last ledger entry" % (slot, name))
        series.setdefault(slot, {})[name] = points
    return series, notes


def check_series(series, field="series"):
    """``{slot: {name: [[t, v], ...]}}`` checked (t and v numbers); {} for none."""
    if series is None:
        return {}
    if not isinstance(series, dict):
        raise ReportError("%s must be a dict {stable: {error_rate: [[t, v], ...]}, ...}" % field)
    out = {}
    for slot, named in series.items():
        if slot not in SLOTS:
            raise ReportError("%s.%s: unknown slot (accepted: %s)" % (field, slot, ", ".join(SLOTS)))
        if not isinstance(named, dict):
            raise ReportError("%s.%s must be a dict {error_rate: [[t, v], ...], p99_latency_ms: [...]}" % (field, slot))
        for name, points in named.items():
            where = "%s.%s.%s" % (field, slot, name)
            if name not in SERIES_KEYS:
                raise ReportError("%s: unknown series (accepted: %s)" % (where, ", ".join(SERIES_KEYS)))
            if not isinstance(points, list):
                raise ReportError("%s must be a list of [t, value]" % where)
            clean = []
            for i, p in enumerate(points):
                if not isinstance(p, (list, tuple)) or len(p) != 2 or num(p[0]) is None or num(p[1]) is None:
                    raise ReportError("%s[%d]: %r is not [t, value] (two numbers)" % (where, i, p))
                clean.append([num(p[0]), num(p[1])])
            out.setdefault(slot, {})[name] = clean
    return out


# ---------------------------------------------------------------- the model

def _check_entries(entries):
    if not isinstance(entries, list):
        raise ReportError("entries must be a list of ledger entries, got %s" % type(entries).__name__)
    out = []
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            raise ReportError("entries[%d] must be a ledger entry (a dict), got %r" % (i, e))
        if not isinstance(e.get("event"), str) or not e["event"]:
            raise ReportError("entries[%d].event: %r is not an event name (phase_start, gate, judge, ...)"
                              % (i, e.get("event")))
        if e.get("evidence") is not None and not isinstance(e["evidence"], dict):
            raise ReportError("entries[%d].evidence must be a dict, got %r" % (i, e["evidence"]))
        item = dict(e)
        item["t"] = epoch(e["ts"], "entries[%d].ts" % i) if e.get("ts") is not None else None
        item["evidence"] = e.get("evidence") or {}
        out.append(item)
    return out


def _event(e):
    return dict(seq=e.get("seq"), ts=e.get("ts"), t=e["t"], phase=e.get("phase"), step=e.get("step"),
                event=e["event"], decision=e.get("decision"), reason=e.get("reason"))


def _phases(entries):
    order, by = [], {}
    for e in entries:
        name = e.get("phase") or "-"
        if name not in by:
            order.append(name)
            by[name] = dict(phase=name, attempts=0, started=None, ended=None, outcome=None, events=[],
                            retention=None, steps=None)
        p = by[name]
        p["events"].append(_event(e))
        if e["event"] == "phase_start":
            p["attempts"] += 1
            p["started"] = p["started"] or e.get("ts")
            p["outcome"] = "started"
            ev = e["evidence"]
            if isinstance(ev.get("retention"), dict):
                p["retention"] = ev["retention"]
            if isinstance(ev.get("steps"), list):
                p["steps"] = [jnum(_dict(s).get("weight")) for s in ev["steps"]]
        elif e["event"] in OUTCOME_EVENTS:
            p["outcome"] = {"promote": "promoted", "rollback": "rolled_back"}.get(e["event"], e["event"])
            p["ended"] = e.get("ts")
    return [by[n] for n in order]


def _weights(entries, phases):
    """The canary weight over time: 0 at the canary's start, each step's weight from the end of the step before
    (or the start), 0 again at a fast abort or a rollback. -> [[t, weight %], ...]."""
    steps = next((p["steps"] for p in phases if p["phase"] == "canary" and p["steps"]), None) or []
    points, seen = [], []
    last_t = None
    for e in entries:
        if e["t"] is None:
            continue
        ev = e["evidence"]
        if e.get("phase") == "canary" and e["event"] == "phase_start":
            points.append([e["t"], 0])
            seen, last_t = [], e["t"]
        elif e.get("phase") == "canary" and e["event"] in ("gate", "judge", "approval") and e.get("step") not in seen:
            step = e.get("step")
            weight = num(ev.get("weight"))
            if weight is None and isinstance(step, str) and step.isdigit() and 0 < int(step) <= len(steps):
                weight = num(steps[int(step) - 1])
            if weight is not None:
                seen.append(step)
                points.append([last_t if last_t is not None else e["t"], jnum(weight)])
            last_t = e["t"]
        elif e.get("phase") == "canary" and e["event"] in ("gate", "judge", "approval"):
            last_t = e["t"]
        fast = _dict(ev.get("fast_abort"))
        if truthy(fast.get("applied")) and num(fast.get("applied_at")) is not None:
            applied = num(fast["applied_at"])  # another clock (or a made-up value): the entry's own time
            points.append([applied if abs(applied - e["t"]) < 3600 else e["t"], 0])
        if e["event"] in ROLLBACK_EVENTS and e.get("phase") in ("canary", None):
            w = num(ev.get("canary_weight"))
            points.append([e["t"], jnum(w) if w is not None else 0])
        if e["event"] == "promote" and e.get("phase") == "canary":
            points.append([e["t"], 100])
    points.sort(key=lambda p: p[0])
    return points


def _fast_abort(value):
    fast = _dict(value)
    if not fast:
        return None
    return dict(applied=truthy(fast.get("applied")), ms_after_verdict=jnum(fast.get("ms_after_verdict")),
                decided_at=jnum(fast.get("decided_at")), applied_at=jnum(fast.get("applied_at")),
                weights=_dict(fast.get("weights")) or _dict(fast.get("after")) or None, error=fast.get("error"))


def _events(entries, names):
    """``(entry, evidence)`` of the entries whose event is one of ``names``, in ledger order."""
    return [(e, e["evidence"]) for e in entries if e["event"] in names]


def _judge(entries):
    out = []
    for e, ev in _events(entries, ("judge",)):
        errs = _dict(ev.get("errors"))
        out.append(dict(seq=e.get("seq"), ts=e.get("ts"), t=e["t"], phase=e.get("phase"), step=e.get("step"),
                        decision=e.get("decision"), verdict=ev.get("verdict"), reason=e.get("reason"),
                        weight=jnum(ev.get("weight")), looks=jnum(ev.get("looks")),
                        requests=dict((k, jnum(v)) for k, v in _dict(ev.get("requests")).items()),
                        e_fail=jnum(errs.get("e_fail")), fail_threshold=jnum(errs.get("fail_threshold")),
                        e_pass=jnum(errs.get("e_pass")), pass_threshold=jnum(errs.get("pass_threshold")),
                        canary_rate=jnum(errs.get("canary_rate")), baseline_rate=jnum(errs.get("baseline_rate")),
                        fast_abort=_fast_abort(ev.get("fast_abort"))))
    return out


def _gates(entries):
    out = []
    for e, ev in _events(entries, ("gate",)):
        results = []
        for i, r in enumerate(_list(ev.get("results"))):
            r = _dict(r)
            threshold = r.get("threshold")
            results.append(dict(name=r.get("name") or "check %d" % (i + 1), observed=jnum(r.get("observed")),
                                threshold=threshold if num(threshold) is None else jnum(threshold),
                                threshold_value=jnum(threshold_number(threshold)), passed=truthy(r.get("passed")),
                                query=r.get("query"), window=r.get("window") or ev.get("window"),
                                reason=r.get("reason")))
        out.append(dict(seq=e.get("seq"), ts=e.get("ts"), t=e["t"], phase=e.get("phase"), step=e.get("step"),
                        decision=e.get("decision"), verdict=ev.get("verdict"), reason=e.get("reason"),
                        window=ev.get("window"), results=results, fast_abort=_fast_abort(ev.get("fast_abort"))))
    return out


def threshold_number(threshold):
    """The number of a threshold (``0.05``, ``"< 0.05"``, ``"<= 2"``), or None."""
    v = num(threshold)
    if v is not None:
        return v
    if isinstance(threshold, str):
        m = re.search(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", threshold)
        if m:
            return float(m.group(0))
    return None


def _rollbacks(entries, judge, gates):
    out = []
    verdicts = [v for v in judge + gates if v["decision"] == "rollback"]
    for e, ev in _events(entries, ROLLBACK_EVENTS):
        before = [v for v in verdicts if v["t"] is not None and e["t"] is not None and v["t"] <= e["t"]
                  and v["phase"] == e.get("phase")]
        verdict = before[-1] if before else None
        fast = verdict["fast_abort"] if verdict else None
        replay = _dict(ev.get("replay"))
        out.append(dict(
            seq=e.get("seq"), ts=e.get("ts"), t=e["t"], phase=e.get("phase"), event=e["event"],
            decision=e.get("decision"), reason=e.get("reason"), complete=e["event"] != "rollback_incomplete",
            canary_weight=jnum(ev.get("canary_weight")), weights_after=_dict(ev.get("weights_after")) or None,
            left=_list(ev.get("left")), traffic_elapsed_ms=jnum(ev.get("traffic_elapsed_ms")),
            events_replayed=jnum(ev.get("events_replayed")),
            replay=dict((k, replay[k]) for k in ("replay", "action", "msg", "changed") if k in replay) or None,
            verdict_seq=verdict["seq"] if verdict else None,
            verdict_event=("judge" if verdict in judge else "gate") if verdict else None,
            seconds_after_verdict=round(e["t"] - verdict["t"], 3) if verdict and e["t"] is not None
            and verdict["t"] is not None else None,
            fast_abort_ms=fast["ms_after_verdict"] if fast and fast.get("applied") else None))
    return out


def _retention(entries, phases):
    out = []
    for p in phases:
        if p["retention"]:
            out.append(dict(phase=p["phase"], when="during", retention=p["retention"]))
    for e in entries:
        if e["event"] == "promote" and isinstance(e["evidence"].get("retention"), dict):
            out.append(dict(phase=e.get("phase"), when="after promotion", retention=e["evidence"]["retention"]))
    return out


def _drills(entries):
    out = []
    for e, ev in _events(entries, DRILL_EVENTS):
        passed = truthy(ev.get("passed", ev.get("success")))
        if passed is None and e.get("decision") is not None:
            passed = truthy(e.get("decision"))
        rest = dict((k, v) for k, v in ev.items() if k not in ("drill", "name", "score", "passed", "success"))
        out.append(dict(seq=e.get("seq"), ts=e.get("ts"), t=e["t"], kind=e["event"], phase=e.get("phase"),
                        drill=ev.get("drill") or ev.get("name") or e.get("step") or e["event"],
                        score=jnum(ev.get("score")) if num(ev.get("score")) is not None else ev.get("score"),
                        passed=passed, reason=e.get("reason"), detail=rest or None))
    return out


def _outcome(entries, release):
    unfinished = [u for u in unfinished_attempts(entries) if u["release"] == release]
    last = None
    for e in entries:
        if e["event"] in OUTCOME_EVENTS:
            last = e
    if unfinished:
        return "in progress or interrupted (%s)" % ", ".join(u["phase"] for u in unfinished)
    if last is None:
        return "no outcome recorded"
    if last["event"] == "promote":
        return "promoted (%s)" % last.get("phase")
    return {"rollback": "rolled back", "rollback_incomplete": "rollback incomplete"}.get(last["event"], last["event"]) \
        + " (%s)" % last.get("phase")


def build_model(entries, release, verification=None, series=None, metrics=None, title=None, secrets=()):
    """The report model of ``release`` from its ledger ``entries`` (in ledger order).

    ``verification``: the ledger's verification (``load_ledger``); ``series``: ``{slot: {name: [[t, v]]}}``;
    ``metrics``: what is said about the series (``notes``, ``provider``, ``queries``, ``step``, ``window``).
    Every string of the model is scrubbed of ``secrets`` and of URL userinfo.
    """
    if not isinstance(release, str) or not release:
        raise ReportError("release must be a non-empty string, got %r" % (release,))
    if title is not None and not isinstance(title, str):
        raise ReportError("title must be a string, got %r" % (title,))
    if verification is not None and not isinstance(verification, dict):
        raise ReportError("verification must be a dict (load_ledger), got %r" % (verification,))
    if metrics is not None and not isinstance(metrics, dict):
        raise ReportError("metrics must be a dict, got %r" % (metrics,))
    items = _check_entries(entries)
    foreign = [i for i, e in enumerate(items) if e.get("release") not in (None, release)]
    if foreign:
        raise ReportError("entries[%d].release: %r is not the release of the report (%s)"
                          % (foreign[0], items[foreign[0]].get("release"), release))
    series = check_series(series)
    phases = _phases(items)
    judge, gates = _judge(items), _gates(items)
    rollbacks = _rollbacks(items, judge, gates)
    start, end = span(items)
    ver = dict(verification or {})
    failed_checks = sum(1 for g in gates for r in g["results"] if r["passed"] is False)
    metrics = dict(metrics or {})
    metrics["series"] = series
    metrics["notes"] = list(metrics.get("notes") or [])
    metrics["available"] = any(points for named in series.values() for points in named.values())
    model = dict(
        schema=SCHEMA,
        title=title or "Rollout report: %s" % release,
        release=release,
        span=dict(start=start, end=end, start_ts=iso(start), end_ts=iso(end)),
        summary=dict(
            release=release, entries=len(items),
            phases_started=[p["phase"] for p in phases if p["attempts"]],
            phases_passed=[p["phase"] for p in phases if p["outcome"] == "promoted"],
            outcome=_outcome(items, release) if items else "no ledger entries",
            ledger_verified=ver.get("valid"), ledger_problem=ver.get("problem"),
            rollbacks=len(rollbacks), gates=len(gates), gate_checks_failed=failed_checks,
            judge_steps=len(judge), drills=sum(1 for e in items if e["event"] in DRILL_EVENTS)),
        ledger=ver,
        phases=phases,
        weights=_weights(items, phases),
        judge=judge,
        gates=gates,
        rollbacks=rollbacks,
        retention=_retention(items, phases),
        drills=_drills(items),
        metrics=metrics,
    )
    return scrub(model, secrets)


# ---------------------------------------------------------------- the whole report (what the module calls)

def make_report(ledger_path, release, key=None, provider=None, queries=None, window="1m", step=None, title=None,
                secrets=()):
    """Read and verify the ledger, read the metric series, build the model and its HTML.

    -> (model, html text, json text). ReportError/LedgerError for input that cannot give a report (no entry of
    ``release``, a bad ``queries`` or ``provider`` option); a provider that cannot be reached only adds a note.
    """
    entries, verification, releases = load_ledger(ledger_path, release, key=key)
    if not entries:
        raise ReportError("release: the ledger %s has no entries of release %r (releases in it: %s)" % (
            ledger_path, release, ", ".join(str(r) for r in releases) or "none, it is empty or missing"))
    verification["path"] = ledger_path
    queries = check_queries(queries)
    if not isinstance(window, str) or not re.match(r"^[0-9]+[smhd]\Z", window):
        raise ReportError("window: %r is not a Prometheus duration such as 30s, 1m or 5m" % (window,))
    start, end = span(entries)
    if step is not None and (num(step) is None or num(step) <= 0):
        raise ReportError("step: %r is not a number of seconds above 0" % (step,))
    step = num(step) if step is not None else auto_step(start, end)
    series, notes, described = {}, [], None
    plan = metric_plan(queries, window)
    if provider and queries:
        try:
            source = build_provider(provider)
        except MetricError as exc:
            raise ReportError("provider: %s" % scrub(str(exc), secrets))
        secrets = list(secrets) + source.secrets()
        described = source.describe()
        series, notes = fetch_series(source, plan, start, end, step, secrets=secrets)
    elif provider:
        notes.append("no queries given: no metric series (the playbook derives them from rollout_target)")
    elif queries:
        notes.append("no provider given: the queries were not run")
    rendered = {}
    for slot, name, expr in plan:
        rendered.setdefault(slot, {})[name] = expr
    metrics = dict(provider=described, queries=rendered, step=step, window=window, notes=notes)
    model = build_model(entries, release, verification=verification, series=series, metrics=metrics, title=title,
                        secrets=secrets)
    return model, render_html(model), json.dumps(model, sort_keys=True, indent=1) + "\n"


def _current(path):
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except (IOError, OSError):
        return None


def write_report(dest, files, check_mode=False, module=None, mode=0o644):
    """Write ``files`` (``{name: text}``) into the directory ``dest`` (created when missing), each atomically and
    only when its content differs. -> (changed, {name: path})."""
    paths = dict((name, os.path.join(dest, name)) for name in files)
    todo = [name for name, text in files.items() if _current(paths[name]) != text.encode("utf-8")]
    if todo and not check_mode:
        if not os.path.isdir(dest):
            os.makedirs(dest, 0o755)
        for name in todo:
            atomic_write(paths[name], files[name], new_mode=mode, module=module)
    return bool(todo), paths


__all__ = ["ReportError", "LedgerError", "load_ledger", "check_queries", "metric_plan", "fetch_series", "span",
           "auto_step", "build_model", "threshold_number", "make_report", "write_report"]
