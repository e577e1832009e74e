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
  abort first (:func:`fail`);
* more than one analysis (O(analyses)): each an :class:`Analysis` with its own judge and origin, read in the
  same provider round and judged together (:func:`combine`: fail as soon as any fails, pass once all passed);
  the fail alpha is split equally across them (:func:`start_analyses`).

The functions but :func:`fail` and :func:`run_looks` do no I/O on the module: they raise
:class:`SessionError` (or ``JudgeError``) with a message naming the field and the fix.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import time

from ansible.module_utils.common.text.converters import to_native

from ansible_collections.stagegate.rollout.plugins.module_utils.atomic_file import AtomicWriteError, write_json_state
from ansible_collections.stagegate.rollout.plugins.module_utils.canary_judge import CanaryJudge, JudgeError
from ansible_collections.stagegate.rollout.plugins.module_utils.fast_abort import abort_traffic, check_on_fail, describe
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_base import (
    DeadlineError, MetricError, seconds_text)

# the least time left of a task's timeout with which a later look is started (the first look always is): reading
# a look's queries must not fail closed because the loop's own timing left it nothing
MIN_LOOK_SECONDS = 1.0

JUDGE_OPTIONS = ("pass_alpha", "error_margin", "error_abs_margin", "latency_quantiles", "latency_margin",
                 "error_weight", "min_requests", "max_requests", "max_seconds", "min_seconds")
# what may change when a saved state goes on into a new step (another traffic share)
STEP_OPTIONS = ("canary_share", "min_seconds", "max_seconds")
ARMS = ("baseline", "canary")
QUERY_KEYS = ("requests", "errors", "latency_buckets")
MAIN_LABEL = "queries"      # the main analysis's label in reasons and messages; an extra one's: analyses.<name>
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")


class SessionError(Exception):
    """The session cannot go on; the message names the field and the fix."""


def judge_options(params):
    opts = {k: params[k] for k in JUDGE_OPTIONS if params.get(k) is not None}
    opts["on_reset"] = params["on_counter_reset"]
    return opts


def queries_problem(queries, field="queries"):
    """What is wrong with the ``queries`` option, or the one at ``field`` (None when nothing is)."""
    if not isinstance(queries, dict):
        return "%s must be a dict with the keys baseline and canary, got %r" % (field, queries)
    for arm in ARMS:
        sub = queries.get(arm)
        if not isinstance(sub, dict) or not sub.get("requests"):
            return ("%s.%s must be a dict with at least 'requests' (and 'errors', 'latency_buckets'), got %r"
                    % (field, arm, sub))
        unknown = set(sub) - set(QUERY_KEYS)
        if unknown:
            return "%s.%s: unknown keys %s (accepted: requests, errors, latency_buckets)" % (
                field, arm, sorted(unknown))
    unknown = set(queries) - set(ARMS)
    if unknown:
        return "%s: unknown keys %s (accepted: baseline, canary)" % (field, sorted(unknown))
    return None


def analysis_problem(index, item, seen):
    """What is wrong with the O(analyses) entry ``item`` at ``index`` (``seen``: the names before it)."""
    field = "analyses[%d]" % index
    if not isinstance(item, dict):
        return "%s: %r is not accepted (accepted: a dict with name, queries and canary_share)" % (field, item)
    name = item.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.match(name) or name in seen or name == MAIN_LABEL:
        return ("%s.name: %r is not accepted (accepted: letters, digits, _ and -; unique; not '%s')"
                % (field, name, MAIN_LABEL))
    share = item.get("canary_share")
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share < 1:
        return "%s.canary_share: %r is not accepted (accepted: a share in (0, 1))" % (field, share)
    return queries_problem(item.get("queries"), field + ".queries")


def analyses_problem(analyses):
    """What is wrong with the O(analyses) option (None when nothing is)."""
    seen = []
    for index, item in enumerate(analyses or []):
        problem = analysis_problem(index, item, seen)
        if problem:
            return problem
        seen.append(item["name"])
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


