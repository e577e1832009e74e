# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The canary judge's session: what the ``canary_judge`` module does around the statistics of
``module_utils.canary_judge``.

* the saved state - read from O(state) or O(state_file) (:func:`read_state_file`), continued or started
  again for a new step (:func:`start_judge`), written back (``atomic_file.write_json_state``);
* the counters - read through the metric provider, one arm at a time (:func:`read_counts`), counted from
  their origin, the values at the first look (:func:`look`: a counter below its origin means the process
  restarted, and it counts from zero again);
* the look loop (:func:`run_looks`): a look every ``interval`` seconds within ``timeout``, the fast abort
  on a ``fail`` verdict, and - once the looks have begun - a look that cannot be made fails closed, the fast
  abort first (:func:`fail`).

The functions but :func:`fail` and :func:`run_looks` do no I/O on the module: they raise
:class:`SessionError` (or ``JudgeError``) with a message naming the field and the fix.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import time

from ansible.module_utils.common.text.converters import to_native

from ansible_collections.stagegate.rollout.plugins.module_utils.atomic_file import AtomicWriteError, write_json_state
from ansible_collections.stagegate.rollout.plugins.module_utils.canary_judge import CanaryJudge, JudgeError
from ansible_collections.stagegate.rollout.plugins.module_utils.fast_abort import abort_traffic, check_on_fail, describe
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_base import (
    DeadlineError, MetricError, seconds_text)

JUDGE_OPTIONS = ("pass_alpha", "error_margin", "error_abs_margin", "latency_quantiles", "latency_margin",
                 "error_weight", "min_requests", "max_requests", "max_seconds", "min_seconds")
# what may change when a saved state goes on into a new step (another traffic share)
STEP_OPTIONS = ("canary_share", "min_seconds", "max_seconds")
ARMS = ("baseline", "canary")
QUERY_KEYS = ("requests", "errors", "latency_buckets")


class SessionError(Exception):
    """The session cannot go on; the message names the field and the fix."""


def judge_options(params):
    opts = {k: params[k] for k in JUDGE_OPTIONS if params.get(k) is not None}
    opts["on_reset"] = params["on_counter_reset"]
    return opts


def queries_problem(queries):
    """What is wrong with the ``queries`` option (None when nothing is)."""
    for arm in ARMS:
        sub = queries.get(arm)
        if not isinstance(sub, dict) or not sub.get("requests"):
            return ("queries.%s must be a dict with at least 'requests' (and 'errors', 'latency_buckets'), got %r"
                    % (arm, sub))
        unknown = set(sub) - set(QUERY_KEYS)
        if unknown:
            return "queries.%s: unknown keys %s (accepted: requests, errors, latency_buckets)" % (arm, sorted(unknown))
    unknown = set(queries) - set(ARMS)
    if unknown:
        return "queries: unknown keys %s (accepted: baseline, canary)" % sorted(unknown)
    return None


def read_state_file(path):
    """The judge state saved in ``path`` (None when there is no such file)."""
    if not os.path.exists(path):
        return None
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError) as exc:
        raise SessionError("state_file %s: cannot read the judge state: %s (use reset: true to start over)"
                           % (path, to_native(exc)))


def saved_state(params):
    """The state to continue from: none on ``reset``, else O(state), else the O(state_file)'s."""
    if params["reset"]:
        return None
    if params["state"] is None and params["state_file"]:
        return read_state_file(params["state_file"])
    return params["state"]


def start_judge(params, state):
    """``(judge, origin)``: a new judge (no ``state``) or the saved one, going on into a new step when
    ``params['step']`` differs from the saved one. SessionError when the options differ from the saved
    ones (but for those a new step may change); JudgeError, KeyError, TypeError or ValueError when the
    state is not usable."""
    opts = judge_options(params)
    if state is None:
        judge = CanaryJudge(alpha=params["alpha"], canary_share=params["canary_share"], **opts)
        judge.step = params["step"]
        return judge, {}
    judge = CanaryJudge.from_state(state["judge"])
    new_step = params["step"] is not None and params["step"] != judge.step
    changed = judge.options_changed(alpha=params["alpha"], canary_share=params["canary_share"], **opts)
    if new_step:
        changed = [name for name in changed if name not in STEP_OPTIONS]
    if changed:
        raise SessionError("the saved state was made with different options (%s); use reset: true to start a new "
                           "analysis with the new options%s"
                           % (", ".join(changed),
                              "" if new_step else " (or a new step: to change %s)" % ", ".join(STEP_OPTIONS)))
    if new_step:
        judge.new_step(params["step"], canary_share=params["canary_share"], min_seconds=params["min_seconds"],
                       max_seconds=params["max_seconds"])
    return judge, state.get("origin") or {}


