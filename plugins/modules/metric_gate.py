#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: metric_gate
short_description: Judge declared promotion criteria on real metrics; fail closed
version_added: "0.1.0"
description:
  - Evaluates a list of named checks, each reading one number through a metric provider (Prometheus HTTP API,
    a C(/metrics) endpoint, or a JSON endpoint) and comparing it with a threshold, a range, a baseline
    (O(checks[].max_increase) against a baseline query, a pinned baseline file or value) or computing a ratio of
    two queries (P99/P95), optionally requiring a minimum number of samples behind the value.
  - Evaluates once, or every O(interval) for O(duration) with O(failure_limit) / O(consecutive_failures)
    semantics, and stops as soon as a check trips.
  - No data is never a silent pass; O(on_no_data) says what it means (V(fail) by default).
  - Returns, per check, the observed value, the threshold, the window, the samples, the verdict and a one-line
    reason, and an overall verdict. Fails the task on a V(fail) verdict (and on V(inconclusive)) unless told
    otherwise, so C(block)/C(rescue) can roll back.
  - See C(docs/gates.md) in the collection for ready-to-copy check lists and how O(failure_limit) and
    O(consecutive_failures) differ from Argo Rollouts' C(failureLimit) and Flagger's C(threshold).
author:
  - stagegate.rollout contributors (@stagegate)
extends_documentation_fragment:
  - stagegate.rollout.metric_provider
  - stagegate.rollout.on_fail
  - stagegate.rollout.action_group.metrics
