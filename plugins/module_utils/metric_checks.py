# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Metric gate checks: validation and evaluation of one check. Pure logic.

A check reads one number (``query``, or ``ratio`` of two queries) through a
provider (see ``metric_providers``) and judges it with any of

* ``lt``, ``le``, ``gt``, ``ge``, ``eq`` (with ``tolerance``) and ``between: [min, max]`` (inclusive);
* ``max_increase`` / ``max_decrease`` (``"10%"`` or a fraction ``0.1``) relative to a baseline given by
  ``baseline_query``, ``baseline_file`` (+ ``baseline_key``) or ``baseline_value``; a zero baseline never
  hides an increase (``baseline_floor`` sets the smallest baseline used);
* ``min_samples`` with ``samples_query`` (the request count behind the value).

All criteria of a check must hold. Verdicts are ``pass``, ``fail`` or
``inconclusive``. No data (no series, NaN, fewer samples than ``min_samples``,
no baseline) is decided by ``on_no_data``: ``fail`` (default), ``inconclusive``
or ``pass`` - always said in the reason, never silent. Provider errors
(unreachable, rejected query) and several series where one was expected fail
the check.

Repeated evaluation (``run_gate``, ``failure_limit``, ``consecutive_failures``): see ``gate_run``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import math
import os

from ansible_collections.stagegate.rollout.plugins.module_utils.durations import parse_duration
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_base import (
    MetricError, MultipleSeriesError, NoDataError, ProviderError, single_value)
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_spec import (
    normalize_spec, query_dialect, spec_key)
from ansible_collections.stagegate.rollout.plugins.module_utils.query_template import render_query, validate_variables

VERDICTS = ("pass", "fail", "inconclusive")
ON_NO_DATA = ("fail", "inconclusive", "pass")
COMPARISONS = (("lt", "<"), ("le", "<="), ("gt", ">"), ("ge", ">="), ("eq", "=="))
CHECK_FIELDS = ("name", "query", "ratio", "provider", "vars", "window", "lt", "le", "gt", "ge", "eq", "tolerance",
                "between", "max_increase", "max_decrease", "baseline_query", "baseline_file", "baseline_key",
                "baseline_value", "baseline_floor", "min_samples", "samples_query", "on_no_data", "failure_limit",
                "consecutive_failures", "unit")


class CheckSpecError(ValueError):
    """A check (or gate option) is not valid; the message names the field, the value and what is accepted."""


def _num(value, field, allow_inf=False):
    if isinstance(value, bool) or value is None:
        raise CheckSpecError("%s: %r is not a number" % (field, value))
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise CheckSpecError("%s: %r is not a number" % (field, value))
    if math.isnan(v) or (math.isinf(v) and not allow_inf):
        raise CheckSpecError("%s: %r must be a finite number" % (field, value))
    return v


def _int(value, field, minimum):
    if isinstance(value, bool) or value is None:
        raise CheckSpecError("%s: %r is not a whole number >= %d" % (field, value, minimum))
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise CheckSpecError("%s: %r is not a whole number >= %d" % (field, value, minimum))
    if math.isnan(f) or f != int(f) or f < minimum:
        raise CheckSpecError("%s: %r is not a whole number >= %d" % (field, value, minimum))
    return int(f)


def parse_percent(value, field):
    """``"10%"`` / ``"+10%"`` -> 0.1; a bare number is a fraction (``0.1``). Returns a fraction >= 0."""
    if isinstance(value, bool) or value is None:
        raise CheckSpecError("%s: %r is not a percentage like '10%%' or a fraction like 0.1" % (field, value))
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("%"):
            try:
                frac = float(text[:-1].strip().lstrip("+")) / 100.0
            except ValueError:
                raise CheckSpecError("%s: %r is not a percentage like '10%%' or a fraction like 0.1" % (field, value))
        else:
            try:
                frac = float(text)
            except ValueError:
                raise CheckSpecError("%s: %r is not a percentage like '10%%' or a fraction like 0.1" % (field, value))
    else:
        try:
            frac = float(value)
        except (TypeError, ValueError):
            raise CheckSpecError("%s: %r is not a percentage like '10%%' or a fraction like 0.1" % (field, value))
    if math.isnan(frac) or math.isinf(frac) or frac < 0:
        raise CheckSpecError("%s: %r must be a percentage >= 0%% (like '10%%') or a fraction >= 0 (like 0.1)"
                             % (field, value))
    return frac


