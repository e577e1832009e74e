# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollout report: its model from a real (synthetic) ledger, its HTML sections and plots, secrets, partial
ledgers, metric series and their failures, bad input."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

import pytest

from ansible_collections.stagegate.rollout.plugins.module_utils.ledger import Ledger, build_record
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_base import QueryError, UnreachableError
from ansible_collections.stagegate.rollout.plugins.module_utils.rollout_report import (
    ReportError, build_model, check_queries, fetch_series, load_ledger, metric_plan, threshold_number)
from ansible_collections.stagegate.rollout.plugins.module_utils.rollout_report_html import SECTIONS, render_html

T0 = 1735732800.0  # 2025-01-01T12:00:00Z
TOKEN = "tok-SECRET-4711"
USERINFO_PW = "s3cr3t-pw"


def ts(offset):
    from ansible_collections.stagegate.rollout.plugins.module_utils.rollout_report import iso
    return iso(T0 + offset)


def write(ledger, offset, release, phase, event, step=None, decision=None, reason=None, evidence=None):
    record = build_record(release, phase, event, step=step, decision=decision, reason=reason, evidence=evidence)[0]
    return ledger.append(record, ts=ts(offset))[0]


def errors(e_fail, e_pass):
    return {"e_fail": e_fail, "fail_threshold": 100.0, "e_pass": e_pass, "pass_threshold": 20.0,
            "canary_rate": 0.01, "baseline_rate": 0.01}


def gate_results(err, p99, passed=True):
    return [{"name": "canary error rate", "observed": err, "threshold": 0.05, "passed": passed, "window": "60s",
             "query": "sum(rate(app_requests_total{code=~\"5..\"}[60s]))"},
            {"name": "canary p99 latency", "observed": p99, "threshold": "< 5000", "passed": True, "window": "60s",
             "query": "histogram_quantile(0.99, ...)"}]


def full_ledger(path, release="v2"):
    """staging promoted; canary steps 10 and 25 judged, the second fails (fast abort), rolled back and replayed;
    a chaos drill and a sentinel; an entry of another release in between."""
    led = Ledger(str(path))
    write(led, 0, release, "staging", "phase_start", decision="start",
          evidence={"retention": {"max_age": "72h", "max_msgs": -1, "max_bytes": -1}, "steps": None})
    write(led, 20, release, "staging", "gate", step="probes", decision="pass",
          evidence={"results": [{"name": "probes failed", "observed": "0", "threshold": "<= 0", "passed": "True"}]})
    write(led, 25, release, "staging", "promote", decision="promote", evidence={"fingerprint": "abc"})
    write(led, 26, "v1", "monitor", "drift_alarm", decision="alarm")
    write(led, 30, release, "canary", "phase_start", decision="start",
          evidence={"retention": {"max_age": "72h", "max_msgs": -1, "max_bytes": -1},
                    "steps": [{"weight": 10}, {"weight": 25}, {"weight": 50}, {"weight": 100}]})
    write(led, 90, release, "canary", "gate", step="1", decision="pass",
          evidence={"verdict": "pass", "window": "60s", "results": gate_results(0.01, 120.0)})
    write(led, 92, release, "canary", "judge", step="1", decision="continue",
          evidence={"verdict": "pass", "weight": "10", "looks": "12", "errors": errors(0.4, 25.0),
                    "requests": {"canary": 1200, "baseline": 10800}, "fast_abort": None})
    write(led, 150, release, "canary", "gate", step="2", decision="pass",
          evidence={"verdict": "pass", "window": "60s", "results": gate_results(0.02, 130.0)})
    write(led, 160, release, "canary", "judge", step="2", decision="rollback",
          reason="canary error rate 4x baseline, see http://alice:%s@prom.example:9090/graph" % USERINFO_PW,
          evidence={"verdict": "fail", "weight": 25, "looks": 7, "errors": errors("inf", 0.01),
                    "requests": {"canary": 800, "baseline": 2400},
                    "fast_abort": {"applied": True, "ms_after_verdict": 2.1, "decided_at": T0 + 159.9,
                                   "applied_at": T0 + 159.9021, "weights": {"web1_canary": 0}},
                    "notify": {"webhook_url": "https://hooks.example/abc"}})
    write(led, 165, release, "canary", "rollback", decision="rolled_back", reason="canary judge: fail at 25 %",
          evidence={"hosts": ["web1"], "canary_weight": 0, "weights_after": {"web1_canary": 0, "web1_stable": 100},
                    "traffic_elapsed_ms": "3.4", "left": [], "events_replayed": 42,
                    "replay": {"replay": "from_time", "changed": True}})
    write(led, 170, release, "canary", "chaos", step="kill-canary", decision="pass",
          evidence={"drill": "kill the canary mid-step", "score": 0.95, "passed": True, "recovery_s": 4.2})
    write(led, 175, release, "monitor", "sentinel", decision="fail",
          evidence={"name": "orders sentinel", "passed": False, "hits": 0})
    return led


