# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A metric gate's run: its checks (``metric_checks``) evaluated once or repeatedly. Pure logic.

Repeated evaluation (``run_gate``): every ``interval`` seconds for ``duration``
seconds (first evaluation at once, the last no later than ``duration`` after the
start). Per check:

* ``failure_limit`` N: the check fails as soon as more than N evaluations failed
  in total (0: the first failure fails, like Argo Rollouts' default failureLimit);
* ``consecutive_failures`` N: the check fails as soon as N evaluations in a row
  failed; a passing (or inconclusive) evaluation resets the run, so one blip does
  not roll back;
* with neither given, ``failure_limit`` is 0; with only ``consecutive_failures``
  there is no total limit; with both, whichever trips first.

The gate stops at the first check that trips. Otherwise, at the end, a check is
``pass`` when at least one evaluation passed and the last one was not
inconclusive, else ``inconclusive`` (tolerated failures never turn into a pass on
their own). The gate's verdict is ``fail`` if a check failed, else
``inconclusive`` if one is inconclusive, else ``pass``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.stagegate.rollout.plugins.module_utils.durations import parse_seconds
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_base import jsonable
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_checks import CheckSpecError

MAX_HISTORY = 200


class CheckTally(object):
    """Counts of one check over the evaluations of a gate run, and whether its limits tripped."""

    def __init__(self, check):
        self.check = check
        self.evaluations = 0
        self.passes = 0
        self.failures = 0
        self.inconclusive = 0
        self.consecutive = 0
        self.max_consecutive = 0
        self.last = None
        self.tripped = None

    def add(self, result):
        self.evaluations += 1
        self.last = result
        v = result["verdict"]
        if v == "fail":
            self.failures += 1
            self.consecutive += 1
            self.max_consecutive = max(self.max_consecutive, self.consecutive)
        else:
            self.consecutive = 0
            if v == "pass":
                self.passes += 1
            else:
                self.inconclusive += 1
        limit = self.check.get("failure_limit")
        consec = self.check.get("consecutive_failures")
        if limit is not None and self.failures > limit:
            self.tripped = ("%d failed evaluation(s) of %d, more than failure_limit %d"
                            % (self.failures, self.evaluations, limit))
        elif consec is not None and self.consecutive >= consec:
            self.tripped = ("%d failed evaluations in a row (consecutive_failures %d)" % (self.consecutive, consec))
        return self.tripped

    def final(self, repeated):
        res = dict(self.last)
        res["evaluations"] = self.evaluations
        res["failures"] = self.failures
        res["passes"] = self.passes
        res["inconclusive_evaluations"] = self.inconclusive
        res["max_consecutive_failures"] = self.max_consecutive
        res["last_verdict"] = self.last["verdict"]
        if not repeated:
            if self.tripped is None and self.last["verdict"] == "fail":
                # a failure tolerated by failure_limit in a single evaluation: never a pass on its own
                res["verdict"] = "inconclusive"
                res["reason"] = "no evaluation passed (1 failed, tolerated by failure_limit %s); last: %s" % (
                    self.check.get("failure_limit"), self.last["reason"])
            return res
        counts = "%d evaluation(s): %d passed, %d failed, %d inconclusive" % (
            self.evaluations, self.passes, self.failures, self.inconclusive)
        if self.tripped:
            res["verdict"] = "fail"
            res["reason"] = "%s [%s]" % (self.last["reason"], self.tripped)
        elif self.passes == 0:
            res["verdict"] = "inconclusive"
            res["reason"] = "no evaluation passed (%s); last: %s" % (counts, self.last["reason"])
        elif self.last["verdict"] == "inconclusive":
            res["verdict"] = "inconclusive"
            res["reason"] = "last evaluation inconclusive (%s): %s" % (counts, self.last["reason"])
        else:
            res["verdict"] = "pass"
            res["reason"] = "%s [%s]" % (self.last["reason"], counts)
        return res


def overall_verdict(results):
    verdicts = [r["verdict"] for r in results]
    if "fail" in verdicts:
        return "fail"
    if "inconclusive" in verdicts:
        return "inconclusive"
    return "pass"


def summarize(results, verdict):
    bad = [r for r in results if r["verdict"] != "pass"]
    if not bad:
        return "pass: all %d check(s) passed" % len(results)
    return "%s: %d of %d check(s) %s: %s" % (
        verdict, len([r for r in bad if r["verdict"] == verdict]), len(results),
        "failed" if verdict == "fail" else "inconclusive",
        "; ".join(r["reason"] for r in bad if r["verdict"] == verdict))


def run_gate(checks, evaluate, interval=None, duration=None, before_round=None, clock=time.monotonic,
             sleep=time.sleep):
    """Evaluate every check once, or every ``interval`` s for ``duration`` s; stop at the first check that trips.

    ``evaluate(check)`` returns the result of one evaluation (``evaluate_check`` bound to the check's provider).
    Returns ``{verdict, checks, summary, evaluations, elapsed, history, stopped_early}``.
    """
    repeated = bool(interval) and bool(duration)
    tallies = [CheckTally(c) for c in checks]
    history = []
    start = clock()
    rounds = 0
    stopped_early = False
    while True:
        if before_round is not None:
            before_round()
        t_round = clock() - start
        verdicts = {}
        observed = {}
        tripped = False
        for tally in tallies:
            result = evaluate(tally.check)
            observed[tally.check["name"]] = result.get("observed")
            verdicts[tally.check["name"]] = result["verdict"]
            if tally.add(result):
                tripped = True
        rounds += 1
        history.append({"evaluation": rounds, "elapsed": round(t_round, 3), "verdicts": verdicts,
                        "observed": observed})
        if len(history) > MAX_HISTORY:
            history.pop(0)
        if tripped:
            stopped_early = repeated
            break
        if not repeated:
            break
        next_at = rounds * interval
        if next_at > duration + 1e-9:
            break
        wait = start + next_at - clock()
        if wait > 0:
            sleep(wait)
    results = [t.final(repeated) for t in tallies]
    verdict = overall_verdict(results)
    return {
        "verdict": verdict, "checks": results, "summary": summarize(results, verdict), "evaluations": rounds,
        "elapsed": round(clock() - start, 3), "history": history, "stopped_early": stopped_early,
    }


def gate_schedule(interval, duration):
    """Validate interval / duration (seconds or durations); returns (interval, duration) in seconds or (None, None)."""
    try:
        iv = parse_seconds(interval, "interval")
        du = parse_seconds(duration, "duration")
    except ValueError as exc:
        raise CheckSpecError(str(exc))
    if not iv and not du:
        return None, None
    if du and not iv:
        raise CheckSpecError("duration %r needs interval (seconds between evaluations, e.g. 10s)" % (duration,))
    if iv and not du:
        raise CheckSpecError("interval %r needs duration (how long to keep evaluating, e.g. 5m)" % (interval,))
    return iv, du


def output(run):
    """The run's result with non-finite numbers spelled 'NaN' / '+Inf' (valid JSON)."""
    return jsonable(run)
