# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of metric gate checks: validation, evaluation edge cases, repeated-evaluation semantics."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re

import pytest

from ansible_collections.stagegate.rollout.plugins.module_utils.gate_run import (
    gate_schedule, output, overall_verdict, run_gate)
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_checks import (
    CheckSpecError, baseline_from_document, evaluate_check, parse_percent, validate_checks)
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_base import (
    QueryError, Sample, UnreachableError)

PROV = {"type": "prometheus", "url": "http://127.0.0.1:9090"}
NAN = float("nan")
INF = float("inf")


class FakeProvider(object):
    """Answers queries from a dict: a number (one series), a list of numbers (several), None (no series),
    an exception (raised) or a callable (called)."""

    def __init__(self, answers):
        self.answers = answers
        self.asked = []

    def query(self, expr, at=None):
        self.asked.append(expr)
        a = self.answers[expr]
        if callable(a) and not isinstance(a, Exception):
            a = a()
        if isinstance(a, Exception):
            raise a
        if a is None:
            return []
        if isinstance(a, list):
            return [Sample({"pod": str(i)}, v) for i, v in enumerate(a)]
        return [Sample({}, a)]


def one(check, answers, **kw):
    checks = validate_checks([check], provider=PROV, **kw)
    return evaluate_check(checks[0], FakeProvider(answers))


# ---------------------------------------------------------------------------
# validation: bad input names the field

@pytest.mark.parametrize("checks,needle", [
    ("error_rate < 5%", "checks must be a non-empty list"),
    ([], "checks must be a non-empty list"),
    (["x"], "checks[0] must be a dict"),
    ([{"query": "x", "lt": 1}], "checks[0].name is required"),
    ([{"name": "a", "query": "x", "lt": 1}, {"name": "a", "query": "y", "lt": 1}], "checks[1].name: 'a' is used"),
    ([{"name": "a", "query": "x", "lt": 1, "treshold": 2}], "unknown fields treshold"),
    ([{"name": "a", "lt": 1}], "checks[0] (a): give exactly one of query"),
    ([{"name": "a", "query": "x", "ratio": {"numerator": "p", "denominator": "q"}, "lt": 1}], "exactly one of query"),
    ([{"name": "a", "ratio": {"numerator": "p"}, "lt": 1}], "checks[0] (a).ratio must have exactly"),
    ([{"name": "a", "query": "x"}], "checks[0] (a): no criterion"),
    ([{"name": "a", "query": "x", "lt": "five"}], "checks[0] (a).lt: 'five' is not a number"),
    ([{"name": "a", "query": "x", "lt": True}], "checks[0] (a).lt"),
    ([{"name": "a", "query": "x", "between": [5]}], "checks[0] (a).between must be a list [min, max]"),
    ([{"name": "a", "query": "x", "between": [5, 1]}], "checks[0] (a).between: min 5 is greater than max 1"),
    ([{"name": "a", "query": "x", "max_increase": "ten percent", "baseline_value": 1}],
     "checks[0] (a).max_increase: 'ten percent' is not a percentage"),
    ([{"name": "a", "query": "x", "max_increase": "-5%", "baseline_value": 1}], "checks[0] (a).max_increase"),
    ([{"name": "a", "query": "x", "max_increase": "10%"}], "checks[0] (a).max_increase needs exactly one baseline"),
    ([{"name": "a", "query": "x", "max_increase": "10%", "baseline_value": 1, "baseline_query": "y"}],
     "needs exactly one baseline"),
    ([{"name": "a", "query": "x", "max_increase": "10%", "max_decrease": "10%", "baseline_value": 1}],
     "max_increase or max_decrease, not both"),
    ([{"name": "a", "query": "x", "max_decrease": "150%", "baseline_value": 1}], "checks[0] (a).max_decrease"),
    ([{"name": "a", "query": "x", "lt": 1, "baseline_query": "y"}], "checks[0] (a).baseline_query is only used"),
    ([{"name": "a", "query": "x", "lt": 1, "min_samples": 100}], "checks[0] (a).min_samples needs samples_query"),
    ([{"name": "a", "query": "x", "lt": 1, "min_samples": -1, "samples_query": "n"}], "checks[0] (a).min_samples"),
    ([{"name": "a", "query": "x", "lt": 1, "on_no_data": "ignore"}], "checks[0] (a).on_no_data: 'ignore'"),
    ([{"name": "a", "query": "x", "lt": 1, "failure_limit": -1}], "checks[0] (a).failure_limit"),
    ([{"name": "a", "query": "x", "lt": 1, "consecutive_failures": 0}], "checks[0] (a).consecutive_failures"),
    ([{"name": "a", "query": "x", "lt": 1, "tolerance": 0.1}], "checks[0] (a).tolerance is only used with eq"),
    ([{"name": "a", "query": "x", "lt": 1, "window": "1 minute"}], "checks[0] (a).window"),
    ([{"name": "a", "query": "rate(x[${window}])", "lt": 1}], "checks[0] (a).query: unknown variable ${window}"),
    ([{"name": "a", "query": "x{s=\"${service}\"}", "lt": 1, "vars": {"service": ["a"]}}], "checks[0] (a).vars.service"),
    ([{"name": "a", "query": "x", "lt": 1, "provider": {"type": "graphite"}}], "checks[0] (a).provider.type"),
    ([{"name": "a", "query": "x", "lt": 1, "unit": 5}], "checks[0] (a).unit"),
])
def test_bad_checks_name_the_field(checks, needle):
    with pytest.raises(CheckSpecError) as exc:
        validate_checks(checks, provider=PROV)
    assert needle in str(exc.value)


