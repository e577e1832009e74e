# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""metric_gate / metric_query / canary_judge through ansible-playbook against a real Prometheus scraping a real
exporter (and the exporter's /metrics directly with the prometheus_text provider)."""
import json
import os
import time

import pytest

from demo.stack.prometheus import Prometheus

from gatekit import prom_query, wait_for_data

pytestmark = pytest.mark.slow

WINDOW = "3s"
SETTLE = 5.0          # seconds for a change of the exporter to fill a 3 s window (1 s scrape)

ERROR_RATE = ('(sum(rate(app_requests_total{service="${service}",version="${version}",code=~"5.."}[${window}])) '
              'or vector(0)) / sum(rate(app_requests_total{service="${service}",version="${version}"}[${window}]))')
REQUESTS = 'sum(increase(app_requests_total{service="${service}",version="${version}"}[${window}]))'
QUANTILE = ('histogram_quantile(%s, sum by (le) (rate(app_request_duration_seconds_bucket{service="${service}",'
            'version="%s"}[${window}])))')


def gate_checks(pinned_file):
    """The seeds' gates on the test exporter: error rate < 5 %, latency < 5000 ms, P95 <= +10 % vs baseline
    (stable v1, and a pinned file), P99/P95 <= 2.0, enough samples."""
    return [
        {"name": "error_rate", "query": ERROR_RATE, "lt": 0.05, "samples_query": REQUESTS, "min_samples": 100},
        {"name": "latency_p95_ms", "query": (QUANTILE % (0.95, "${version}")) + " * 1000", "lt": 5000, "unit": "ms"},
        {"name": "p95_vs_stable", "query": QUANTILE % (0.95, "${version}"), "max_increase": "10%",
         "baseline_query": QUANTILE % (0.95, "v1")},
        {"name": "p95_vs_pinned", "query": QUANTILE % (0.95, "${version}"), "max_increase": "10%",
         "baseline_file": pinned_file, "baseline_key": "final_bench.p95_seconds"},
        {"name": "p99_over_p95", "ratio": {"numerator": QUANTILE % (0.99, "${version}"),
                                           "denominator": QUANTILE % (0.95, "${version}")}, "le": 2.0},
        {"name": "stable_error_rate", "query": ERROR_RATE, "vars": {"version": "v1"}, "between": [0, 0.001]},
    ]


def gate_task(name, provider, checks, **opts):
    args = {"provider": provider, "vars": {"service": "shop", "version": "v2", "window": WINDOW}, "checks": checks}
    args.update(opts)
    return {"name": name, "stagegate.rollout.metric_gate": args}


def by_name(result):
    return {c["name"]: c for c in result["checks"]}


@pytest.fixture
def pinned(tmp_path):
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({"final_bench": {"p95_seconds": 0.12}}))
    return str(path)


def prom_provider(stack, **kw):
    return dict({"type": "prometheus", "url": stack["prometheus"].url}, **kw)


def text_provider(stack, **kw):
    return dict({"type": "prometheus_text", "url": stack["app"].url, "labels": {"service": "shop"}}, **kw)


def test_healthy_gate_passes(stack, playbook, pinned):
    run = playbook([gate_task("gate", prom_provider(stack), gate_checks(pinned))])
    res = run.task("gate")
    assert run.rc == 0 and res["verdict"] == "pass", run
    checks = by_name(res)
    assert checks["error_rate"]["observed"] == pytest.approx(0.01, abs=0.004)
    assert checks["error_rate"]["samples"] >= 100 and checks["error_rate"]["window"] == WINDOW
    assert checks["latency_p95_ms"]["observed"] == pytest.approx(118, abs=3)
    assert checks["p95_vs_stable"]["baseline"] == pytest.approx(0.118, abs=0.003)
    assert checks["p95_vs_pinned"]["baseline"] == 0.12
    assert checks["p99_over_p95"]["observed"] == pytest.approx(1.01, abs=0.03)
    assert checks["stable_error_rate"]["observed"] == 0       # v1 never failed: 'or vector(0)'
    for c in res["checks"]:
        assert c["verdict"] == "pass" and c["reason"].startswith(c["name"]) and c["threshold"]
    assert res["evaluations"] == 1 and res["changed"] is False