class Analysis:
    """One analysis of the task: its judge, its queries (None: direct counts), the origin of its counters and its
    last look's result. ``name`` None is the main analysis (O(queries), or O(baseline) and O(canary))."""

    def __init__(self, name, queries, judge, origin):
        self.name = name
        self.queries = queries
        self.judge = judge
        self.origin = origin
        self.result = None

    @property
    def label(self):
        """How reasons and messages name it: ``queries`` (the main analysis) or ``analyses.<name>``."""
        return MAIN_LABEL if self.name is None else "analyses." + self.name

    @property
    def field(self):
        """The field of its queries."""
        return MAIN_LABEL if self.name is None else self.label + ".queries"

    def to_state(self):
        return {"judge": self.judge.to_state(), "origin": self.origin}


def saved_analyses(state, names):
    """The saved states of the extra analyses (None when there is no saved state); SessionError when the
    saved state was made with other analyses than ``names``."""
    if state is None:
        return None
    saved = state.get("analyses") or {}
    if sorted(saved) != sorted(names):
        raise SessionError("analyses: the saved state was made with the analyses %s, given %s; use reset: true to "
                           "start a new analysis with the given ones" % (sorted(saved), sorted(names)))
    return saved


def start_analyses(params, state):
    """The task's analyses, the main one first, each started or continued like :func:`start_judge`. The fail
    alpha is split equally across them (Bonferroni: a canary as good as its baseline fails any of them with a
    probability below O(alpha)); an extra analysis has its own O(canary_share)."""
    extras = params.get("analyses") or []
    split = dict(params, alpha=params["alpha"] / (1 + len(extras)))
    saved = saved_analyses(state, [item["name"] for item in extras])
    analyses = [Analysis(None, params.get("queries"), *start_judge(split, state))]
    for item in extras:
        sub = saved[item["name"]] if saved is not None else None
        judge, origin = start_judge(dict(split, canary_share=item["canary_share"]), sub)
        analyses.append(Analysis(item["name"], item["queries"], judge, origin))
    return analyses


def state_of(analyses):
    """The task's state: the main analysis's judge and origin, and with extra ones their own under ``analyses``."""
    state = analyses[0].to_state()
    if len(analyses) > 1:
        state["analyses"] = dict((an.name, an.to_state()) for an in analyses[1:])
    return state


def read_counts(provider, arm, queries, after=(), field=MAIN_LABEL, later=()):
    """Read one arm's counters (the queries at ``field``) through the metric provider. For messages:
    ``after``, the arms of ``field`` still to read; ``later``, the fields still to read after them."""
    out = {}
    todo = ["%s.%s.%s" % (field, arm, k) for k in QUERY_KEYS if queries.get(k)]
    todo += ["%s.%s" % (field, a) for a in after] + list(later)
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
                    raise SessionError("%s.%s.latency_buckets: series without an 'le' label: %r"
                                       % (field, arm, sample.labels))
                buckets[le] = sample.value
            out["latency_buckets"] = buckets
    except DeadlineError as exc:
        raise SessionError("%s.%s: %s (look budget %s s; not read: %s)"
                           % (field, arm, to_native(exc), seconds_text(provider.budget() or 0), ", ".join(todo)))
    except MetricError as exc:
        raise SessionError("%s.%s: %s" % (field, arm, to_native(exc)))
    return out


def read_round(provider, analyses, budget):
    """One look's counters of every analysis, read in one evaluation of the provider within ``budget`` seconds:
    the main analysis's baseline and canary first, then each extra one's."""
    provider.begin_round(budget=budget)
    fields = [an.field for an in analyses]
    counts = []
    for index, an in enumerate(analyses):
        later = fields[index + 1:]
        counts.append({"baseline": read_counts(provider, "baseline", an.queries["baseline"], after=["canary"],
                                               field=an.field, later=later),
                       "canary": read_counts(provider, "canary", an.queries["canary"], field=an.field, later=later)})
    return counts


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


def look_all(analyses, counts, counters):
    """One look of every analysis at its ``counts`` (as :func:`look`); an extra analysis's JudgeError is
    prefixed with its label."""
    for an, arms in zip(analyses, counts):
        try:
            an.result, an.origin = look(an.judge, arms, an.origin, counters)
        except JudgeError as exc:
            if an.name is None:
                raise
            raise JudgeError("%s: %s" % (an.label, to_native(exc)))