def series():
    def pts(v, n=10):
        return [[T0 + 30 + 15 * i, v * (1 + i / 10.0)] for i in range(n)]
    return {"stable": {"error_rate": pts(0.01), "p99_latency_ms": pts(120.0)},
            "canary": {"error_rate": pts(0.04), "p99_latency_ms": pts(180.0)}}


@pytest.fixture
def ledger(tmp_path):
    return full_ledger(tmp_path / "ledger.jsonl")


@pytest.fixture
def model(ledger):
    entries, verification, releases = load_ledger(ledger.path, "v2")
    assert releases == ["v2", "v1"]
    return build_model(entries, "v2", verification=verification, series=series(),
                       metrics={"provider": {"type": "prometheus", "url": "http://prom.example:9090"},
                                "notes": ["token %s was used" % TOKEN]}, secrets=[TOKEN])


def test_model_summary_and_phases(model):
    s = model["summary"]
    assert s["release"] == "v2"
    assert s["phases_started"] == ["staging", "canary"]
    assert s["phases_passed"] == ["staging"]
    assert s["outcome"] == "rolled back (canary)"
    assert s["ledger_verified"] is True and model["ledger"]["count"] == 12
    assert s["rollbacks"] == 1 and s["judge_steps"] == 2 and s["gates"] == 3 and s["drills"] == 2
    assert [p["phase"] for p in model["phases"]] == ["staging", "canary", "monitor"]
    canary = model["phases"][1]
    assert canary["outcome"] == "rolled_back" and canary["steps"] == [10, 25, 50, 100]
    assert [e["event"] for e in canary["events"]] == ["phase_start", "gate", "judge", "gate", "judge", "rollback", "chaos"]
    assert model["span"]["start_ts"] == "2025-01-01T12:00:00.000000Z" and model["span"]["end"] == T0 + 175


def test_model_weights_judge_gates_rollback(model):
    # 0 at the canary start, 10 % from the start, 25 % from the end of step 1, 0 at the fast abort and the rollback
    assert model["weights"] == [[T0 + 30, 0], [T0 + 30, 10], [T0 + 92, 25], [T0 + 159.9021, 0], [T0 + 165, 0]]
    j1, j2 = model["judge"]
    assert (j1["weight"], j1["looks"], j1["e_fail"], j1["e_pass"], j1["pass_threshold"]) == (10, 12, 0.4, 25, 20)
    assert j2["verdict"] == "fail" and j2["e_fail"] == "inf" and j2["fail_threshold"] == 100
    assert j2["fast_abort"]["applied"] is True and j2["fast_abort"]["ms_after_verdict"] == 2.1
    probes = model["gates"][0]["results"][0]
    assert probes["observed"] == 0 and probes["threshold"] == "<= 0" and probes["threshold_value"] == 0
    assert probes["passed"] is True
    lat = model["gates"][1]["results"][1]
    assert lat["threshold_value"] == 5000 and lat["observed"] == 120
    rb, = model["rollbacks"]
    assert rb["complete"] is True and rb["verdict_event"] == "judge" and rb["fast_abort_ms"] == 2.1
    assert rb["seconds_after_verdict"] == 5.0 and rb["traffic_elapsed_ms"] == 3.4 and rb["events_replayed"] == 42
    assert rb["weights_after"] == {"web1_canary": 0, "web1_stable": 100}
    assert [r["phase"] for r in model["retention"]] == ["staging", "canary"]
    chaos, sentinel = model["drills"]
    assert (chaos["drill"], chaos["score"], chaos["passed"]) == ("kill the canary mid-step", 0.95, True)
    assert (sentinel["drill"], sentinel["passed"]) == ("orders sentinel", False)
    json.dumps(model)  # JSON-able