options:
  checks:
    description:
      - The checks. Every criterion given on a check must hold.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Unique name of the check (used in messages, results and as default O(checks[].baseline_key)).
        type: str
        required: true
      query:
        description:
          - The query giving one number (PromQL for V(prometheus) and V(prometheus_text), JMESPath for V(http_json)).
          - C(${name}) placeholders are replaced by O(vars) / O(checks[].vars) (escaped for where they stand;
            C(${window}) must be a duration such as V(60s)).
          - Several series where one is expected is an error, never a silent pick; aggregate with C(sum(\)) or C(max(\)).
          - Exactly one of O(checks[].query) and O(checks[].ratio).
        type: str
      ratio:
        description: The number is O(checks[].ratio.numerator) / O(checks[].ratio.denominator) (for example P99 / P95).
        type: dict
        suboptions:
          numerator:
            description: Query of the numerator.
            type: str
            required: true
          denominator:
            description: Query of the denominator. 0/0 is no data; x/0 is +Inf.
            type: str
            required: true
      provider:
        description:
          - Provider of this check; replaces O(provider) entirely (nothing is merged, so credentials of the gate's
            provider are never sent to another endpoint).
        type: dict
        suboptions:
          type:
            description: The provider type.
            type: str
            choices: [prometheus, prometheus_text, http_json]
            default: prometheus
          url:
            description: Prometheus base URL, C(/metrics) URL or JSON document URL.
            type: str
          targets:
            description: V(prometheus_text) - several endpoints with extra labels.
            type: list
            elements: dict
            suboptions:
              url:
                description: The C(/metrics) URL.
                type: str
                required: true
              labels:
                description: Labels added to every series scraped from this URL.
                type: dict
          labels:
            description: V(prometheus_text) - labels added to every scraped series.
            type: dict
          token:
            description: Bearer token. Never logged.
            type: str
          username:
            description: User name for basic authentication.
            type: str
          password:
            description: Password for basic authentication. Never logged.
            type: str
          ca_path:
            description: PEM file of CA certificates.
            type: path
          validate_certs:
            description: Verify TLS certificates.
            type: bool
            default: true
          use_proxy:
            description: Use the proxy of the environment.
            type: bool
            default: true
          timeout:
            description: Seconds to wait for one HTTP response.
            type: float
            default: 10
          retries:
            description: Retries after connection errors, timeouts and HTTP 5xx (0 to 10).
            type: int
            default: 2
          retry_backoff:
            description: Seconds before the first retry, doubled before each further one.
            type: float
            default: 0.5
          deadline:
            description:
              - Seconds one evaluation of this provider may take; the smaller of it and O(timeout) applies.
            type: float
      vars:
        description: Variables of this check, over O(vars).
        type: dict
      window:
        description: Shortcut for C(vars.window) of this check (a Prometheus duration such as V(60s), V(5m)).
        type: str
      lt:
        description: The value must be lower than this.
        type: float
      le:
        description: The value must be lower than or equal to this.
        type: float
      gt:
        description: The value must be greater than this.
        type: float
      ge:
        description: The value must be greater than or equal to this.
        type: float
      eq:
        description: The value must equal this (within O(checks[].tolerance)).
        type: float
      tolerance:
        description: Absolute tolerance of O(checks[].eq).
        type: float
      between:
        description: C([min, max]), inclusive.
        type: list
        elements: float
      max_increase:
        description:
          - Largest allowed increase over the baseline, V("10%") or a fraction V(0.1). Needs one of
            O(checks[].baseline_query), O(checks[].baseline_file), O(checks[].baseline_value).
          - A baseline of 0 allows no increase at all (an increase from 0 is unbounded); set
            O(checks[].baseline_floor) to judge increases from a floor instead.
        type: raw
      max_decrease:
        description: Largest allowed decrease under the baseline (for throughput, success rates), V("5%") or V(0.05).
        type: raw
      baseline_query:
        description: Query giving the baseline (for example the stable version's P95 over the same window).
        type: str
      baseline_file:
        description:
          - >-
            JSON file holding pinned baselines. Accepted shapes - C({"p95_latency": 0.42}), nested objects
            addressed with a dotted O(checks[].baseline_key), C({"metrics": {...}}), or a saved result of this
            module (C({"checks": [{"name": ..., "observed": ...}]})).
        type: path
      baseline_key:
        description: Key of the baseline in O(checks[].baseline_file); defaults to the check's name.
        type: str
      baseline_value:
        description: A pinned baseline number.
        type: float
      baseline_floor:
        description: Smallest baseline used in the comparison (the baseline is C(max(baseline, floor\))).
        type: float
      min_samples:
        description:
          - Fewer samples than this (as counted by O(checks[].samples_query)) is treated as no data
            (see O(checks[].on_no_data)).
        type: int
      samples_query:
        description: Query giving the number of samples (requests) behind the value; reported as RV(checks[].samples).
        type: str
      on_no_data:
        description: O(on_no_data) for this check.
        type: str
        choices: [fail, inconclusive, pass]
      failure_limit:
        description: O(failure_limit) for this check.
        type: int
      consecutive_failures:
        description: O(consecutive_failures) for this check.
        type: int
      unit:
        description: Unit shown after the numbers in reasons (for example V(ms)); the query gives the number.
        type: str
  vars:
    description:
      - Variables for C(${name}) placeholders in queries, for example C(service), C(version), C(window).
      - Values are escaped for PromQL strings (and regex-escaped in C(=~) matchers); outside strings only
        identifiers, numbers and durations are accepted. C(window) must be a duration (V(60s), V(5m), V(1h30m)).
    type: dict
  interval:
    description:
      - Seconds (or a duration such as V(10s)) between evaluations. With O(duration), the checks are evaluated at
        once and then every O(interval) until O(duration) has passed. Without both, they are evaluated once.
    type: raw
  duration:
    description: How long to keep evaluating (seconds or a duration such as V(5m)); needs O(interval).
    type: raw
  failure_limit:
    description:
      - A check fails as soon as more than this many of its evaluations failed in total (0 - the first failure).
      - Defaults to 0 unless O(consecutive_failures) is given (then there is no total limit).
    type: int
  consecutive_failures:
    description:
      - A check fails as soon as this many of its evaluations in a row failed; a passing or inconclusive evaluation
        resets the count, so a single blip does not roll back.
    type: int
  on_no_data:
    description:
      - What an evaluation without data means (no series, NaN, fewer samples than O(checks[].min_samples),
        no baseline) - V(fail) (fail closed), V(inconclusive) or V(pass). Always stated in the reason.
    type: str
    choices: [fail, inconclusive, pass]
    default: fail
  fail_on_violation:
    description: Fail the task when the verdict is V(fail) (the results are in the failed result for C(rescue)).
    type: bool
    default: true
  timeout:
    description:
      - Seconds one evaluation of all the checks may take (the budget of each round with O(interval)).
      - Every HTTP attempt waits at most the time left, no retry starts after it, and when it passes the
        checks not yet answered fail (fail closed) with a reason naming the budget and what was left undone.
      - Bounds the waits for the metric sources; the wait of a V(prometheus_text) C(rate(\)) for its second
        scrape is deliberate and not counted.
      - A provider's own O(provider.deadline) applies when it is smaller.
    type: float
    default: 30
  fail_on_inconclusive:
    description:
      - Fail the task when the verdict is V(inconclusive). Inconclusive is not a pass; set V(false) only when the
        play branches on RV(verdict) itself.
    type: bool
    default: true
notes:
  - Provider errors (unreachable after the retries, a rejected query, several series where one was expected)
    fail the check - they are never a pass and never inconclusive.
  - Tokens, passwords and the userinfo of provider URLs (C(http://user:pass@host)) are C(no_log) values and are
    removed from every message and result, also where a server echoes them (C(Authorization) header values).
  - With V(prometheus_text), a stopped target cannot be scraped and is reported as unreachable (fail), not as
    no data.
seealso:
  - module: stagegate.rollout.metric_query
  - module: stagegate.rollout.canary_judge
attributes:
  check_mode:
    description: The gate is read-only; check mode evaluates exactly as a normal run and reports.
    support: full
  diff_mode:
    description: Nothing changes, nothing to diff.
    support: none
"""

EXAMPLES = r"""
# Canary gate of zero-drama-phased-rollout.md: error rate < 5 %, latency < 5000 ms, over 60 s.
# Roll back in rescue when it fails.
- name: Canary step
  block:
    - name: Canary gate
      stagegate.rollout.metric_gate:
        provider:
          type: prometheus
          url: http://127.0.0.1:9090
        vars:
          service: search-api
          version: "{{ canary_version }}"
          window: 60s
        checks:
          - name: error_rate
            query: >-
              (sum(rate(http_requests_total{service="${service}",version="${version}",code=~"5.."}[${window}]))
              or vector(0))
              / sum(rate(http_requests_total{service="${service}",version="${version}"}[${window}]))
            lt: 0.05
            samples_query: sum(increase(http_requests_total{service="${service}",version="${version}"}[${window}]))
            min_samples: 100
          - name: latency_p95
            query: >-
              histogram_quantile(0.95, sum by (le) (rate(
              http_request_duration_seconds_bucket{service="${service}",version="${version}"}[${window}]))) * 1000
            lt: 5000
            unit: ms
        interval: 10s
        duration: 5m
        consecutive_failures: 3
      delegate_to: localhost
      register: gate
  rescue:
    - name: Roll back
      ansible.builtin.include_tasks: rollback.yml
      vars:
        reason: "{{ ansible_failed_result.summary | default(ansible_failed_result.msg) }}"

# Final Bench gates of deployment-guide-canary-calibration-sentinels.md: P95 <= +10 % vs the
# pinned baseline, P99/P95 <= 2.0.
- name: Final bench
  stagegate.rollout.metric_gate:
    provider:
      url: http://127.0.0.1:9090
      token: "{{ prometheus_token }}"
    vars:
      version: "{{ release_version }}"
      window: 60s
    checks:
      - name: p95_latency
        query: histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{version="${version}"}[${window}])))
        max_increase: 10%
        baseline_file: "{{ rollout_run_dir }}/baseline.json"
      - name: p99_over_p95
        ratio:
          numerator: histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{version="${version}"}[${window}])))
          denominator: histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{version="${version}"}[${window}])))
        le: 2.0