def test_error_rate_gate_fails_and_rescue_rolls_back(stack, playbook, pinned, tmp_path):
    marker = tmp_path / "rolled-back.txt"
    stack["app"].set("v2", error_rate=0.2)
    try:
        time.sleep(SETTLE)
        run = playbook([{
            "name": "canary step",
            "block": [gate_task("gate", prom_provider(stack), gate_checks(pinned))],
            "rescue": [{"name": "roll back", "ansible.builtin.copy": {
                "dest": str(marker), "mode": "0644",
                "content": "{{ ansible_failed_result.verdict }}: {{ ansible_failed_result.msg }}"}}],
        }])
    finally:
        stack["app"].reset("v2")
        stack["app"].set("v2", error_rate=0.01)
    assert run.rc == 0, run                              # the rescue handled the failure
    gate = run.task("gate")
    assert gate["failed"] and gate["verdict"] == "fail"
    err = by_name(gate)["error_rate"]
    assert err["verdict"] == "fail" and err["observed"] == pytest.approx(0.2, abs=0.03)
    observed = "%.6g" % err["observed"]
    assert "error_rate %s violates < 0.05" % observed in gate["msg"]
    assert "window 3s" in gate["msg"]
    # only the error-rate check failed; latency checks still pass
    assert [c["name"] for c in gate["checks"] if c["verdict"] != "pass"] == ["error_rate"]
    assert run.task("roll back")["changed"]
    text = marker.read_text()
    assert text.startswith("fail: metric gate failed:") and observed in text


def test_baseline_and_ratio_verdicts_on_known_data(stack, playbook, pinned):
    # v2 50 % slower with a 3 % tail at 4x. From the buckets: v1 P95 = 0.1183 s; v2 P95 = 0.175 + 0.025 x
    # (0.95 - 0.91) / (0.97 - 0.91) = 0.1917 s (+62 %), P99 = 0.5 + 0.25 x (0.99 - 0.97) / 0.03 = 0.667 s (P99/P95 3.5)
    stack["app"].set("v2", latency_ms=150, tail=0.03, tail_factor=4)
    try:
        time.sleep(SETTLE)
        run = playbook([gate_task("gate", prom_provider(stack), gate_checks(pinned), fail_on_violation=False),
                        gate_task("text gate", text_provider(stack), gate_checks(pinned), fail_on_violation=False)])
    finally:
        stack["app"].reset("v2")
        stack["app"].set("v2", error_rate=0.01)
    assert run.rc == 0, run
    for task in ("gate", "text gate"):
        checks = by_name(run.task(task))
        assert run.task(task)["verdict"] == "fail"
        verdicts = {n: c["verdict"] for n, c in checks.items()}
        assert verdicts == {"error_rate": "pass", "latency_p95_ms": "pass", "p95_vs_stable": "fail",
                            "p95_vs_pinned": "fail", "p99_over_p95": "fail", "stable_error_rate": "pass"}, task
        assert checks["p95_vs_stable"]["change"] == pytest.approx(0.62, abs=0.05)
        assert checks["p95_vs_pinned"]["observed"] == pytest.approx(0.1917, abs=0.005)
        assert checks["p95_vs_stable"]["limit"] == pytest.approx(0.118 * 1.1, abs=0.004)
        assert checks["p99_over_p95"]["observed"] == pytest.approx(3.48, abs=0.25)
        assert "<= baseline +10%" in checks["p95_vs_pinned"]["reason"]


def test_prometheus_text_gives_the_same_verdicts(stack, playbook, pinned):
    """No Prometheus server: the same check list on the exporter's /metrics passes, then fails on errors."""
    run = playbook([gate_task("text gate", text_provider(stack), gate_checks(pinned)),
                    gate_task("prom gate", prom_provider(stack), gate_checks(pinned))])
    assert run.rc == 0, run
    text, prom = by_name(run.task("text gate")), by_name(run.task("prom gate"))
    assert run.task("text gate")["verdict"] == "pass"
    for name in text:
        assert text[name]["verdict"] == prom[name]["verdict"] == "pass"
        assert text[name]["observed"] == pytest.approx(prom[name]["observed"], rel=0.05, abs=0.004), name
    assert text["error_rate"]["samples"] == pytest.approx(prom["error_rate"]["samples"], rel=0.2)
    assert run.task("text gate")["providers"] == [{"type": "prometheus_text", "url": stack["app"].url}]
    # one wait of the window for the whole check list (rate needs two scrapes 3 s apart)
    assert 3.0 <= run.task("text gate")["elapsed"] < 6.0

    stack["app"].set("v2", error_rate=0.2)
    try:
        run = playbook([gate_task("text gate", text_provider(stack), gate_checks(pinned), fail_on_violation=False)])
    finally:
        stack["app"].set("v2", error_rate=0.01)
    res = run.task("text gate")
    assert res["verdict"] == "fail" and by_name(res)["error_rate"]["observed"] == pytest.approx(0.2, abs=0.03)
    assert [c["name"] for c in res["checks"] if c["verdict"] == "fail"] == ["error_rate"]