def test_html_has_every_section_and_plot(model):
    doc = render_html(model)
    for sid, title in SECTIONS:
        assert '<section id="%s"><h2>%s</h2>' % (sid, title) in doc
    plots = re.findall(r'data-plot="([^"]+)"', doc)
    for name in ("error-rate", "p99-latency-ms", "judge", "timeline-staging", "timeline-canary"):
        assert name in plots
    assert sum(1 for p in plots if p.startswith("gate-")) == 5
    # both slots drawn in both metric plots, the weight steps, the e-values and the boundaries
    assert doc.count('<polyline data-series="stable"') == 2 and doc.count('<polyline data-series="canary"') == 2
    assert doc.count('data-series="canary weight"') == 2
    assert 'data-series="e_fail"' in doc and 'data-series="fail boundary 1/alpha"' in doc
    for text in ("rolled back (canary)", "2.1 ms", "kill the canary mid-step", "orders sentinel", "VERIFIED",
                 "72h", "web1_stable", "canary error rate"):
        assert text in doc, text
    # self-contained: nothing fetched from anywhere
    assert not re.search(r'(src|href)="(https?:)?//', doc) and "<script" not in doc and "@import" not in doc
    assert render_html(model) == doc  # deterministic


def test_secrets_never_in_model_or_html(model):
    doc = render_html(model)
    text = json.dumps(model) + doc
    for secret in (TOKEN, USERINFO_PW, "alice:", "hooks.example/abc"):
        assert secret not in text, secret
    assert "http://********@prom.example:9090/graph" in doc


def test_staging_only_release_renders(tmp_path):
    led = Ledger(str(tmp_path / "l.jsonl"))
    write(led, 0, "v3", "staging", "phase_start", decision="start")
    entries, verification, dummy = load_ledger(led.path, "v3")
    model = build_model(entries, "v3", verification=verification)
    assert model["summary"]["outcome"] == "in progress or interrupted (staging)"
    assert model["summary"]["phases_passed"] == [] and model["weights"] == []
    doc = render_html(model)
    for sid, dummy in SECTIONS:
        assert 'id="%s"' % sid in doc
    for text in ("No canary judge verdict", "No gate verdict", "No rollback", "No chaos drill", "No metric series"):
        assert text in doc
    assert 'data-plot="error-rate"' in doc and 'data-plot="timeline-staging"' in doc


def test_entries_with_nothing_but_an_event_render():
    model = build_model([{"event": "install"}, {"event": "judge", "evidence": {"errors": {}}}], "v9")
    assert model["span"]["start"] is None and model["judge"][0]["e_fail"] is None
    doc = render_html(model)
    assert "No time span" in doc and 'id="ledger"' in doc and "The ledger was not verified" in doc


def test_broken_ledger_is_reported(tmp_path, ledger):
    lines = open(ledger.path).read().splitlines(True)
    lines[5] = lines[5].replace('"step":"1"', '"step":"9"')
    open(ledger.path, "w").write("".join(lines))
    entries, verification, dummy = load_ledger(ledger.path, "v2")
    model = build_model(entries, "v2", verification=verification)
    assert model["summary"]["ledger_verified"] is False and verification["broken_seq"] == 6
    assert "BROKEN" in render_html(model) and "broken at seq 6" in render_html(model)


@pytest.mark.parametrize("entries,field", [
    ("nope", "entries must be a list"),
    ([{"event": "x"}, 3], "entries[1] must be a ledger entry"),
    ([{"phase": "canary"}], "entries[0].event"),
    ([{"event": "gate", "ts": "yesterday"}], "entries[0].ts"),
    ([{"event": "gate", "evidence": [1]}], "entries[0].evidence"),
    ([{"event": "gate", "release": "v1"}], "entries[0].release"),
])
def test_bad_entries_name_the_field(entries, field):
    with pytest.raises(ReportError) as exc:
        build_model(entries, "v2")
    assert field in str(exc.value)