def test_bad_gate_level_options():
    good = [{"name": "a", "query": "x", "lt": 1}]
    for kw, needle in ((dict(on_no_data="skip"), "on_no_data: 'skip'"), (dict(failure_limit=-2), "failure_limit"),
                       (dict(consecutive_failures=0), "consecutive_failures"),
                       (dict(variables={"window": "5"}), "vars.window"), (dict(variables="x"), "vars must be a dict")):
        with pytest.raises(CheckSpecError) as exc:
            validate_checks(good, provider=PROV, **kw)
        assert needle in str(exc.value)
    with pytest.raises(CheckSpecError) as exc:
        validate_checks(good)
    assert "checks[0] (a).provider: no provider" in str(exc.value)
    with pytest.raises(CheckSpecError) as exc:
        validate_checks(good, provider={"url": "ftp://x"})
    assert "provider.url" in str(exc.value)


def test_gate_schedule():
    assert gate_schedule(None, None) == (None, None)
    assert gate_schedule("10s", "5m") == (10.0, 300.0)
    assert gate_schedule(1, 3) == (1.0, 3.0)
    for args, needle in ((("10s", None), "interval '10s' needs duration"), ((None, "5m"), "needs interval"),
                         (("soon", "5m"), "interval"), (("10s", -1), "duration")):
        with pytest.raises(CheckSpecError) as exc:
            gate_schedule(*args)
        assert needle in str(exc.value)


def test_parse_percent():
    assert parse_percent("10%", "f") == pytest.approx(0.1)
    assert parse_percent("+10 %", "f") == pytest.approx(0.1)
    assert parse_percent(0.1, "f") == 0.1
    assert parse_percent("0.25", "f") == 0.25


def test_baseline_file_shapes_and_errors(tmp_path):
    assert baseline_from_document({"p95": 0.4}, "p95", "f") == 0.4
    assert baseline_from_document({"latency": {"p95": 0.4}}, "latency.p95", "f") == 0.4
    assert baseline_from_document({"metrics": {"p95": 0.4}}, "p95", "f") == 0.4
    assert baseline_from_document({"checks": [{"name": "p95", "observed": 0.4}]}, "p95", "f") == 0.4
    with pytest.raises(CheckSpecError) as exc:
        baseline_from_document({"p99": 1}, "p95", "checks[0].baseline_file b.json")
    assert "no baseline for 'p95'" in str(exc.value) and "p99" in str(exc.value)
    with pytest.raises(CheckSpecError):
        baseline_from_document({"p95": "fast"}, "p95", "f")
    check = {"name": "p95", "query": "x", "max_increase": "10%", "baseline_file": str(tmp_path / "missing.json")}
    with pytest.raises(CheckSpecError) as exc:
        validate_checks([check], provider=PROV)
    assert "checks[0] (p95).baseline_file: cannot read" in str(exc.value)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CheckSpecError) as exc:
        validate_checks([dict(check, baseline_file=str(bad))], provider=PROV)
    assert "is not valid JSON" in str(exc.value)
    good = tmp_path / "base.json"
    good.write_text(json.dumps({"final_bench": {"p95_ms": 200}}))
    c = validate_checks([dict(check, baseline_file=str(good), baseline_key="final_bench.p95_ms")], provider=PROV)[0]
    assert c["relative"]["value"] == 200.0