def test_no_data_fails_closed_or_is_inconclusive_when_asked(stack, playbook):
    checks = [{"name": "error_rate", "query": ERROR_RATE, "lt": 0.05}]
    missing = {"service": "shop", "version": "v9", "window": WINDOW}
    run = playbook([
        dict(gate_task("default", prom_provider(stack), checks, vars=missing), ignore_errors=True),
        dict(gate_task("inconclusive", prom_provider(stack), checks, vars=missing, on_no_data="inconclusive"),
             ignore_errors=True),
        gate_task("explicit pass", prom_provider(stack), checks, vars=missing, on_no_data="pass"),
    ])
    default, inconclusive, passed = run.task("default"), run.task("inconclusive"), run.task("explicit pass")
    assert default["failed"] and default["verdict"] == "fail" and by_name(default)["error_rate"]["no_data"]
    assert "no data" in default["msg"] and "on_no_data=fail" in default["msg"]
    assert inconclusive["failed"] and inconclusive["verdict"] == "inconclusive"
    assert inconclusive["msg"].startswith("metric gate inconclusive:")
    assert not passed.get("failed") and passed["verdict"] == "pass"
    assert "no data" in passed["checks"][0]["reason"] and "on_no_data=pass" in passed["checks"][0]["reason"]


def test_stopped_app_is_no_data_then_inconclusive_when_configured(stack, playbook):
    checks = [{"name": "error_rate", "query": ERROR_RATE, "lt": 0.05}]
    doomed = {"service": "doomed", "version": "v1", "window": WINDOW}
    run = playbook([gate_task("before", prom_provider(stack), checks, vars=doomed)])
    assert run.task("before")["verdict"] == "pass", run
    stack["doomed"].stop()
    deadline = time.monotonic() + 20
    query = 'sum(rate(app_requests_total{service="doomed"}[%s]))' % WINDOW
    while prom_query(stack["prometheus"].url, query)["data"]["result"] and time.monotonic() < deadline:
        time.sleep(0.5)
    run = playbook([
        dict(gate_task("after", prom_provider(stack), checks, vars=doomed), ignore_errors=True),
        gate_task("after inconclusive", prom_provider(stack), checks, vars=doomed, on_no_data="inconclusive",
                  fail_on_inconclusive=False),
        dict(gate_task("text after", dict(text_provider(stack), url=stack["doomed"].url, retries=1, timeout=1),
                       checks, vars=doomed, on_no_data="inconclusive"), ignore_errors=True),
    ])
    after = run.task("after")
    assert after["failed"] and after["verdict"] == "fail" and after["checks"][0]["no_data"]
    assert "no data" in after["checks"][0]["reason"]
    assert run.task("after inconclusive")["verdict"] == "inconclusive"
    # scraping a stopped app directly: unreachable, which fails even with on_no_data=inconclusive
    text = run.task("text after")
    assert text["verdict"] == "fail" and "unreachable" in text["checks"][0]["reason"]


def test_bad_promql_reports_prometheus_error_verbatim(stack, playbook):
    bad = 'sum(rate(app_requests_total{service="shop"}[3s])'
    expected = prom_query(stack["prometheus"].url, bad)
    assert expected["status"] == "error"
    run = playbook([dict(gate_task("gate", prom_provider(stack), [{"name": "broken", "query": bad, "lt": 1}],
                                   on_no_data="pass"), ignore_errors=True),
                    dict({"name": "query", "stagegate.rollout.metric_query": {"provider": prom_provider(stack),
                                                                              "query": bad}}, ignore_errors=True)])
    gate = run.task("gate")
    assert gate["failed"] and gate["verdict"] == "fail"
    assert expected["error"] in gate["checks"][0]["reason"] and expected["error"] in gate["msg"]
    assert "parse error" in gate["checks"][0]["error"]
    assert expected["error"] in run.task("query")["msg"]