def load_baseline_file(path, field="baseline_file"):
    """Read a pinned baseline JSON file (any JSON object; see ``baseline_from_document``)."""
    try:
        with open(path) as fh:
            doc = json.load(fh)
    except (IOError, OSError) as exc:
        raise CheckSpecError("%s: cannot read %s: %s" % (field, path, exc))
    except ValueError as exc:
        raise CheckSpecError("%s: %s is not valid JSON: %s" % (field, path, exc))
    if not isinstance(doc, dict):
        raise CheckSpecError("%s: %s must hold a JSON object, got %s" % (field, path, type(doc).__name__))
    return doc


def baseline_from_document(doc, key, field):
    """The baseline number for ``key`` in a baseline document.

    Accepted: ``{"<key>": 0.42}``, a dotted path ``{"latency": {"p95": 0.42}}`` (key ``latency.p95``),
    ``{"metrics": {...}}``, ``{"baselines": {...}}`` or a saved metric_gate result
    (``{"checks": [{"name": "<key>", "observed": 0.42}, ...]}``).
    """
    candidates = [doc]
    for wrapper in ("metrics", "baselines", "baseline"):
        if isinstance(doc.get(wrapper), dict):
            candidates.append(doc[wrapper])
    for cand in candidates:
        node = cand
        found = True
        for part in key.split("."):
            if isinstance(node, dict) and part in node:
                node = node[part]
            else:
                found = False
                break
        if found:
            if isinstance(node, dict) and "observed" in node:
                node = node["observed"]
            return _num(node, "%s[%s]" % (field, key), allow_inf=False)
    if isinstance(doc.get("checks"), list):
        for item in doc["checks"]:
            if isinstance(item, dict) and item.get("name") == key and "observed" in item:
                return _num(item["observed"], "%s[%s].observed" % (field, key))
    raise CheckSpecError("%s: no baseline for %r in the file (top-level keys: %s)"
                         % (field, key, ", ".join(sorted(str(k) for k in doc)[:20])))


def _fmt(x, unit=None):
    if x is None:
        return "none"
    if isinstance(x, float):
        if math.isnan(x):
            return "NaN"
        if math.isinf(x):
            return "+Inf" if x > 0 else "-Inf"
        text = "%.6g" % x
    else:
        text = str(x)
    return "%s %s" % (text, unit) if unit else text


def validate_checks(checks, provider=None, variables=None, on_no_data="fail", failure_limit=None,
                    consecutive_failures=None, baseline_loader=load_baseline_file):
    """Validate and normalize a list of checks (gate-level values are the defaults of every check).

    Renders every query with the variables, so an unknown variable or an unsafe value fails here,
    before anything is read. Raises CheckSpecError naming ``checks[i].field``.
    """
    if not isinstance(checks, list) or not checks:
        raise CheckSpecError("checks must be a non-empty list of checks, got %r" % (checks,))
    if on_no_data not in ON_NO_DATA:
        raise CheckSpecError("on_no_data: %r is not accepted (accepted: %s)" % (on_no_data, ", ".join(ON_NO_DATA)))
    if failure_limit is not None:
        failure_limit = _int(failure_limit, "failure_limit", 0)
    if consecutive_failures is not None:
        consecutive_failures = _int(consecutive_failures, "consecutive_failures", 1)
    try:
        gate_vars = validate_variables(variables, "vars")
    except ValueError as exc:
        raise CheckSpecError(str(exc))
    gate_provider = None
    if provider:
        try:
            gate_provider = normalize_spec(provider, "provider")
        except ProviderError as exc:
            raise CheckSpecError(str(exc))
    out = []
    names = set()
    for i, raw in enumerate(checks):
        check = _validate_one(i, raw, gate_provider, gate_vars, on_no_data, failure_limit, consecutive_failures,
                              baseline_loader)
        if check["name"] in names:
            raise CheckSpecError("checks[%d].name: %r is used by another check; names must be unique"
                                 % (i, check["name"]))
        names.add(check["name"])
        out.append(check)
    return out