def test_queries_rendered_with_gate_and_check_variables():
    c = validate_checks([{"name": "e", "query": 'rate(x{service="${service}",version="${version}"}[${window}])',
                          "lt": 1, "vars": {"version": "v2"}, "window": "30s"}],
                        provider=PROV, variables={"service": "shop", "version": "v1", "window": "60s"})[0]
    assert c["query"] == 'rate(x{service="shop",version="v2"}[30s])' and c["window"] == "30s"


# ---------------------------------------------------------------------------
# one evaluation

def test_comparisons_pass_and_fail_with_reason():
    r = one({"name": "error_rate", "query": "e", "lt": 0.05, "window": "60s"}, {"e": 0.012})
    assert r["verdict"] == "pass" and r["observed"] == 0.012 and r["threshold"] == "< 0.05"
    assert r["window"] == "60s" and "error_rate 0.012 within < 0.05 (window 60s)" == r["reason"]
    r = one({"name": "error_rate", "query": "e", "lt": 0.05, "window": "60s"}, {"e": 0.0721})
    assert r["verdict"] == "fail" and r["reason"] == "error_rate 0.0721 violates < 0.05 (window 60s)"
    assert one({"name": "a", "query": "e", "le": 1}, {"e": 1.0})["verdict"] == "pass"
    assert one({"name": "a", "query": "e", "lt": 1}, {"e": 1.0})["verdict"] == "fail"
    assert one({"name": "a", "query": "e", "ge": 1}, {"e": 1.0})["verdict"] == "pass"
    assert one({"name": "a", "query": "e", "gt": 1}, {"e": 1.0})["verdict"] == "fail"
    assert one({"name": "a", "query": "e", "eq": 1, "tolerance": 0.01}, {"e": 1.005})["verdict"] == "pass"
    assert one({"name": "a", "query": "e", "eq": 1}, {"e": 1.005})["verdict"] == "fail"
    assert one({"name": "a", "query": "e", "between": [3, 7]}, {"e": 7.0})["verdict"] == "pass"
    r = one({"name": "a", "query": "e", "between": [3, 7]}, {"e": 8.0})
    assert r["verdict"] == "fail" and "between 3 and 7" in r["reason"]
    r = one({"name": "lat", "query": "e", "gt": 0, "lt": 5000, "unit": "ms"}, {"e": 6200.0})
    assert r["verdict"] == "fail" and "lat 6200 ms violates < 5000 ms" in r["reason"]


def test_infinity_is_a_value_nan_is_no_data():
    r = one({"name": "a", "query": "e", "lt": 5}, {"e": INF})
    assert r["verdict"] == "fail" and "+Inf" in r["reason"]
    assert one({"name": "a", "query": "e", "gt": 5}, {"e": INF})["verdict"] == "pass"
    assert one({"name": "a", "query": "e", "eq": INF}, {"e": INF})["verdict"] == "pass"
    r = one({"name": "a", "query": "e", "lt": 5}, {"e": NAN})
    assert r["verdict"] == "fail" and r["no_data"] and "NaN" in r["reason"] and "on_no_data=fail" in r["reason"]


@pytest.mark.parametrize("policy", ["fail", "inconclusive", "pass"])
def test_no_data_policy_is_explicit(policy):
    r = one({"name": "a", "query": "e", "lt": 5}, {"e": None}, on_no_data=policy)
    assert r["verdict"] == policy and r["no_data"] and r["observed"] is None
    assert "no data" in r["reason"] and "on_no_data=%s" % policy in r["reason"]
    # per-check override
    r = one({"name": "a", "query": "e", "lt": 5, "on_no_data": "inconclusive"}, {"e": None}, on_no_data=policy)
    assert r["verdict"] == "inconclusive"


