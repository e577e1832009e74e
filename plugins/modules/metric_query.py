#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: metric_query
short_description: Read raw metric values (instant or range) for reports and debugging
version_added: "0.1.0"
description:
  - Runs one or several queries through a metric provider of this collection (Prometheus HTTP API, a C(/metrics)
    endpoint, a JSON endpoint) and returns every series with its labels and value, without judging anything.
  - With O(start), O(end) and O(step), runs range queries (V(prometheus) provider only) and returns the values over
    time.
  - Use it to see what a gate's query returns, to feed reports, or to pin a baseline (save RV(scalars) to a file and
    give it to M(stagegate.rollout.metric_gate) as C(baseline_file)).
author:
  - stagegate.rollout contributors (@stagegate)
extends_documentation_fragment:
  - stagegate.rollout.metric_provider
  - stagegate.rollout.action_group.metrics
options:
  query:
    description: One query. Mutually exclusive with O(queries).
    type: str
  queries:
    description: "Several named queries, C({name: query})."
    type: dict
  vars:
    description: Variables for C(${name}) placeholders in the queries (escaped as in M(stagegate.rollout.metric_gate)).
    type: dict
  at:
    description: Evaluation time of instant queries (Unix seconds, RFC 3339, V(now) or V(now-5m)); V(prometheus) only.
    type: raw
  start:
    description: Start of a range query (Unix seconds, RFC 3339, V(now-15m)). Needs O(end) and O(step).
    type: raw
  end:
    description: End of a range query (Unix seconds, RFC 3339, V(now)).
    type: raw
  step:
    description: Resolution of a range query, seconds or a duration such as V(15s).
    type: raw
notes:
  - Read-only; supports check mode (runs the queries).
  - All the queries of one run are one evaluation for O(provider.deadline).
  - Tokens, passwords and the userinfo of provider URLs are C(no_log) values and are removed from every message
    and result.
  - Non-finite values are returned as the strings C(NaN), C(+Inf), C(-Inf).
seealso:
  - module: stagegate.rollout.metric_gate
attributes:
  check_mode:
    description: Read-only; runs the queries in check mode too.
    support: full
  diff_mode:
    description: Nothing changes.
    support: none
"""

EXAMPLES = r"""
- name: What does the canary's error rate query return?
  stagegate.rollout.metric_query:
    provider:
      url: http://127.0.0.1:9090
    vars:
      version: v2
    queries:
      requests: sum by (code) (rate(http_requests_total{version="${version}"}[1m]))
      p95: histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{version="${version}"}[1m])))
  register: raw

- name: Pin today's P95 as the baseline of the next release
  ansible.builtin.copy:
    content: "{{ {'p95_latency': raw.scalars.p95} | to_json }}"
    dest: "{{ rollout_run_dir }}/baseline.json"
    mode: "0644"

- name: Error rate over the last 15 minutes, one point a minute
  stagegate.rollout.metric_query:
    provider:
      url: http://127.0.0.1:9090
    query: sum(rate(http_requests_total{code=~"5.."}[1m])) / sum(rate(http_requests_total[1m]))
    start: now-15m
    end: now
    step: 1m
  register: series
"""

RETURN = r"""
series:
  description:
    - Per query name (C(query) for O(query)), the series returned - each C({labels, value}), plus C(values)
      (C([[unix_time, value], ...])) for range queries.
  returned: always
  type: dict
  sample: {"p95": [{"labels": {}, "value": 0.182}]}
scalars:
  description: Per query name, the single value when the query returned exactly one series, else null.
  returned: always
  type: dict
  sample: {"p95": 0.182}
samples:
  description: The series of O(query) (same as C(series.query)).
  returned: when O(query) is given
  type: list
  elements: dict
value:
  description: The single value of O(query) when it returned exactly one series, else null.
  returned: when O(query) is given
  type: raw
provider:
  description: Type and URL (without credentials) of the provider.
  returned: always
  type: dict
"""

from ansible.module_utils.common.text.converters import to_native

from ansible_collections.stagegate.rollout.plugins.module_utils.metric_base import MetricError, jsonable
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_module import run_metric_module
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_spec import PROVIDER_OPTIONS, query_dialect
from ansible_collections.stagegate.rollout.plugins.module_utils.query_template import render_query


def run_queries(module):
    p = module.params
    if not p["provider"]:
        module.fail("provider is required (for example {type: prometheus, url: http://127.0.0.1:9090}), "
                    "directly or through module_defaults of group/stagegate.rollout.metrics")
    named = {"query": p["query"]} if p["query"] is not None else dict(p["queries"])
    if not named:
        module.fail("queries must hold at least one name: query")
    provider = module.provider(p["provider"])
    dialect = query_dialect(p["provider"])
    rendered = {}
    for name, text in named.items():
        field = "query" if p["query"] is not None else "queries.%s" % name
        if not isinstance(text, str):
            module.fail("%s must be a query string, got %r" % (field, text))
        try:
            rendered[name] = render_query(text, p["vars"] or {}, dialect, field)
        except ValueError as exc:
            module.fail(to_native(exc))

    series = {}
    scalars = {}
    provider.begin_round()          # one evaluation: provider.deadline bounds all the queries together
    for name, expr in rendered.items():
        try:
            if p["start"] is not None:
                samples = provider.query_range(expr, p["start"], p["end"], p["step"])
            else:
                samples = provider.query(expr, at=p["at"])
        except MetricError as exc:
            left = [n for n in rendered if n not in series and n != name]
            module.fail("%s: %s%s" % ("query" if p["query"] is not None else "queries.%s" % name, to_native(exc),
                                      "; not run: %s" % ", ".join(left) if left else ""), series=series)
        series[name] = jsonable([dict(s) for s in samples])
        scalars[name] = jsonable(samples[0].value) if len(samples) == 1 else None
    out = dict(changed=False, series=series, scalars=scalars, provider=provider.describe())
    if p["query"] is not None:
        out["samples"] = series["query"]
        out["value"] = scalars["query"]
    return out


def main():
    run_metric_module(
        run_queries,
        argument_spec=dict(
            provider=dict(type="dict", options=PROVIDER_OPTIONS),
            query=dict(type="str"),
            queries=dict(type="dict"),
            vars=dict(type="dict"),
            at=dict(type="raw"),
            start=dict(type="raw"),
            end=dict(type="raw"),
            step=dict(type="raw"),
        ),
        mutually_exclusive=[("query", "queries"), ("at", "start")],
        required_one_of=[("query", "queries")],
        required_together=[("start", "end", "step")],
        supports_check_mode=True,
    )


if __name__ == "__main__":
    main()