def _validate_one(i, raw, gate_provider, gate_vars, on_no_data, failure_limit, consecutive_failures, loader):
    where = "checks[%d]" % i
    if not isinstance(raw, dict):
        raise CheckSpecError("%s must be a dict (name, query, and a criterion such as lt: 0.05), got %r" % (where, raw))
    spec = dict((k, v) for k, v in raw.items() if v is not None)
    name = spec.get("name")
    if not isinstance(name, str) or not name.strip():
        raise CheckSpecError("%s.name is required (a non-empty string), got %r" % (where, name))
    where = "checks[%d] (%s)" % (i, name)
    unknown = set(spec) - set(CHECK_FIELDS)
    if unknown:
        raise CheckSpecError("%s: unknown fields %s (accepted: %s)"
                             % (where, ", ".join(sorted(unknown)), ", ".join(CHECK_FIELDS)))

    # provider
    if spec.get("provider"):
        try:
            prov = normalize_spec(spec["provider"], "%s.provider" % where)
        except ProviderError as exc:
            raise CheckSpecError(str(exc))
    elif gate_provider:
        prov = gate_provider
    else:
        raise CheckSpecError("%s.provider: no provider (set provider on the gate or on the check)" % where)
    dialect = query_dialect(prov)

    # variables and window
    try:
        variables = dict(gate_vars)
        variables.update(validate_variables(spec.get("vars"), "%s.vars" % where))
        if spec.get("window") is not None:
            parse_duration(spec["window"], "%s.window" % where)
            variables["window"] = spec["window"].strip()
    except ValueError as exc:
        raise CheckSpecError(str(exc))
    window = variables.get("window")

    def render(field, text):
        try:
            return render_query(text, variables, dialect, "%s.%s" % (where, field))
        except ValueError as exc:
            raise CheckSpecError(str(exc))

    # what is measured
    query = spec.get("query")
    ratio = spec.get("ratio")
    if (query is None) == (ratio is None):
        raise CheckSpecError("%s: give exactly one of query (one number) or ratio ({numerator, denominator})" % where)
    rendered_ratio = None
    if ratio is not None:
        if not isinstance(ratio, dict):
            raise CheckSpecError("%s.ratio must be a dict {numerator: <query>, denominator: <query>}, got %r"
                                 % (where, ratio))
        extra = set(k for k, v in ratio.items() if v is not None) - {"numerator", "denominator"}
        if extra or not ratio.get("numerator") or not ratio.get("denominator"):
            raise CheckSpecError("%s.ratio must have exactly numerator and denominator (queries), got keys %s"
                                 % (where, ", ".join(sorted(k for k, v in ratio.items() if v is not None))))
        rendered_ratio = (render("ratio.numerator", ratio["numerator"]),
                          render("ratio.denominator", ratio["denominator"]))
    rendered_query = render("query", query) if query is not None else None

    # criteria
    criteria = []
    for key, sym in COMPARISONS:
        if key in spec:
            criteria.append((key, _num(spec[key], "%s.%s" % (where, key), allow_inf=True)))
    tolerance = 0.0
    if "tolerance" in spec:
        tolerance = _num(spec["tolerance"], "%s.tolerance" % where)
        if tolerance < 0:
            raise CheckSpecError("%s.tolerance: %r must be >= 0" % (where, spec["tolerance"]))
        if "eq" not in spec:
            raise CheckSpecError("%s.tolerance is only used with eq" % where)
    between = None
    if "between" in spec:
        b = spec["between"]
        if not isinstance(b, (list, tuple)) or len(b) != 2:
            raise CheckSpecError("%s.between must be a list [min, max], got %r" % (where, b))
        lo = _num(b[0], "%s.between[0]" % where, allow_inf=True)
        hi = _num(b[1], "%s.between[1]" % where, allow_inf=True)
        if lo > hi:
            raise CheckSpecError("%s.between: min %r is greater than max %r" % (where, b[0], b[1]))
        between = (lo, hi)

    relative = None
    rel_keys = [k for k in ("max_increase", "max_decrease") if k in spec]
    base_keys = [k for k in ("baseline_query", "baseline_file", "baseline_value") if k in spec]
    if len(rel_keys) > 1:
        raise CheckSpecError("%s: give max_increase or max_decrease, not both (use two checks)" % where)
    if rel_keys:
        key = rel_keys[0]
        limit = parse_percent(spec[key], "%s.%s" % (where, key))
        if key == "max_decrease" and limit > 1:
            raise CheckSpecError("%s.max_decrease: %r is more than 100%%" % (where, spec[key]))
        if len(base_keys) != 1:
            raise CheckSpecError("%s.%s needs exactly one baseline: baseline_query, baseline_file or baseline_value "
                                 "(got %s)" % (where, key, ", ".join(base_keys) or "none"))
        relative = {"direction": "increase" if key == "max_increase" else "decrease", "limit": limit,
                    "query": None, "value": None, "source": None, "floor": None}
        if "baseline_query" in spec:
            relative["query"] = render("baseline_query", spec["baseline_query"])
            relative["source"] = "query"
        elif "baseline_file" in spec:
            path = spec["baseline_file"]
            bkey = spec.get("baseline_key", name)
            if not isinstance(bkey, str) or not bkey:
                raise CheckSpecError("%s.baseline_key must be a non-empty string, got %r" % (where, bkey))
            doc = loader(path, "%s.baseline_file" % where)
            relative["value"] = baseline_from_document(doc, bkey, "%s.baseline_file %s" % (where, os.path.basename(path)))
            relative["source"] = "file %s [%s]" % (path, bkey)
        else:
            relative["value"] = _num(spec["baseline_value"], "%s.baseline_value" % where)
            relative["source"] = "pinned value"
        if "baseline_floor" in spec:
            relative["floor"] = _num(spec["baseline_floor"], "%s.baseline_floor" % where)
            if relative["floor"] < 0:
                raise CheckSpecError("%s.baseline_floor: %r must be >= 0" % (where, spec["baseline_floor"]))
    else:
        for k in base_keys + [k for k in ("baseline_key", "baseline_floor") if k in spec]:
            raise CheckSpecError("%s.%s is only used with max_increase or max_decrease" % (where, k))

    if not criteria and between is None and relative is None:
        raise CheckSpecError("%s: no criterion; give at least one of lt, le, gt, ge, eq, between, max_increase, "
                             "max_decrease" % where)

    min_samples = None
    samples_query = None
    if "min_samples" in spec:
        min_samples = _int(spec["min_samples"], "%s.min_samples" % where, 0)
        if "samples_query" not in spec:
            raise CheckSpecError("%s.min_samples needs samples_query (a query giving the request count behind the "
                                 "value, for example sum(increase(http_requests_total[${window}])))" % where)
    if "samples_query" in spec:
        samples_query = render("samples_query", spec["samples_query"])

    check_on_no_data = spec.get("on_no_data", on_no_data)
    if check_on_no_data not in ON_NO_DATA:
        raise CheckSpecError("%s.on_no_data: %r is not accepted (accepted: %s)"
                             % (where, check_on_no_data, ", ".join(ON_NO_DATA)))
    flimit = failure_limit
    if "failure_limit" in spec:
        flimit = _int(spec["failure_limit"], "%s.failure_limit" % where, 0)
    consec = consecutive_failures
    if "consecutive_failures" in spec:
        consec = _int(spec["consecutive_failures"], "%s.consecutive_failures" % where, 1)
    if flimit is None and consec is None:
        flimit = 0
    unit = spec.get("unit")
    if unit is not None and not isinstance(unit, str):
        raise CheckSpecError("%s.unit must be a string such as ms, got %r" % (where, unit))

    check = {
        "name": name, "query": rendered_query, "ratio": rendered_ratio, "criteria": criteria, "tolerance": tolerance,
        "between": between, "relative": relative, "min_samples": min_samples, "samples_query": samples_query,
        "on_no_data": check_on_no_data, "failure_limit": flimit, "consecutive_failures": consec,
        "provider": prov, "provider_key": spec_key(prov), "window": window, "unit": unit,
    }
    check["threshold"] = describe_threshold(check)
    return check