def test_empty_vector_is_never_a_silent_pass():
    r = one({"name": "a", "query": "e", "lt": 5}, {"e": None})
    assert r["verdict"] == "fail"


def test_multiple_series_is_an_error_not_a_first_pick():
    r = one({"name": "a", "query": "e", "lt": 5}, {"e": [1.0, 9.0]}, on_no_data="pass")
    assert r["verdict"] == "fail" and "2 series where one was expected" in r["reason"] and r["error"]


def test_provider_errors_fail_closed_whatever_on_no_data():
    err = QueryError('Prometheus rejected the query (bad_data, HTTP 400): 1:5: parse error: unexpected "}"')
    r = one({"name": "a", "query": "e", "lt": 5}, {"e": err}, on_no_data="pass")
    assert r["verdict"] == "fail" and 'parse error: unexpected "}"' in r["reason"]
    r = one({"name": "a", "query": "e", "lt": 5}, {"e": UnreachableError("Prometheus x unreachable after 3 attempt(s)")},
            on_no_data="inconclusive")
    assert r["verdict"] == "fail" and "unreachable" in r["reason"]


def test_ratio_p99_over_p95():
    c = {"name": "tail", "ratio": {"numerator": "p99", "denominator": "p95"}, "le": 2.0}
    r = one(c, {"p99": 0.3, "p95": 0.2})
    assert r["verdict"] == "pass" and r["observed"] == pytest.approx(1.5) and r["numerator"] == 0.3
    r = one(c, {"p99": 0.5, "p95": 0.2})
    assert r["verdict"] == "fail" and "2.5 violates <= 2" in r["reason"]
    assert one(c, {"p99": 0.5, "p95": 0.0})["verdict"] == "fail"                  # x/0 = +Inf
    r = one(c, {"p99": 0.0, "p95": 0.0})
    assert r["verdict"] == "fail" and r["no_data"]                               # 0/0 = no data
    r = one(c, {"p99": 0.3, "p95": None}, on_no_data="inconclusive")
    assert r["verdict"] == "inconclusive"


def test_max_increase_against_a_baseline_query():
    c = {"name": "p95", "query": "canary", "max_increase": "10%", "baseline_query": "stable"}
    r = one(c, {"canary": 0.105, "stable": 0.1})
    assert r["verdict"] == "pass" and r["baseline"] == 0.1 and r["limit"] == pytest.approx(0.11)
    assert "+5.0%" in r["reason"]
    r = one(c, {"canary": 0.12, "stable": 0.1})
    assert r["verdict"] == "fail" and "<= baseline +10% (limit 0.11)" in r["reason"] and "+20.0%" in r["reason"]
    r = one(c, {"canary": 0.12, "stable": None})
    assert r["verdict"] == "fail" and r["no_data"] and "baseline" in r["reason"]


def test_zero_baseline_never_hides_an_increase():
    c = {"name": "errors", "query": "canary", "max_increase": "10%", "baseline_query": "stable"}
    assert one(c, {"canary": 0.0, "stable": 0.0})["verdict"] == "pass"
    r = one(c, {"canary": 0.001, "stable": 0.0})
    assert r["verdict"] == "fail" and "baseline is 0" in r["reason"] and "baseline_floor" in r["reason"]
    r = one(dict(c, baseline_floor=0.01), {"canary": 0.001, "stable": 0.0})
    assert r["verdict"] == "pass"


def test_max_decrease_and_pinned_values(tmp_path):
    c = {"name": "throughput", "query": "q", "max_decrease": "5%", "baseline_value": 1000}
    assert one(c, {"q": 960.0})["verdict"] == "pass"
    assert one(c, {"q": 940.0})["verdict"] == "fail"
    f = tmp_path / "baseline.json"
    f.write_text(json.dumps({"checks": [{"name": "p95_latency", "observed": 0.2}]}))
    c = {"name": "p95_latency", "query": "q", "max_increase": "10%", "baseline_file": str(f)}
    assert one(c, {"q": 0.219})["verdict"] == "pass"
    r = one(c, {"q": 0.23})
    assert r["verdict"] == "fail" and r["baseline"] == 0.2