def combine(analyses):
    """The combined ``(verdict, reason)``: ``fail`` as soon as any analysis failed, ``pass`` once every one
    passed (verdicts are latched), ``continue`` while any goes on, else ``inconclusive``. The reason gives the
    analyses that decided (every one on ``continue``), each labelled; one analysis's reason is its own."""
    verdicts = [an.result["verdict"] for an in analyses]
    if "fail" in verdicts:
        verdict = "fail"
    elif all(v == "pass" for v in verdicts):
        verdict = "pass"
    elif "continue" in verdicts:
        verdict = "continue"
    else:
        verdict = "inconclusive"
    if len(analyses) == 1:
        return verdict, analyses[0].result["reason"]
    shown = [an for an in analyses if verdict == "continue" or an.result["verdict"] == verdict]
    return verdict, "; ".join("%s: %s" % (an.label, an.result["reason"]) for an in shown)


def combined_result(analyses):
    """The main analysis's result with the combined verdict and reason, and every extra one's under
    ``analyses``."""
    verdict, reason = combine(analyses)
    result = dict(analyses[0].result, verdict=verdict, reason=reason)
    if len(analyses) > 1:
        result["analyses"] = dict((an.name, an.result) for an in analyses[1:])
    return result


def history_entry(result, decided_at):
    entry = {"time": decided_at, "verdict": result["verdict"], "reason": result["reason"],
             "requests": result["requests"]}
    if "analyses" in result:
        entry["analyses"] = dict((name, res["verdict"]) for name, res in result["analyses"].items())
    return entry


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


def run_looks(module, analyses, provider=None):
    """The looks of one task: ``(result, history, aborted)`` (the analyses keep their judge's and origin's
    progress). With a ``provider`` each look reads the O(queries) and every O(analyses) entry's (one evaluation
    within the time left of O(timeout)); without, it takes O(baseline) and O(canary). Looks go on every
    O(interval) seconds while the combined verdict is ``continue``, up to O(looks)."""
    p = module.params
    history = []
    result = None
    aborted = None
    deadline = time.monotonic() + p["timeout"]
    module.abort_on_error = p["on_fail"]     # from here on, an error fails closed (see fail())
    while True:
        try:
            if provider is None:
                counts = [{"baseline": p["baseline"], "canary": p["canary"]}]
            else:
                # one look = one evaluation of the provider, within the time left of the task's budget
                counts = read_round(provider, analyses, max(0.0, deadline - time.monotonic()))
        except SessionError as exc:
            fail(module, to_native(exc))
        try:
            look_all(analyses, counts, counters=provider is not None)
        except JudgeError as exc:
            fail(module, to_native(exc), history=history)
        result = combined_result(analyses)
        decided_at = time.time()
        if result["verdict"] == "fail" and p["on_fail"]:
            aborted = abort_traffic(p["on_fail"], decided_at, check_mode=module.check_mode)
        history.append(history_entry(result, decided_at))
        if result["verdict"] != "continue" or p["interval"] <= 0 or 0 < p["looks"] <= len(history):
            break
        # no look is started with less than MIN_LOOK_SECONDS of the timeout left to read the metrics: that look
        # would fail closed on this loop's own timing (a busy machine's sleep or module start), not on the source
        if time.monotonic() + p["interval"] + MIN_LOOK_SECONDS > deadline:
            break
        time.sleep(p["interval"])
        if deadline - time.monotonic() < MIN_LOOK_SECONDS:
            break       # the sleep overran
    module.abort_on_error = None
    return result, history, aborted


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
    if p.get("analyses") and not p["queries"]:
        fail(module, "analyses needs queries (the main analysis, read through the same provider): it is refused "
                     "with direct baseline/canary counts")

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
        problem = queries_problem(p["queries"]) or analyses_problem(p.get("analyses"))
        if problem:
            fail(module, problem)
        provider = module.provider(p["provider"])

    try:
        analyses = start_analyses(p, saved_state(p))
    except SessionError as exc:
        fail(module, to_native(exc))
    except (JudgeError, AttributeError, KeyError, TypeError, ValueError) as exc:
        fail(module, "saved judge state is not usable: %s (use reset: true to start over)" % to_native(exc))

    result, history, aborted = run_looks(module, analyses, provider)
    new_state = state_of(analyses)
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