# No Prometheus server: scrape the canary's /metrics directly, same PromQL.
- name: Gate a host with no Prometheus
  stagegate.rollout.metric_gate:
    provider:
      type: prometheus_text
      url: http://10.0.0.12:8000/metrics
    checks:
      - name: error_rate
        query: (sum(rate(http_requests_total{code=~"5.."}[30s])) or vector(0)) / sum(rate(http_requests_total[30s]))
        lt: 0.01
    on_no_data: inconclusive
    fail_on_inconclusive: false
  register: gate

# Graph API (advanced phase) from a JSON health endpoint: API < 500 ms.
- name: Graph API latency
  stagegate.rollout.metric_gate:
    provider:
      type: http_json
      url: http://127.0.0.1:8002/health
    checks:
      - name: graph_api_p95
        query: latency.p95_ms
        lt: 500
        unit: ms
"""

RETURN = r"""
verdict:
  description: Overall verdict - V(fail) if a check failed, else V(inconclusive) if one is inconclusive, else V(pass).
  returned: always
  type: str
  sample: fail
summary:
  description: One line naming the checks behind the verdict and why.
  returned: always
  type: str
  sample: "fail: 1 of 2 check(s) failed: error_rate 0.0721 violates < 0.05 (window 60s, 1200 samples)"