def test_min_samples():
    c = {"name": "e", "query": "e", "lt": 0.05, "samples_query": "n", "min_samples": 100}
    r = one(c, {"e": 0.0, "n": 1200.0})
    assert r["verdict"] == "pass" and r["samples"] == 1200.0 and "1200 samples" in r["reason"]
    r = one(c, {"e": 0.0, "n": 12.0})
    assert r["verdict"] == "fail" and r["no_data"] and "only 12 samples, min_samples is 100" in r["reason"]
    assert "observed 0" in r["reason"]
    r = one(c, {"e": 0.0, "n": None}, on_no_data="inconclusive")
    assert r["verdict"] == "inconclusive" and r["samples"] == 0.0
    r = one(c, {"e": 0.0, "n": [1.0, 2.0]})
    assert r["verdict"] == "fail" and "samples_query" in r["reason"]


# ---------------------------------------------------------------------------
# repeated evaluation: failure_limit vs consecutive_failures

class FakeClock(object):
    def __init__(self):
        self.t = 0.0
        self.sleeps = []

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.sleeps.append(s)
        self.t += s


def run_sequence(seq, interval=10, duration=None, **kw):
    """Run one check whose evaluations return values from ``seq`` ('P' pass, 'F' fail, 'N' no data)."""
    values = iter(seq)
    answers = {"e": lambda: {"P": 0.01, "F": 0.5, "N": None}[next(values)]}
    checks = validate_checks([{"name": "e", "query": "e", "lt": 0.05}], provider=PROV, **kw)
    prov = FakeProvider(answers)
    clock = FakeClock()
    if duration is None:
        duration = interval * (len(seq) - 1)
    return run_gate(checks, lambda c: evaluate_check(c, prov), interval=interval, duration=duration, clock=clock,
                    sleep=clock.sleep), clock


def test_default_is_fail_on_first_failure():
    run, clock = run_sequence("PPFPP")
    assert run["verdict"] == "fail" and run["evaluations"] == 3 and run["stopped_early"]
    assert "more than failure_limit 0" in run["checks"][0]["reason"]


def test_failure_limit_counts_failures_in_total():
    # F P F P F P: three failures, never two in a row
    run, dummy = run_sequence("FPFPFP", failure_limit=1)
    assert run["verdict"] == "fail" and run["evaluations"] == 3
    assert run["checks"][0]["failures"] == 2
    run, dummy = run_sequence("FPFPFP", failure_limit=3)
    assert run["verdict"] == "pass" and run["evaluations"] == 6 and run["checks"][0]["failures"] == 3


def test_consecutive_failures_forgive_isolated_blips():
    run, dummy = run_sequence("FPFPFP", consecutive_failures=2)
    assert run["verdict"] == "pass" and run["checks"][0]["failures"] == 3
    assert run["checks"][0]["max_consecutive_failures"] == 1
    # P F F P: trips at the second failure in a row, even though failure_limit 3 would tolerate it
    run, dummy = run_sequence("PFFP", consecutive_failures=2)
    assert run["verdict"] == "fail" and run["evaluations"] == 3
    assert "2 failed evaluations in a row (consecutive_failures 2)" in run["checks"][0]["reason"]
    run, dummy = run_sequence("PFFP", failure_limit=3)
    assert run["verdict"] == "pass"
    # both: whichever trips first
    run, dummy = run_sequence("FPFPFP", failure_limit=1, consecutive_failures=2)
    assert run["verdict"] == "fail" and run["evaluations"] == 3