@pytest.mark.parametrize("kwargs,field", [
    ({"release": ""}, "release must be"),
    ({"series": {"blue": {}}}, "series.blue"),
    ({"series": {"canary": {"error_rate": [[1, 2], [3]]}}}, "series.canary.error_rate[1]"),
    ({"series": {"stable": {"qps": []}}}, "series.stable.qps"),
    ({"title": 3}, "title must be"),
    ({"metrics": []}, "metrics must be"),
])
def test_bad_arguments_name_the_field(kwargs, field):
    args = dict(entries=[], release="v2")
    args.update(kwargs)
    with pytest.raises(ReportError) as exc:
        build_model(**args)
    assert field in str(exc.value)


@pytest.mark.parametrize("queries,field", [
    ([], "queries must be a dict"),
    ({"green": {}}, "queries.green"),
    ({"canary": "q"}, "queries.canary must be"),
    ({"canary": {"p50": "q"}}, "queries.canary.p50"),
    ({"stable": {"error_rate": 5}}, "queries.stable.error_rate"),
])
def test_bad_queries_name_the_field(queries, field):
    with pytest.raises(ReportError) as exc:
        check_queries(queries)
    assert field in str(exc.value)


class FakeProvider(object):
    def __init__(self, answers):
        self.answers = answers
        self.asked = []

    def begin_round(self, budget=None):
        pass

    def query_range(self, expr, start, end, step):
        self.asked.append((expr, start, end, step))
        answer = self.answers(expr)
        if isinstance(answer, Exception):
            raise answer
        return answer


QUERIES = {"stable": {"error_rate": "err{slot=\"stable\"}[$window]", "p99_latency_ms": "p99{slot=\"stable\"}[$window]"},
           "canary": {"error_rate": "err{slot=\"canary\"}[${window}]", "p99_latency_ms": ""}}


def test_metric_plan_and_series():
    plan = metric_plan(check_queries(QUERIES), "30s")
    assert plan == [("stable", "error_rate", 'err{slot="stable"}[30s]'), ("stable", "p99_latency_ms", 'p99{slot="stable"}[30s]'),
                    ("canary", "error_rate", 'err{slot="canary"}[30s]')]
    provider = FakeProvider(lambda expr: [{"values": [[1.0, 0.5], [2.0, float("nan")], [3.0, 0.25]]}]
                            if "err" in expr else [])
    got, notes = fetch_series(provider, plan, 0.0, 10.0, 1.0)
    assert got["stable"]["error_rate"] == [[1.0, 0.5], [3.0, 0.25]] and got["stable"]["p99_latency_ms"] == []
    assert notes == ["stable p99_latency_ms: no data between the first and the last ledger entry"]
    assert provider.asked[0][1:] == (0.0, 10.0, 1.0)


def test_unreachable_provider_gives_a_note_and_stops(ledger):
    secret_url = "http://bob:%s@127.0.0.1:9/api" % USERINFO_PW
    provider = FakeProvider(lambda expr: UnreachableError("cannot reach %s: refused (token %s)" % (secret_url, TOKEN)))
    got, notes = fetch_series(provider, metric_plan(check_queries(QUERIES), "1m"), 0.0, 10.0, 1.0, secrets=[TOKEN])
    assert got == {} and len(provider.asked) == 1
    assert "unreachable" in notes[-1] and TOKEN not in notes[0] and USERINFO_PW not in notes[0]
    entries, verification, dummy = load_ledger(ledger.path, "v2")
    model = build_model(entries, "v2", verification=verification, series=got, metrics={"notes": notes})
    doc = render_html(model)
    assert model["metrics"]["available"] is False and "cannot reach" in doc and 'data-plot="judge"' in doc


def test_query_error_goes_on_with_the_next():
    provider = FakeProvider(lambda expr: QueryError("bad query") if "stable" in expr else [{"values": [[1, 2]]}])
    got, notes = fetch_series(provider, metric_plan(check_queries(QUERIES), "1m"), 0.0, 10.0, 1.0)
    assert got == {"canary": {"error_rate": [[1.0, 2.0]]}} and len(notes) == 2 and "bad query" in notes[0]


@pytest.mark.parametrize("value,expected", [(0.05, 0.05), ("< 5000", 5000.0), ("<= 0", 0.0), ("1e-3", 0.001),
                                            ("between 1 and 2", 1.0), (None, None), ("none", None)])
def test_threshold_number(value, expected):
    assert threshold_number(value) == expected