checks:
  description: One result per check, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The check's name.
      type: str
    verdict:
      description: V(pass), V(fail) or V(inconclusive) (over all evaluations when repeated).
      type: str
    reason:
      description: One line - which check, what value, what threshold, over which window, and why.
      type: str
    observed:
      description: Value of the last evaluation (C(NaN), C(+Inf) spelled as strings; null when there was none).
      type: raw
    threshold:
      description: The criteria, for example C(< 0.05), C(<= baseline +10%).
      type: str
    window:
      description: The window (C(vars.window)) of the check, if any.
      type: str
    samples:
      description: Value of O(checks[].samples_query) at the last evaluation, if given.
      type: float
    baseline:
      description: Baseline used by O(checks[].max_increase) / O(checks[].max_decrease).
      type: float
    limit:
      description: The numeric limit derived from the baseline.
      type: float
    no_data:
      description: Whether the last evaluation had no data.
      type: bool
    error:
      description: Provider or query error of the last evaluation (Prometheus's own text for rejected queries).
      type: str
    query:
      description: The rendered query.
      type: str
    evaluations:
      description: Number of evaluations of this check.
      type: int
    failures:
      description: Number of failed evaluations.
      type: int
    max_consecutive_failures:
      description: Longest run of failed evaluations.
      type: int
evaluations:
  description: Number of evaluation rounds.
  returned: always
  type: int
  sample: 7
stopped_early:
  description: Whether a repeated evaluation stopped before O(duration) because a check tripped.
  returned: always
  type: bool
elapsed:
  description: Seconds spent evaluating.
  returned: always
  type: float
history:
  description: Per evaluation round - elapsed seconds, verdict and observed value of every check (last 200).
  returned: always
  type: list
  elements: dict
on_fail:
  description:
    - What the fast abort did - C(applied), C(changed), the C(weights) asked, the weights C(after), C(decided_at) and
      C(applied_at) (epoch seconds), C(ms_after_verdict), C(error).
  returned: when O(on_fail) is given and the verdict is V(fail)
  type: dict
  sample: {"applied": true, "changed": true, "weights": {"canary": 0, "stable": 100}, "ms_after_verdict": 2.1}
deadline_passed:
  description:
    - Present (V(true)) when the last evaluation ran out of its O(timeout); RV(summary) and C(msg) then name the
      budget and the checks left undone.
  returned: when the deadline passed
  type: bool
providers:
  description: Type and URL (without credentials) of the providers used.
  returned: always
  type: list
  elements: dict
"""

import time

from ansible.module_utils.common.text.converters import to_native

from ansible_collections.stagegate.rollout.plugins.module_utils.fast_abort import (
    ON_FAIL_OPTIONS, abort_traffic, check_on_fail, describe)
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_base import seconds_text
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_module import run_metric_module
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_spec import PROVIDER_OPTIONS
from ansible_collections.stagegate.rollout.plugins.module_utils.redact import scrub
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_checks import (
    CheckSpecError, evaluate_check, validate_checks)
from ansible_collections.stagegate.rollout.plugins.module_utils.gate_run import gate_schedule, output, run_gate

CHECK_OPTIONS = dict(
    name=dict(type="str", required=True),
    query=dict(type="str"),
    ratio=dict(type="dict", options=dict(numerator=dict(type="str", required=True),
                                         denominator=dict(type="str", required=True))),
    provider=dict(type="dict", options=PROVIDER_OPTIONS),
    vars=dict(type="dict"),
    window=dict(type="str"),
    lt=dict(type="float"),
    le=dict(type="float"),
    gt=dict(type="float"),
    ge=dict(type="float"),
    eq=dict(type="float"),
    tolerance=dict(type="float"),
    between=dict(type="list", elements="float"),
    max_increase=dict(type="raw"),
    max_decrease=dict(type="raw"),
    baseline_query=dict(type="str"),
    baseline_file=dict(type="path"),
    baseline_key=dict(type="str", no_log=False),
    baseline_value=dict(type="float"),
    baseline_floor=dict(type="float"),
    min_samples=dict(type="int"),
    samples_query=dict(type="str"),
    on_no_data=dict(type="str", choices=["fail", "inconclusive", "pass"]),
    failure_limit=dict(type="int"),
    consecutive_failures=dict(type="int"),
    unit=dict(type="str"),
)


def argument_spec():
    return dict(
        checks=dict(type="list", elements="dict", required=True, options=CHECK_OPTIONS),
        provider=dict(type="dict", options=PROVIDER_OPTIONS),
        vars=dict(type="dict"),
        interval=dict(type="raw"),
        duration=dict(type="raw"),
        failure_limit=dict(type="int"),
        consecutive_failures=dict(type="int"),
        on_no_data=dict(type="str", choices=["fail", "inconclusive", "pass"], default="fail"),
        fail_on_violation=dict(type="bool", default=True),
        fail_on_inconclusive=dict(type="bool", default=True),
        timeout=dict(type="float", default=30.0),
        on_fail=dict(type="dict", options=ON_FAIL_OPTIONS),
    )


def evaluate_gate(module):
    p = module.params
    if p["timeout"] <= 0:
        module.fail("timeout must be > 0 seconds (the budget of one evaluation of all the checks), got %r"
                    % p["timeout"])
    problem = check_on_fail(p["on_fail"])
    if problem:
        module.fail(problem)
    try:
        interval, duration = gate_schedule(p["interval"], p["duration"])
        checks = validate_checks(p["checks"], provider=p["provider"], variables=p["vars"], on_no_data=p["on_no_data"],
                                 failure_limit=p["failure_limit"], consecutive_failures=p["consecutive_failures"])
    except CheckSpecError as exc:
        module.fail(to_native(exc))

    providers = {}
    for check in checks:
        key = check["provider_key"]
        if key not in providers:
            providers[key] = module.provider(check["provider"], field="checks %s: provider" % check["name"])

    undone = []             # checks of the current round asked after its deadline had passed

    def evaluate(check):
        prov = providers[check["provider_key"]]
        if prov.deadline_passed():
            undone.append(check["name"])
        return scrub(evaluate_check(check, prov), module.secrets)

    def before_round():
        del undone[:]
        for prov in providers.values():
            prov.begin_round(budget=p["timeout"])

    started = time.monotonic()
    gate = output(run_gate(checks, evaluate, interval=interval, duration=duration, before_round=before_round))
    if gate["verdict"] == "fail" and p["on_fail"]:
        gate["on_fail"] = abort_traffic(p["on_fail"], time.time(), check_mode=module.check_mode)
        gate["changed"] = gate["on_fail"]["changed"]
    gate["elapsed"] = round(time.monotonic() - started, 3)
    gate["providers"] = [prov.describe() for prov in providers.values()]
    gate.setdefault("changed", False)
    gate = scrub(gate, module.secrets)
    summary = gate["summary"]
    if undone:
        budget = min(b for b in [prov.budget() for prov in providers.values()] + [p["timeout"]] if b is not None)
        gate["deadline_passed"] = True
        summary = ("the evaluation's deadline (%s s) passed; left undone: %s; %s"
                   % (seconds_text(budget), ", ".join(undone), summary))
        gate["summary"] = summary
    if gate.get("on_fail"):
        summary = gate["summary"] = "%s; fast abort: %s" % (summary, describe(gate["on_fail"]))
    verdict = gate["verdict"]
    if verdict == "fail" and p["fail_on_violation"]:
        module.fail("metric gate failed: %s" % summary, **gate)
    if verdict == "inconclusive" and p["fail_on_inconclusive"]:
        module.fail("metric gate inconclusive: %s" % summary, **gate)
    return dict(gate, msg=summary)


def main():
    run_metric_module(evaluate_gate, argument_spec=argument_spec(), supports_check_mode=True)


if __name__ == "__main__":
    main()
