#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: canary_judge
short_description: Anytime-valid statistical canary-vs-baseline verdict (continue, fail, pass, inconclusive)
version_added: "0.1.0"
description:
  - Compares a canary against its baseline from cumulative counters (requests, errors and, optionally,
    latency histogram buckets) and answers C(continue), C(fail), C(pass) or C(inconclusive).
  - Uses anytime-valid sequential tests (e-processes, Lindon & Malek's Poisson-process reduction for counts),
    so the probability of ever answering C(fail) for a canary as good as its baseline stays below O(alpha)
    however often it looks, across errors, the latency shift test over the whole histogram and every latency
    quantile together (the fail verdict adds up their alpha-weighted e-values).
  - Says C(pass) only once non-inferiority is proven (error-rate ratio below O(error_margin) or error rate below
    O(error_abs_margin), latency quantiles within O(latency_margin)); C(inconclusive) once O(max_requests) or
    O(max_seconds) is reached without proof. It never passes for lack of data.
  - The judge's state is kept between looks in O(state_file) (JSON) or returned as RV(state) and given back
    with O(state), so one task per look works as well as one task looping with O(interval) until a verdict.
  - Counts are read from O(baseline)/O(canary) directly, or with O(queries) through a metric provider
    (Prometheus HTTP API, a C(/metrics) endpoint, or a JSON endpoint) of this collection.
  - See C(docs/canary_judge.md) in the collection for the method and how to read the result.
author:
  - stagegate.rollout contributors (@stagegate)
extends_documentation_fragment:
  - stagegate.rollout.metric_provider
  - stagegate.rollout.state_file
  - stagegate.rollout.on_fail
  - stagegate.rollout.action_group.metrics
options:
  baseline:
    description:
      - Cumulative counts of the baseline since the analysis started, C({requests, errors, latency_buckets}).
      - C(latency_buckets) maps the bucket's upper bound in seconds (C(le), including C(+Inf)) to its cumulative count.
      - Mutually exclusive with O(queries).
    type: dict
  canary:
    description:
      - Cumulative counts of the canary, same shape as O(baseline).
    type: dict
  queries:
    description:
      - Queries that read the counters through the metric provider given by O(provider) and its options.
      - Keys C(baseline) and C(canary), each a dict with C(requests) and C(errors) (queries returning one value,
        for example V(sum(http_requests_total{track="canary"}\))) and optionally C(latency_buckets) (a query returning
        one series per C(le) label, for example V(sum by (le\) (http_request_duration_seconds_bucket{track="canary"}\))).
      - The first look records the current counter values as the origin of the analysis (it decides nothing).
    type: dict
  analyses:
    description:
      - More analyses judged in the same looks as O(queries) (the main analysis), for a canary that takes another
        share of another kind of traffic - for example the HTTP requests (O(queries), O(canary_share) the step's
        HTTP weight) and a cohort of the queue events (an analysis whose O(analyses[].canary_share) is the
        cohort's share of the events).
      - Each is a judge of its own with the options of the main one but its own O(analyses[].canary_share); each
        look reads every analysis's counters in the same provider round (O(provider)), each counted from its own
        origin. The fail O(alpha) is split equally across the main analysis and every entry (each gets
        O(alpha) / (1 + the number of entries)), so the probability of ever failing a canary as good as its
        baseline on any of them stays below O(alpha); O(pass_alpha) is not split.
      - The verdict is C(fail) as soon as any analysis fails (the fast abort O(on_fail) runs at once), C(pass)
        once every analysis has passed (a pass is kept while the others go on), C(continue) while any goes on,
        else C(inconclusive). RV(reason) gives the analyses that decided, labelled C(queries) (the main one) or
        C(analyses.<name>).
      - A new O(step) goes on with every analysis's evidence; a saved state made with other analyses (names) is
        refused (use O(reset)).
      - Needs O(queries); refused with O(baseline)/O(canary).
    type: list
    elements: dict
    suboptions:
      name:
        description: The analysis's name (letters, digits, C(_) and C(-); unique; not V(queries)).
        type: str
        required: true
      queries:
        description: Its queries, of the same shape as O(queries), read through O(provider).
        type: dict
        required: true
      canary_share:
        description: The canary's share of this analysis's traffic, in (0, 1).
        type: float
        required: true
  alpha:
    description: Bound on the probability of ever failing a canary as good as its baseline, in (0, 1).
    type: float
    default: 0.01
  canary_share:
    description:
      - Share of the traffic routed to the canary, in (0, 1) (a 5% step is V(0.05)).
      - The tests use the observed request split of each look; the declared share is checked against it
        (sample-ratio mismatch, reported in C(result.srm)).
    type: float
    default: 0.5
  pass_alpha:
    description: Bound on the probability of passing a canary worse than the margins, in (0, 1).
    type: float
    default: 0.05
  error_margin:
    description: Non-inferiority margin on the ratio canary error rate / baseline error rate (> 1).
    type: float
    default: 1.25
  error_abs_margin:
    description:
      - Errors are also non-inferior when the canary error rate is proven below this absolute rate, so a canary of a
        service whose baseline has zero errors can pass after enough clean requests. V(0) disables it.
    type: float
    default: 0.001
  latency_quantiles:
    description: Latency quantiles whose shift is tested (used when latency buckets are given).
    type: list
    elements: float
    default: [0.5, 0.9, 0.99]
  latency_margin:
    description: Non-inferiority margin on latency quantiles, relative (V(0.05) is +5%).
    type: float
    default: 0.05
  error_weight:
    description:
      - Share of O(alpha) spent on the error test; the rest goes to latency (80% of it to the shift test over the
        whole histogram, the rest split equally across the latency quantiles).
    type: float
    default: 0.5
  min_requests:
    description: No C(pass) before this many canary requests.
    type: int
    default: 0
  max_requests:
    description: Canary requests after which the verdict is C(inconclusive) if nothing is proven.
    type: int
  max_seconds:
    description:
      - Seconds since the first look (of the current O(step)) after which the verdict is C(inconclusive) if nothing
        is proven.
    type: float
  min_seconds:
    description:
      - No C(pass) before this many seconds since the first look (of the current O(step)), so a step lasts at least
        this long even when non-inferiority is proven sooner; a C(fail) is never held back.
    type: float
    default: 0
  step:
    description:
      - The name of the current step of a canary that moves through traffic shares (V(1), V(2), ...).
      - Given with a saved state (O(state) or O(state_file)) made in another step, the analysis goes on into this
        step - the evidence so far carries over (each look's batch uses its own observed split, so the tests stay
        valid when the share changes), the first look of the step only records the counters, and O(canary_share),
        O(min_seconds) and O(max_seconds) are this step's (every other option must be unchanged). A C(fail) stays
        final; a C(pass) is decided again on the step's own looks, after its O(min_seconds).
    type: str
  on_counter_reset:
    description:
      - What to do when a counter goes backwards (a restarted process).
      - V(rebase) drops that look's increment and continues from the new reading (the evidence so far is kept);
        V(error) fails the task.
    type: str
    choices: [rebase, error]
    default: rebase
  state_file:
    description:
      - JSON file holding the judge's state between looks (created if missing; its directory must exist).
      - Not written in check mode.
    type: path
  state:
    description:
      - A state returned as RV(state) by a previous look, to continue from it.
      - With O(state_file) too, the analysis continues from O(state) (the file is only written).
    type: dict
  reset:
    description: Start a new analysis (ignore any saved state).
    type: bool
    default: false
  interval:
    description:
      - Seconds between looks when looping. V(0) (default) makes one look and returns.
      - Looping needs O(queries) (direct counts do not change between looks).
    type: float
    default: 0
  timeout:
    description:
      - With O(interval), stop looping after this many seconds and return the last verdict (C(continue) if none).
      - Also the budget of the provider reads - a look started with N seconds left must read all its O(queries)
        within them (every HTTP attempt waits at most the time left, no retry starts after it); when the time
        runs out the task fails closed, naming the budget and the queries left unread. A smaller
        O(provider.deadline) bounds each look further.
    type: float
    default: 600
  progress:
    description:
      - With O(interval), print a progress line at least every this many seconds (the action plugin runs the
        looks in rounds of this length, carrying the state from round to round). V(0) makes one silent round.
    type: float
    default: 10
  looks:
    description:
      - With O(interval), return after this many looks (with the state to continue from); V(0) loops until a
        verdict or O(timeout). The action plugin sets it for each round of O(progress) seconds.
    type: int
    default: 0
notes:
  - Tokens, passwords and the userinfo of provider URLs are C(no_log) values and are removed from every message
    and result.
  - A C(fail) verdict does not fail the task; use C(failed_when) or branch on RV(verdict).
  - Run by Ansible, the collection's action plugin makes the looks in rounds of at most O(progress) seconds and
    prints one progress line per round (look, requests and errors per arm, e-values against their boundaries,
    time left) and a verdict line at the end, so a long analysis is never silent.
seealso:
  - module: stagegate.rollout.drift_monitor
"""

EXAMPLES = r"""
- name: Judge the canary from counters read elsewhere (one look)
  stagegate.rollout.canary_judge:
    baseline:
      requests: "{{ base_requests | int }}"
      errors: "{{ base_errors | int }}"
    canary:
      requests: "{{ canary_requests | int }}"
      errors: "{{ canary_errors | int }}"
    canary_share: 0.05
    state_file: /var/lib/stagegate/canary-judge.json
  register: judge

- name: Roll back on a fail verdict
  ansible.builtin.include_tasks: rollback.yml
  when: judge.verdict == 'fail'

- name: Loop on Prometheus every 30 s until a verdict (at most 1 hour)
  stagegate.rollout.canary_judge:
    provider:
      type: prometheus
      url: http://127.0.0.1:9090
    queries:
      baseline:
        requests: sum(http_requests_total{track="stable"})
        errors: sum(http_requests_total{track="stable",code=~"5.."})
        latency_buckets: sum by (le) (http_request_duration_seconds_bucket{track="stable"})
      canary:
        requests: sum(http_requests_total{track="canary"})
        errors: sum(http_requests_total{track="canary",code=~"5.."})
        latency_buckets: sum by (le) (http_request_duration_seconds_bucket{track="canary"})
    canary_share: 0.25
    max_seconds: 3600
    interval: 30
    timeout: 3600
    state_file: "{{ rollout_run_dir }}/judge-25.json"
  register: judge
  failed_when: judge.verdict in ['fail', 'inconclusive']

- name: Step 2 at 25 % - the evidence of step 1 carries over; at least 30 s, done as soon as a pass is proven
  stagegate.rollout.canary_judge:
    provider: {type: prometheus, url: http://127.0.0.1:9090}
    queries: "{{ judge_queries }}"
    state: "{{ step1.state }}"
    step: "2"
    canary_share: 0.25
    min_seconds: 30
    max_seconds: 300
    interval: 10
    timeout: 320
  register: step2

- name: An HTTP canary that also takes a cohort of the events - done when both pass, aborted when either fails
  stagegate.rollout.canary_judge:
    provider: {type: prometheus, url: http://127.0.0.1:9090}
    queries: "{{ judge_queries }}"             # the HTTP requests: the step's weight
    canary_share: 0.25
    analyses:
      - name: events
        canary_share: 0.2                       # the cohort's share of the events
        queries:
          baseline:
            requests: sum(events_handled_total{track="stable"})
            errors: sum(events_failed_total{track="stable"})
          canary:
            requests: sum(events_handled_total{track="canary"})
            errors: sum(events_failed_total{track="canary"})
    step: "2"
    min_seconds: 30
    max_seconds: 300
    interval: 10
    timeout: 320
    state_file: "{{ rollout_run_dir }}/judge.json"
    on_fail: {socket: /run/haproxy/admin.sock, backend: app, weights: {app1-canary: 0, app1-stable: 100}}
  register: judge
"""

RETURN = r"""
verdict:
  description: C(continue), C(fail), C(pass) or C(inconclusive).
  returned: always
  type: str
  sample: continue
reason:
  description: One line explaining the verdict.
  returned: always
  type: str
  sample: "error rate 2.1% vs baseline 0.98% (ratio 2.14 after 5400 canary requests); e-value 212 >= 200"
result:
  description:
    - The judge's full answer - statistics behind the verdict.
    - C(errors) and each entry of C(latency) carry the events and requests per arm, rates, the ratio estimate,
      a time-uniform confidence sequence C(ratio_lower)/C(ratio_upper), the fail e-value C(e_fail) against
      C(fail_threshold), the non-inferiority e-value C(e_pass) against C(pass_threshold) and the C(margin).
    - C(latency) entries also give the bucket C(boundary_seconds) tested and the interpolated
      C(baseline_quantile_seconds)/C(canary_quantile_seconds).
    - With latency buckets, C(latency_shift) - the shift test over the whole histogram (fail side only) - gives its
      C(e_fail) against C(fail_threshold), its C(alpha), the canary's standardised rank C(score) (above 0 - slower
      than the baseline) and the requests per arm.
    - C(requests) (per arm), C(looks), C(elapsed_seconds) (of the current step), C(resets), C(srm) (sample-ratio
      mismatch check of the current step's split).
    - With O(step), C(step) - its C(name), C(first_look), its own C(requests) and C(carried) (the canary and
      baseline requests of the steps before and how many steps they were).
    - With O(analyses), the statistics are the main analysis's (O(queries)), C(verdict) and C(reason) the
      combined ones, and C(analyses) maps each analysis's name to its own full result (same keys, its own
      verdict and reason).
  returned: always
  type: dict
  contains:
    analyses:
      description: Each O(analyses) entry's own full result, by name.
      returned: when O(analyses) is given
      type: dict
      sample: {"events": {"verdict": "pass", "reason": "non-inferiority proven for errors after 2400 canary / 9600 baseline requests"}}
looks:
  description: Looks made by this task.
  returned: always
  type: int
  sample: 1
history:
  description:
    - Verdict, reason and requests of every look made by this task (the combined verdict and reason, the main
      analysis's requests).
    - With O(analyses), C(analyses) maps each entry's name to its verdict at that look.
  returned: always
  type: list
  elements: dict
state:
  description:
    - The judge's state after the last look (give it back with O(state) to continue) - C(judge) and C(origin), and
      with O(analyses) C(analyses) mapping each entry's name to its own C(judge) and C(origin).
  returned: always
  type: dict
state_file:
  description: Path of the state file, when used.
  returned: when O(state_file) is given
  type: str
on_fail:
  description:
    - What the fast abort did - C(applied), C(changed), the C(weights) asked, the weights C(after) (read back in
      the same session), C(decided_at) and C(applied_at) (epoch seconds), C(ms_after_verdict), C(error).
  returned: when O(on_fail) is given and the verdict is C(fail)
  type: dict
  sample: {"applied": true, "changed": true, "weights": {"canary": 0, "stable": 100}, "ms_after_verdict": 2.4}
progress:
  description: One line per round of looks (printed as it happened), and the verdict line last.
  returned: when run by the action plugin with O(interval)
  type: list
  elements: str
"""

from ansible_collections.stagegate.rollout.plugins.module_utils.fast_abort import ON_FAIL_OPTIONS
from ansible_collections.stagegate.rollout.plugins.module_utils.judge_session import run_judge
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_module import run_metric_module
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_spec import PROVIDER_OPTIONS


def main():
    run_metric_module(
        run_judge,
        argument_spec=dict(
            baseline=dict(type="dict"),
            canary=dict(type="dict"),
            queries=dict(type="dict"),
            analyses=dict(type="list", elements="dict", options=dict(
                name=dict(type="str", required=True),
                queries=dict(type="dict", required=True),
                canary_share=dict(type="float", required=True),
            )),
            provider=dict(type="dict", options=PROVIDER_OPTIONS),
            alpha=dict(type="float", default=0.01),
            canary_share=dict(type="float", default=0.5),
            pass_alpha=dict(type="float", default=0.05, no_log=False),
            error_margin=dict(type="float", default=1.25),
            error_abs_margin=dict(type="float", default=0.001),
            latency_quantiles=dict(type="list", elements="float", default=[0.5, 0.9, 0.99]),
            latency_margin=dict(type="float", default=0.05),
            error_weight=dict(type="float", default=0.5),
            min_requests=dict(type="int", default=0),
            max_requests=dict(type="int"),
            max_seconds=dict(type="float"),
            min_seconds=dict(type="float", default=0),
            step=dict(type="str"),
            on_counter_reset=dict(type="str", choices=["rebase", "error"], default="rebase"),
            state_file=dict(type="path"),
            state=dict(type="dict"),
            reset=dict(type="bool", default=False),
            interval=dict(type="float", default=0),
            timeout=dict(type="float", default=600),
            progress=dict(type="float", default=10),
            looks=dict(type="int", default=0),
            on_fail=dict(type="dict", options=ON_FAIL_OPTIONS),
        ),
        mutually_exclusive=[("queries", "baseline"), ("queries", "canary")],
        required_together=[("baseline", "canary"), ("queries", "provider")],
        required_one_of=[("baseline", "queries")],
        supports_check_mode=True,
    )


if __name__ == "__main__":
    main()