def read_counts(provider, arm, queries, after=()):
    """Read one arm's counters through the metric provider (``after``: the arms still to read, for messages)."""
    out = {}
    todo = ["queries.%s.%s" % (arm, k) for k in QUERY_KEYS if queries.get(k)]
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
                    raise SessionError("queries.%s.latency_buckets: series without an 'le' label: %r"
                                       % (arm, sample.labels))
                buckets[le] = sample.value
            out["latency_buckets"] = buckets
    except DeadlineError as exc:
        raise SessionError("queries.%s: %s (look budget %s s; not read: %s)"
                           % (arm, to_native(exc), seconds_text(provider.budget() or 0), ", ".join(todo)))
    except MetricError as exc:
        raise SessionError("queries.%s: %s" % (arm, to_native(exc)))
    return out


def below(counts, origin):
    """True when a raw counter is below its origin (the process restarted since the first look)."""
    if counts["requests"] < origin["requests"] or counts["errors"] < origin["errors"]:
        return True
    ob = origin.get("latency_buckets") or {}
    return any(v < ob.get(k, 0.0) for k, v in (counts.get("latency_buckets") or {}).items())


def minus(counts, origin):
    """The counters counted from ``origin`` (as they are without one)."""
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


def look(judge, counts, origin, counters):
    """One look of ``judge`` at ``counts`` (``{'baseline': ..., 'canary': ...}``): ``(result, origin)``.

    ``counters``: the counts are raw counters read from a provider - the first look records them as the
    origin of the analysis; a counter below its origin (the process restarted) counts from zero again (the
    judge then sees it go backwards and rebases or fails per on_counter_reset). Direct counts are the
    judge's input as they are. JudgeError when the judge refuses the counts."""
    if counters and not origin:
        origin = counts
        result = judge.observe(baseline=minus(counts["baseline"], origin["baseline"]),
                               canary=minus(counts["canary"], origin["canary"]))
        result["reason"] = "origin of the analysis recorded (counters at the first look); " + result["reason"]
        return result, origin
    if counters:
        origin = {arm: (zero_like(counts[arm]) if below(counts[arm], origin[arm]) else origin[arm]) for arm in ARMS}
    result = judge.observe(baseline=minus(counts["baseline"], origin.get("baseline")),
                           canary=minus(counts["canary"], origin.get("canary")))
    return result, origin


def fail(module, msg, **result):
    """``module.fail`` (a ``metric_module.MetricModule``: scrubbed of the provider's secrets).

    Once the looks have begun (``module.abort_on_error`` holds the on_fail option), a look that cannot be made
    (metrics unreadable, a counter reset with on_counter_reset=error) fails closed: the fast abort runs first.
    """
    spec = getattr(module, "abort_on_error", None)
    if spec:
        module.abort_on_error = None
        result["on_fail"] = abort_traffic(spec, time.time(), check_mode=module.check_mode)
        msg = "%s; fast abort: %s" % (msg, describe(result["on_fail"]))
    module.fail(msg, **result)


def run_looks(module, judge, origin, provider=None):
    """The looks of one task: ``(result, origin, history, aborted)``. With a ``provider`` each look reads the
    O(queries) (one evaluation within the time left of O(timeout)); without, it takes O(baseline) and
    O(canary). Looks go on every O(interval) seconds while the verdict is ``continue``, up to O(looks)."""
    p = module.params
    history = []
    result = None
    aborted = None
    deadline = time.monotonic() + p["timeout"]
    module.abort_on_error = p["on_fail"]     # from here on, an error fails closed (see fail())
    while True:
        try:
            if provider is None:
                counts = {"baseline": p["baseline"], "canary": p["canary"]}
            else:
                # one look = one evaluation of the provider, within the time left of the task's budget
                provider.begin_round(budget=max(0.0, deadline - time.monotonic()))
                counts = {"baseline": read_counts(provider, "baseline", p["queries"]["baseline"], after=["canary"]),
                          "canary": read_counts(provider, "canary", p["queries"]["canary"])}
        except SessionError as exc:
            fail(module, to_native(exc))
        try:
            result, origin = look(judge, counts, origin, counters=provider is not None)
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
    return result, origin, history, aborted


def run_judge(module):
    """The ``canary_judge`` module's task: check the options, continue the saved state, make the looks, save
    the state; returns the module's result."""
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
        problem = queries_problem(p["queries"])
        if problem:
            fail(module, problem)
        provider = module.provider(p["provider"])

    try:
        judge, origin = start_judge(p, saved_state(p))
    except SessionError as exc:
        fail(module, to_native(exc))
    except (JudgeError, KeyError, TypeError, ValueError) as exc:
        fail(module, "saved judge state is not usable: %s (use reset: true to start over)" % to_native(exc))

    result, origin, history, aborted = run_looks(module, judge, origin, provider)
    new_state = {"judge": judge.to_state(), "origin": origin}
    changed = False
    if p["state_file"]:
        try:
            changed = write_json_state(p["state_file"], new_state, module)
        except AtomicWriteError as exc:
            fail(module, to_native(exc))
    out = dict(changed=changed, verdict=result["verdict"], reason=result["reason"], result=result,
               looks=len(history), history=history, state=new_state)
    if p["state_file"]:
        out["state_file"] = p["state_file"]
    if aborted is not None:
        out["on_fail"] = aborted
        out["changed"] = changed or aborted["changed"]
    return out
