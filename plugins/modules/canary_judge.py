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
    however often it looks, across errors and every latency quantile together.
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
  - stagegate.rollout.on_fail
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
    description: Share of O(alpha) spent on the error test; the rest is split equally across latency quantiles.
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
  - Supports check mode (the state is computed and returned but O(state_file) is not written).
  - Tokens, passwords and the userinfo of provider URLs are C(no_log) values and are removed from every message
    and result.
  - A C(fail) verdict does not fail the task; use C(failed_when) or branch on RV(verdict).
  - Run by Ansible, the collection's action plugin makes the looks in rounds of at most O(progress) seconds and
    prints one progress line per round (look, requests and errors per arm, e-values against their boundaries,
    time left) and a verdict line at the end, so a long analysis is never silent.
seealso:
  - module: stagegate.rollout.drift_monitor
attributes:
  check_mode:
    description: Computes the verdict and the new state without writing O(state_file).
    support: full
  diff_mode:
    description: Nothing to diff; the state file is internal.
    support: none
  action_group:
    description: Use C(group/stagegate.rollout.metrics) in C(module_defaults) to set O(provider) once.
    support: full
    membership:
      - stagegate.rollout.metrics
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
    - C(requests) (per arm), C(looks), C(elapsed_seconds) (of the current step), C(resets), C(srm) (sample-ratio
      mismatch check of the current step's split).
    - With O(step), C(step) - its C(name), C(first_look), its own C(requests) and C(carried) (the canary and
      baseline requests of the steps before and how many steps they were).
  returned: always
  type: dict
looks:
  description: Looks made by this task.
  returned: always
  type: int
  sample: 1
history:
  description: Verdict, reason and requests of every look made by this task.
  returned: always
  type: list
  elements: dict
state:
  description: The judge's state after the last look (give it back with O(state) to continue).
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

import json
import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.stagegate.rollout.plugins.module_utils.atomic_file import AtomicWriteError, atomic_write
from ansible_collections.stagegate.rollout.plugins.module_utils.canary_judge import (
    CanaryJudge, JudgeError)
from ansible_collections.stagegate.rollout.plugins.module_utils.fast_abort import (
    ON_FAIL_OPTIONS, abort_traffic, check_on_fail, describe)

from ansible_collections.stagegate.rollout.plugins.module_utils.metric_base import (
    DeadlineError, MetricError, seconds_text)
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_providers import build_provider
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_spec import PROVIDER_OPTIONS, protect_module
from ansible_collections.stagegate.rollout.plugins.module_utils.redact import scrub

JUDGE_OPTIONS = ("pass_alpha", "error_margin", "error_abs_margin", "latency_quantiles", "latency_margin",
                 "error_weight", "min_requests", "max_requests", "max_seconds", "min_seconds")
# what may change when a saved state goes on into a new step (another traffic share)
STEP_OPTIONS = ("canary_share", "min_seconds", "max_seconds")


def judge_options(params):
    opts = {k: params[k] for k in JUDGE_OPTIONS if params.get(k) is not None}
    opts["on_reset"] = params["on_counter_reset"]
    return opts


def fail(module, msg, **result):
    """fail_json with the message and result scrubbed of the provider's secrets.

    Once the looks have begun (``module.abort_on_error`` holds the on_fail option), a look that cannot be made
    (metrics unreadable, a counter reset with on_counter_reset=error) fails closed: the fast abort runs first.
    """
    secrets = getattr(module, "provider_secrets", ())
    spec = getattr(module, "abort_on_error", None)
    if spec:
        module.abort_on_error = None
        result["on_fail"] = abort_traffic(spec, time.time(), check_mode=module.check_mode)
        msg = "%s; fast abort: %s" % (msg, describe(result["on_fail"]))
    module.fail_json(msg=scrub(msg, secrets), **scrub(result, secrets))


def load_state(module):
    p = module.params
    if p["reset"]:
        return None
    if p["state"] is not None:
        return p["state"]
    if p["state_file"]:
        path = p["state_file"]
        if not os.path.exists(path):
            return None
        try:
            with open(path) as fh:
                return json.load(fh)
        except (OSError, ValueError) as exc:
            fail(module, "state_file %s: cannot read the judge state: %s (use reset: true to start over)"
                 % (path, to_native(exc)))
    return p["state"]


def save_state(module, state):
    """Write the state file; returns whether its content changed (nothing written in check mode)."""
    path = module.params["state_file"]
    if not path:
        return False
    new = json.dumps(state, sort_keys=True, indent=1)
    try:
        with open(path) as fh:
            if fh.read() == new:
                return False
    except OSError:
        pass
    if module.check_mode:
        return True
    try:
        atomic_write(path, new, new_mode=0o600, module=module)
    except AtomicWriteError as exc:
        fail(module, to_native(exc).replace("path ", "state_file ", 1))
    except OSError as exc:
        fail(module, "state_file %s: cannot write: %s" % (path, to_native(exc)))
    return True


def make_judge(module, state):
    p = module.params
    opts = judge_options(p)
    if state is None:
        judge = CanaryJudge(alpha=p["alpha"], canary_share=p["canary_share"], **opts)
        judge.step = p["step"]
        return judge, {}
    wrapper = state
    judge = CanaryJudge.from_state(wrapper["judge"])
    new_step = p["step"] is not None and p["step"] != judge.step
    changed = judge.options_changed(alpha=p["alpha"], canary_share=p["canary_share"], **opts)
    if new_step:
        changed = [name for name in changed if name not in STEP_OPTIONS]
    if changed:
        fail(module, "the saved state was made with different options (%s); use reset: true to start a new "
                     "analysis with the new options%s" % (", ".join(changed), "" if new_step else
                                                          " (or a new step: to change %s)" % ", ".join(STEP_OPTIONS)))
    if new_step:
        judge.new_step(p["step"], canary_share=p["canary_share"], min_seconds=p["min_seconds"],
                       max_seconds=p["max_seconds"])
    return judge, wrapper.get("origin") or {}


def read_counts(module, provider, arm, queries, after=()):
    """Read one arm's counters through the metric provider (``after``: the arms still to read, for messages)."""
    out = {}
    todo = ["queries.%s.%s" % (arm, k) for k in ("requests", "errors", "latency_buckets") if queries.get(k)]
    todo += ["queries.%s" % a for a in after]
    try:
        out["requests"] = provider.scalar(queries["requests"])
        todo.pop(0)
        if queries.get("errors"):
            out["errors"] = provider.scalar(queries["errors"])
            todo.pop(0)
        else:
            out["errors"] = 0.0
        if queries.get("latency_buckets"):
            buckets = {}
            for sample in provider.query(queries["latency_buckets"]):
                le = sample.labels.get("le")
                if le is None:
                    fail(module, "queries.%s.latency_buckets: series without an 'le' label: %r" % (arm, sample.labels))
                buckets[le] = sample.value
            out["latency_buckets"] = buckets
    except DeadlineError as exc:
        fail(module, "queries.%s: %s (look budget %s s; not read: %s)"
             % (arm, to_native(exc), seconds_text(provider.budget() or 0), ", ".join(todo)))
    except MetricError as exc:
        fail(module, "queries.%s: %s" % (arm, to_native(exc)))
    return out


def below(counts, origin):
    """True when a raw counter is below its origin (the process restarted since the first look)."""
    if counts["requests"] < origin["requests"] or counts["errors"] < origin["errors"]:
        return True
    ob = origin.get("latency_buckets") or {}
    return any(v < ob.get(k, 0.0) for k, v in (counts.get("latency_buckets") or {}).items())


def minus(counts, origin):
    if not origin:
        return counts
    out = {"requests": counts["requests"] - origin["requests"], "errors": counts["errors"] - origin["errors"]}
    if "latency_buckets" in counts:
        ob = origin.get("latency_buckets") or {}
        out["latency_buckets"] = {k: v - ob.get(k, 0.0) for k, v in counts["latency_buckets"].items()}
    return out


def zero_like(counts):
    out = {"requests": 0.0, "errors": 0.0}
    if "latency_buckets" in counts:
        out["latency_buckets"] = {k: 0.0 for k in counts["latency_buckets"]}
    return out


def validate_queries(module):
    q = module.params["queries"]
    for arm in ("baseline", "canary"):
        sub = q.get(arm)
        if not isinstance(sub, dict) or not sub.get("requests"):
            fail(module, "queries.%s must be a dict with at least 'requests' (and 'errors', "
                         "'latency_buckets'), got %r" % (arm, sub))
        unknown = set(sub) - {"requests", "errors", "latency_buckets"}
        if unknown:
            fail(module, "queries.%s: unknown keys %s (accepted: requests, errors, latency_buckets)"
                 % (arm, sorted(unknown)))
    unknown = set(q) - {"baseline", "canary"}
    if unknown:
        fail(module, "queries: unknown keys %s (accepted: baseline, canary)" % sorted(unknown))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            baseline=dict(type="dict"),
            canary=dict(type="dict"),
            queries=dict(type="dict"),
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
    module.provider_secrets = protect_module(module)
    p = module.params
    if p["interval"] < 0:
        fail(module, "interval must be >= 0 seconds, got %r" % p["interval"])
    if p["timeout"] <= 0:
        fail(module, "timeout must be > 0 seconds, got %r" % p["timeout"])
    if p["looks"] < 0:
        fail(module, "looks must be >= 0 (0: no limit), got %r" % p["looks"])
    if p["interval"] > 0 and not p["queries"]:
        fail(module, "interval > 0 (looping) needs queries: direct baseline/canary counts do not change "
                     "between looks")

    # validate options and inputs before anything is read or written
    problem = check_on_fail(p["on_fail"])
    if problem:
        fail(module, problem)
    try:
        CanaryJudge(alpha=p["alpha"], canary_share=p["canary_share"], **judge_options(p))
    except JudgeError as exc:
        fail(module, to_native(exc))

    provider = None
    if p["queries"]:
        validate_queries(module)
        try:
            provider = build_provider(p["provider"])
        except (MetricError, ValueError, TypeError) as exc:
            fail(module, "provider: %s" % to_native(exc))
        module.provider_secrets = sorted(set(module.provider_secrets) | set(provider.secrets()), key=len, reverse=True)

    state = load_state(module)
    try:
        judge, origin = make_judge(module, state)
    except (JudgeError, KeyError, TypeError, ValueError) as exc:
        fail(module, "saved judge state is not usable: %s (use reset: true to start over)" % to_native(exc))

    history = []
    result = None
    aborted = None
    deadline = time.monotonic() + p["timeout"]
    module.abort_on_error = p["on_fail"]     # from here on, an error fails closed (see fail())
    while True:
        if provider is None:
            counts = {"baseline": p["baseline"], "canary": p["canary"]}
        else:
            # one look = one evaluation of the provider, within the time left of the task's budget
            provider.begin_round(budget=max(0.0, deadline - time.monotonic()))
            counts = {"baseline": read_counts(module, provider, "baseline", p["queries"]["baseline"], after=["canary"]),
                      "canary": read_counts(module, provider, "canary", p["queries"]["canary"])}
        if provider is not None and not origin:
            origin = counts
            result = judge.observe(baseline=minus(counts["baseline"], origin["baseline"]),
                                   canary=minus(counts["canary"], origin["canary"]))
            result["reason"] = "origin of the analysis recorded (counters at the first look); " + result["reason"]
        else:
            if provider is not None:
                # a counter below its origin: the process restarted; count from zero again
                # (the judge then sees the counter go backwards and rebases or fails per on_counter_reset)
                origin = {arm: (zero_like(counts[arm]) if below(counts[arm], origin[arm]) else origin[arm])
                          for arm in ("baseline", "canary")}
            try:
                result = judge.observe(baseline=minus(counts["baseline"], origin.get("baseline")),
                                       canary=minus(counts["canary"], origin.get("canary")))
            except JudgeError as exc:
                fail(module, to_native(exc), history=history)
        decided_at = time.time()
        if result["verdict"] == "fail" and p["on_fail"]:
            aborted = abort_traffic(p["on_fail"], decided_at, check_mode=module.check_mode)
        history.append({"time": decided_at, "verdict": result["verdict"], "reason": result["reason"],
                        "requests": result["requests"]})
        if result["verdict"] != "continue" or p["interval"] <= 0 or 0 < p["looks"] <= len(history):
            break
        if time.monotonic() + p["interval"] > deadline:
            break
        time.sleep(p["interval"])

    module.abort_on_error = None
    new_state = {"judge": judge.to_state(), "origin": origin}
    try:
        changed = save_state(module, new_state)
    except OSError as exc:
        fail(module, "state_file %s: cannot write: %s" % (p["state_file"], to_native(exc)))
    out = dict(changed=changed, verdict=result["verdict"], reason=result["reason"], result=result,
               looks=len(history), history=history, state=new_state)
    if p["state_file"]:
        out["state_file"] = p["state_file"]
    if aborted is not None:
        out["on_fail"] = aborted
        out["changed"] = changed or aborted["changed"]
    module.exit_json(**scrub(out, module.provider_secrets))


if __name__ == "__main__":
    main()