def describe_threshold(check):
    unit = check.get("unit")
    parts = []
    for key, value in check["criteria"]:
        sym = dict(COMPARISONS)[key]
        if key == "eq" and check.get("tolerance"):
            parts.append("== %s (+/- %s)" % (_fmt(value, unit), _fmt(check["tolerance"])))
        else:
            parts.append("%s %s" % (sym, _fmt(value, unit)))
    if check.get("between"):
        lo, hi = check["between"]
        parts.append("between %s and %s" % (_fmt(lo), _fmt(hi, unit)))
    rel = check.get("relative")
    if rel:
        sign = "+" if rel["direction"] == "increase" else "-"
        op = "<=" if rel["direction"] == "increase" else ">="
        parts.append("%s baseline %s%s%%" % (op, sign, "%g" % (rel["limit"] * 100)))
    text = " and ".join(parts)
    if check.get("min_samples"):
        text += " (min %d samples)" % check["min_samples"]
    return text


def _is_nan(x):
    return isinstance(x, float) and math.isnan(x)


def evaluate_check(check, provider):
    """Evaluate one check once; returns the per-check result dict (never raises for metric errors)."""
    res = {
        "name": check["name"], "verdict": None, "reason": None, "observed": None, "threshold": check["threshold"],
        "window": check.get("window"), "samples": None, "query": check["query"], "no_data": False, "error": None,
        "provider": check["provider"]["type"],
    }
    if check.get("ratio"):
        res["query"] = "(%s) / (%s)" % check["ratio"]
    if check.get("unit"):
        res["unit"] = check["unit"]
    problems = []          # (kind, text): kind 'error' or 'nodata'
    observed = None
    try:
        if check.get("ratio"):
            num = _scalar(provider, check["ratio"][0])
            den = _scalar(provider, check["ratio"][1])
            res["numerator"] = num
            res["denominator"] = den
            observed = _ratio(num, den)
        else:
            observed = _scalar(provider, check["query"])
        res["observed"] = observed
        if _is_nan(observed):
            problems.append(("nodata", "value is NaN (no events in the window, e.g. 0/0)"))
    except NoDataError as exc:
        problems.append(("nodata", _strip_prefix(str(exc))))
    except MultipleSeriesError as exc:
        problems.append(("error", str(exc)))
    except MetricError as exc:
        problems.append(("error", "provider error: %s" % exc))

    rel = check.get("relative")
    baseline = None
    if rel:
        if rel["query"] is not None:
            try:
                baseline = _scalar(provider, rel["query"])
                if _is_nan(baseline):
                    problems.append(("nodata", "baseline is NaN"))
            except NoDataError as exc:
                problems.append(("nodata", "baseline: %s" % _strip_prefix(str(exc))))
            except MultipleSeriesError as exc:
                problems.append(("error", "baseline: %s" % exc))
            except MetricError as exc:
                problems.append(("error", "baseline: provider error: %s" % exc))
        else:
            baseline = rel["value"]
        res["baseline"] = baseline

    if check.get("samples_query"):
        try:
            samples = _scalar(provider, check["samples_query"])
            if _is_nan(samples):
                samples = 0.0
        except NoDataError:
            samples = 0.0
        except MultipleSeriesError as exc:
            problems.append(("error", "samples_query: %s" % exc))
            samples = None
        except MetricError as exc:
            problems.append(("error", "samples_query: provider error: %s" % exc))
            samples = None
        res["samples"] = samples
        if samples is not None and check.get("min_samples") is not None and samples < check["min_samples"]:
            problems.append(("nodata", "only %s samples, min_samples is %d" % (_fmt(samples), check["min_samples"])))

    label = _label(check)
    errors = [t for k, t in problems if k == "error"]
    if errors:
        res["verdict"] = "fail"
        res["error"] = errors[0]
        res["reason"] = "%s: %s" % (label, errors[0])
        return res
    nodata = [t for k, t in problems if k == "nodata"]
    if nodata:
        policy = check["on_no_data"]
        res["no_data"] = True
        res["verdict"] = policy
        seen = "observed %s; " % _fmt(observed, check.get("unit")) if observed is not None and not _is_nan(observed) else ""
        res["reason"] = "%s: no data: %s%s -> %s (on_no_data=%s)" % (label, seen, "; ".join(nodata), policy, policy)
        return res

    failed = []
    for key, value in check["criteria"]:
        ok = _compare(key, observed, value, check.get("tolerance", 0.0))
        if not ok:
            failed.append("%s %s" % (dict(COMPARISONS)[key], _fmt(value, check.get("unit"))))
    if check.get("between"):
        lo, hi = check["between"]
        if not lo <= observed <= hi:
            failed.append("between %s and %s" % (_fmt(lo), _fmt(hi, check.get("unit"))))
    if rel:
        limit_value, ok, how = _relative(observed, baseline, rel)
        res["limit"] = limit_value
        res["change"] = (observed - baseline) / abs(baseline) if baseline else None
        if not ok:
            failed.append(how)
        else:
            res["relative"] = how
    obs = _fmt(observed, check.get("unit"))
    context = _context(res)
    if failed:
        res["verdict"] = "fail"
        res["reason"] = "%s %s violates %s%s" % (label, obs, " and ".join(failed), context)
    else:
        res["verdict"] = "pass"
        res["reason"] = "%s %s within %s%s" % (label, obs, check["threshold"], context)
    return res