def test_prometheus_down_fails_closed_in_bounded_time(stack, playbook, tmp_path):
    prom = Prometheus(str(tmp_path / "prom-down"), {"app": [(stack["app"].target, {"service": "shop"})]}).start()
    provider = prom_provider({"prometheus": prom}, timeout=1, retries=2, retry_backoff=0.2)
    checks = [{"name": "error_rate", "query": ERROR_RATE, "lt": 0.05},
              {"name": "latency_p95_ms", "query": (QUANTILE % (0.95, "${version}")) + " * 1000", "lt": 5000},
              {"name": "requests", "query": REQUESTS, "gt": 0}]
    try:
        wait_for_data(prom.url, 'sum(rate(app_requests_total{version="v2"}[3s]))')
        prom.pause()                      # stalled: accepts connections, never answers
        stalled = playbook([dict(gate_task("stalled", provider, checks, on_no_data="pass"), ignore_errors=True)])
        prom.resume()
    finally:
        prom.stop()                       # down: connection refused
    down = playbook([dict(gate_task("down", provider, checks, on_no_data="inconclusive"), ignore_errors=True)])
    for run, name, why in ((stalled, "stalled", "timed out after 1.0 s"), (down, "down", "Connection refused")):
        res = run.task(name)
        assert res["failed"] and res["verdict"] == "fail", run
        reason = res["checks"][0]["reason"]
        assert "provider error" in reason and "unreachable after 3 attempt(s)" in reason and why in reason, reason
        assert [c["verdict"] for c in res["checks"]] == ["fail"] * 3
        assert "not retried again in this evaluation" in res["checks"][2]["reason"]
        # bounded by one query's attempts x timeout + backoff, not one per check
        assert res["elapsed"] < 3 * 1.0 + 0.2 + 0.4 + 2.0
    assert run.elapsed < 60


def test_secrets_never_in_verbose_output(stack, playbook):
    token = "stagegate-TOKEN-7f3a9c1e"
    password = "stagegate-PASSWORD-b81d"
    checks = [{"name": "error_rate", "query": ERROR_RATE, "lt": 0.05},
              {"name": "basic auth", "query": "sum(up)", "gt": 0,
               "provider": prom_provider(stack, username="ops", password=password)},
              {"name": "broken", "query": "sum(", "lt": 1}]
    run = playbook([dict(gate_task("gate", prom_provider(stack, token=token), checks), ignore_errors=True),
                    dict({"name": "query", "stagegate.rollout.metric_query": {
                        "provider": prom_provider(stack, token=token), "query": "sum(up"}}, ignore_errors=True),
                    {"name": "judge", "stagegate.rollout.canary_judge": {
                        "provider": prom_provider(stack, token=token),
                        "queries": {arm: {"requests": 'sum(app_requests_total{version="%s"})' % v}
                                    for arm, v in (("baseline", "v1"), ("canary", "v2"))}}}],
                   verbose=True)
    out = run.output
    assert "metric gate failed" in out and "parse error" in out, run      # the run really happened
    assert token not in out and password not in out
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in out or "********" in out


def test_repeated_evaluation_limits(stack, playbook):
    checks = [{"name": "error_rate", "query": ERROR_RATE, "lt": 0.05}]
    stack["app"].set("v2", error_rate=0.2)
    try:
        time.sleep(SETTLE)
        run = playbook([
            gate_task("consecutive", prom_provider(stack), checks, interval="1s", duration="4s",
                      consecutive_failures=2, fail_on_violation=False),
            gate_task("tolerant", prom_provider(stack), checks, interval=1, duration=2, failure_limit=5,
                      fail_on_violation=False, fail_on_inconclusive=False),
        ])
    finally:
        stack["app"].set("v2", error_rate=0.01)
    consecutive, tolerant = run.task("consecutive"), run.task("tolerant")
    assert consecutive["verdict"] == "fail" and consecutive["evaluations"] == 2 and consecutive["stopped_early"]
    assert "2 failed evaluations in a row" in consecutive["checks"][0]["reason"]
    # 3 failures tolerated by failure_limit 5 are still never a pass
    assert tolerant["verdict"] == "inconclusive" and tolerant["evaluations"] == 3
    assert tolerant["checks"][0]["failures"] == 3 and "no evaluation passed" in tolerant["checks"][0]["reason"]
    time.sleep(SETTLE)
    run = playbook([gate_task("healthy", prom_provider(stack), checks, interval=1, duration=3)])
    healthy = run.task("healthy")
    assert healthy["verdict"] == "pass" and healthy["evaluations"] == 4 and len(healthy["history"]) == 4
    assert 3.0 <= healthy["elapsed"] < 6.0