def test_no_data_rounds_and_inconclusive_endings():
    run, dummy = run_sequence("NNN", on_no_data="inconclusive")
    assert run["verdict"] == "inconclusive" and "no evaluation passed" in run["checks"][0]["reason"]
    run, dummy = run_sequence("PPN", on_no_data="inconclusive")
    assert run["verdict"] == "inconclusive" and "last evaluation inconclusive" in run["checks"][0]["reason"]
    run, dummy = run_sequence("NPP", on_no_data="inconclusive")
    assert run["verdict"] == "pass"
    # an inconclusive evaluation breaks a run of failures
    run, dummy = run_sequence("FNFNF", on_no_data="inconclusive", consecutive_failures=2)
    assert run["verdict"] == "inconclusive" and run["evaluations"] == 5
    assert run["checks"][0]["max_consecutive_failures"] == 1
    # no data fails closed by default
    run, dummy = run_sequence("PPN")
    assert run["verdict"] == "fail" and run["checks"][0]["no_data"]
    # tolerated failures alone never make a pass
    run, dummy = run_sequence("FF", failure_limit=5)
    assert run["verdict"] == "inconclusive" and "no evaluation passed" in run["checks"][0]["reason"]


def test_schedule_every_interval_for_duration():
    run, clock = run_sequence("PPPPPPP", interval=10, duration=60)
    assert run["evaluations"] == 7 and clock.sleeps == [10] * 6
    assert [h["elapsed"] for h in run["history"]] == [0, 10, 20, 30, 40, 50, 60]
    run, clock = run_sequence("PPPPPPP", interval=10, duration=65)
    assert run["evaluations"] == 7
    # once
    checks = validate_checks([{"name": "e", "query": "e", "lt": 1}], provider=PROV)
    run = run_gate(checks, lambda c: evaluate_check(c, FakeProvider({"e": 0.5})))
    assert run["evaluations"] == 1 and run["verdict"] == "pass" and not run["stopped_early"]


def test_gate_stops_at_the_first_check_that_trips_and_reports_all():
    checks = validate_checks([{"name": "ok", "query": "a", "lt": 1}, {"name": "bad", "query": "b", "lt": 1},
                              {"name": "nodata", "query": "c", "lt": 1, "on_no_data": "inconclusive"}], provider=PROV)
    prov = FakeProvider({"a": 0.5, "b": 2.0, "c": None})
    clock = FakeClock()
    rounds = []
    run = run_gate(checks, lambda c: evaluate_check(c, prov), interval=5, duration=30, clock=clock, sleep=clock.sleep,
                   before_round=lambda: rounds.append(1))
    assert run["verdict"] == "fail" and run["evaluations"] == 1 and len(rounds) == 1
    assert [c["verdict"] for c in run["checks"]] == ["pass", "fail", "inconclusive"]
    assert run["summary"].startswith("fail: 1 of 3 check(s) failed: bad 2 violates < 1")
    assert overall_verdict([{"verdict": "pass"}, {"verdict": "inconclusive"}]) == "inconclusive"
    assert overall_verdict([{"verdict": "pass"}]) == "pass"


def test_output_is_valid_json():
    checks = validate_checks([{"name": "e", "query": "e", "lt": 1}], provider=PROV)
    run = output(run_gate(checks, lambda c: evaluate_check(c, FakeProvider({"e": NAN}))))
    text = json.dumps(run, allow_nan=False)
    assert '"observed": "NaN"' in text


def test_docs_check_lists_are_valid():
    """The ready-to-copy check lists of docs/gates.md validate (names, criteria, variables)."""
    import yaml
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "..", "..", "..", "docs", "gates.md")) as fh:
        text = fh.read()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    seen = 0
    for block in blocks:
        doc = yaml.safe_load(block)
        tasks = doc if isinstance(doc, list) else [doc]
        for task in tasks:
            if not isinstance(task, dict):
                continue
            args = task.get("stagegate.rollout.metric_gate")
            if not args:
                continue
            variables = {k: ("v" if "{{" in str(v) else v) for k, v in (args.get("vars") or {}).items()}
            checks = json.loads(re.sub(r"\{\{[^}]*\}\}", "/tmp/x", json.dumps(args["checks"])))
            for c in checks:
                if c.get("baseline_file"):
                    c.pop("baseline_file")
                    c["baseline_value"] = 1.0
            provider = args.get("provider") or {"type": "prometheus", "url": "http://127.0.0.1:9090"}
            if "{{" in json.dumps(provider):
                provider = {"type": provider.get("type", "prometheus"), "url": "http://127.0.0.1:9090"}
            validate_checks(checks, provider=provider, variables=variables)
            seen += 1
    assert seen >= 6