def _label(check):
    return check["name"]


def _context(res):
    bits = []
    if res.get("baseline") is not None:
        bits.append("baseline %s" % _fmt(res["baseline"], res.get("unit")))
        if res.get("change") is not None:
            bits.append("%+.1f%%" % (res["change"] * 100))
    if res.get("window"):
        bits.append("window %s" % res["window"])
    if res.get("samples") is not None:
        bits.append("%s samples" % _fmt(res["samples"]))
    return " (%s)" % ", ".join(bits) if bits else ""


def _strip_prefix(text):
    return text[len("no data: "):] if text.startswith("no data: ") else text


def _scalar(provider, expr):
    return single_value(provider.query(expr), expr)


def _ratio(num, den):
    if _is_nan(num) or _is_nan(den):
        return float("nan")
    if den == 0:
        if num == 0:
            return float("nan")
        return math.copysign(float("inf"), num)
    return num / den


def _compare(key, x, value, tolerance):
    if key == "lt":
        return x < value
    if key == "le":
        return x <= value
    if key == "gt":
        return x > value
    if key == "ge":
        return x >= value
    if math.isinf(x) or math.isinf(value):
        return x == value
    return abs(x - value) <= tolerance


def _relative(observed, baseline, rel):
    """(limit, ok, text) of a max_increase / max_decrease criterion."""
    base = baseline
    if rel.get("floor") is not None:
        base = max(base, rel["floor"])
    pct = "%g%%" % (rel["limit"] * 100)
    if rel["direction"] == "increase":
        limit = base + abs(base) * rel["limit"]
        if base == 0:
            ok = observed <= 0
            how = ("<= baseline +%s (baseline is 0: any increase is unbounded; set baseline_floor to judge "
                   "increases from 0)" % pct) if not ok else "<= baseline +%s" % pct
            return limit, ok, how
        return limit, observed <= limit, "<= baseline +%s (limit %s)" % (pct, _fmt(limit))
    limit = base - abs(base) * rel["limit"]
    return limit, observed >= limit, ">= baseline -%s (limit %s)" % (pct, _fmt(limit))