def test_check_mode_evaluates(stack, playbook):
    checks = [{"name": "error_rate", "query": ERROR_RATE, "lt": 0.05}]
    run = playbook([gate_task("gate", prom_provider(stack), checks)], check=True)
    res = run.task("gate")
    assert run.rc == 0 and res["verdict"] == "pass" and res["changed"] is False
    assert res["checks"][0]["observed"] == pytest.approx(0.01, abs=0.004)


def test_bad_input_rejected_naming_the_field(stack, playbook):
    run = playbook([
        dict(gate_task("window", prom_provider(stack), [{"name": "e", "query": ERROR_RATE, "lt": 0.05}],
                       vars={"service": "shop", "version": "v2", "window": "3 seconds"}), ignore_errors=True),
        dict(gate_task("criterion", prom_provider(stack), [{"name": "e", "query": "up"}]), ignore_errors=True),
        dict(gate_task("injection", prom_provider(stack), [{"name": "e", "query": "sum(up) * ${factor}", "lt": 1}],
                       vars={"factor": "1 or vector(0)"}), ignore_errors=True),
    ])
    assert "vars.window" in run.task("window")["msg"] and "60s" in run.task("window")["msg"]
    assert "checks[0] (e): no criterion" in run.task("criterion")["msg"]
    assert "${factor}" in run.task("injection")["msg"]


def test_metric_query_returns_raw_values(stack, playbook):
    run = playbook([
        {"name": "instant", "stagegate.rollout.metric_query": {
            "provider": prom_provider(stack), "vars": {"version": "v2"},
            "queries": {"by_code": 'sum by (code) (rate(app_requests_total{version="${version}"}[3s]))',
                        "p95": 'histogram_quantile(0.95, sum by (le) (rate(app_request_duration_seconds_bucket'
                               '{version="${version}"}[3s])))'}}},
        {"name": "range", "stagegate.rollout.metric_query": {
            "provider": prom_provider(stack), "query": 'sum(rate(app_requests_total{version="v2"}[3s]))',
            "start": "now-10s", "end": "now", "step": "1s"}},
        {"name": "text", "stagegate.rollout.metric_query": {
            "provider": text_provider(stack), "query": 'sum by (version) (app_requests_total)'}},
    ])
    assert run.rc == 0, run
    instant = run.task("instant")
    codes = {s["labels"]["code"]: s["value"] for s in instant["series"]["by_code"]}
    assert set(codes) == {"200", "500"} and codes["500"] == pytest.approx(2.0, abs=1.0)
    assert instant["scalars"]["by_code"] is None and instant["scalars"]["p95"] == pytest.approx(0.118, abs=0.003)
    series = run.task("range")["samples"][0]["values"]
    assert len(series) >= 8 and all(v == pytest.approx(200, rel=0.2) for t, v in series[-5:])
    text = {s["labels"]["version"]: s["value"] for s in run.task("text")["samples"]}
    assert set(text) == {"v1", "v2"} and text["v1"] > 1000


@pytest.mark.parametrize("provider_type", ["prometheus", "prometheus_text"])
def test_canary_judge_reads_counters_through_the_providers(stack, playbook, tmp_path, provider_type):
    provider = prom_provider(stack) if provider_type == "prometheus" else text_provider(stack)
    state = str(tmp_path / ("judge-%s.json" % provider_type))
    queries = {arm: {"requests": 'sum(app_requests_total{service="shop",version="%s"})' % v,
                     "errors": '(sum(app_requests_total{service="shop",version="%s",code=~"5.."}) or vector(0))' % v,
                     "latency_buckets": 'sum by (le) (app_request_duration_seconds_bucket{service="shop",'
                                        'version="%s"})' % v}
               for arm, v in (("baseline", "v1"), ("canary", "v2"))}
    task = {"provider": provider, "queries": queries, "state_file": state}
    run = playbook([{"name": "origin", "stagegate.rollout.canary_judge": task},
                    {"name": "wait", "ansible.builtin.wait_for": {"timeout": 3}},
                    {"name": "look", "stagegate.rollout.canary_judge": task}])
    assert run.rc == 0, run
    origin, look = run.task("origin"), run.task("look")
    assert "origin" in origin["reason"]
    reqs = look["result"]["requests"]
    # 200 req/s per version; the arms are read by separate queries, so they may be one scrape (200) apart
    assert abs(reqs["canary"] - reqs["baseline"]) <= 250 and reqs["canary"] > 400
    assert look["result"]["errors"]["canary_rate"] == pytest.approx(0.01, abs=0.01)
    assert os.path.exists(state)
