# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""stagegate.rollout.canary_judge, run by Ansible: the looks in rounds, with a progress line after each.

A judge that loops (O(interval) > 0) for a minute inside one module call prints nothing for that minute. This
action runs the module in rounds of at most O(progress) seconds on the task's host (the delegated one, where
the fast abort's HAProxy socket is), carries the judge's state from round to round (RV(state) given back as
O(state)), and after each round prints one line to the normal output (and so to AWX job events): the look,
requests and errors per arm, the e-values against their boundaries and the time left. When the verdict is in it
prints one verdict line with the reason (and what the fast abort did). The returned result is the last round's,
with the looks, history and progress lines of every round.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.stagegate.rollout.plugins.module_utils.judge_session import MIN_LOOK_SECONDS

display = Display()

MODULE = "stagegate.rollout.canary_judge"
HISTORY_KEPT = 200


def _num(value):
    if isinstance(value, float):
        return "%.3g" % value
    return "%s" % value


def _stream_text(name, st):
    return "%s e_fail %s/%s e_pass %s/%s" % (name, _num(st.get("e_fail")), _num(st.get("fail_threshold")),
                                             _num(st.get("e_pass")), _num(st.get("pass_threshold")))


def progress_line(res, max_seconds=None, left=None):
    """One line for a round that ended with ``res`` (a module result): look, arms, e-values, time left."""
    r = res.get("result") or {}
    parts = ["look %s" % r.get("looks", res.get("looks", 0))]
    elapsed = r.get("elapsed_seconds")
    if elapsed is not None:
        parts[0] += ", %.0f s" % elapsed + (" of %.0f s" % max_seconds if max_seconds else "")
    err = r.get("errors") or {}
    if err:
        parts.append("canary %d req %d err | stable %d req %d err" % (
            err.get("canary_requests", 0), err.get("canary_events", 0),
            err.get("baseline_requests", 0), err.get("baseline_events", 0)))
        parts.append(_stream_text("errors", err))
    for lat in r.get("latency") or []:
        if "e_fail" in lat:
            parts.append(_stream_text("p%g" % (100 * lat["quantile"]), lat))
    for name, sub in sorted((r.get("analyses") or {}).items()):
        parts.append("%s %s: %s" % (name, sub.get("verdict", "?"), _stream_text("errors", sub.get("errors") or {})))
    if left is not None and res.get("verdict") == "continue":
        parts.append("%.0f s left" % max(left, 0.0))
    parts.append(res.get("verdict", "?"))
    return "canary judge: " + " | ".join(parts)


def verdict_line(res):
    """The step's last line: the verdict, why, and what the fast abort did."""
    r = res.get("result") or {}
    line = "canary judge: verdict %s after %s looks, %.0f s: %s" % (
        str(res.get("verdict", "?")).upper(), res.get("looks", 0), r.get("elapsed_seconds") or 0.0,
        res.get("reason", ""))
    abort = res.get("on_fail")
    if abort:
        if abort.get("applied"):
            line += " | fast abort: weights %s written %s ms after the verdict" % (
                ", ".join("%s=%s" % kv for kv in sorted(abort["weights"].items())), abort.get("ms_after_verdict"))
        elif abort.get("check_mode"):
            line += " | fast abort: not written (check mode)"
        else:
            line += " | fast abort failed: %s" % abort.get("error")
    return line


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def _run_module(self, args, task_vars):
        return self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars)

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = dict(self._task.args)
        try:
            interval = float(args.get("interval") or 0)
            progress = float(args["progress"]) if args.get("progress") is not None else 10.0
            timeout = float(args["timeout"]) if args.get("timeout") is not None else 600.0
            max_seconds = float(args["max_seconds"]) if args.get("max_seconds") is not None else None
        except (TypeError, ValueError):
            interval = 0.0          # the module names the field that is not a number
        if interval <= 0 or progress <= 0 or timeout <= 0 or self._task.async_val:
            result.update(self._run_module(args, task_vars))
            return result

        # O(timeout) counts from the first look (the first round's start-up is not counted, as it never was for one
        # long call): a later round gets the time left less its expected start-up, so that a look hanging on the
        # metrics source fails (closed) at the first look + timeout, not later
        first_look = None
        left = timeout
        looks, history, lines = 0, [], []
        overhead = None         # seconds a round costs beyond its looks (module start, transfer); measured
        args["progress"] = 0
        while True:
            # the first round makes one look (a line at once, and the overhead measured); then as many looks as fit
            # in one progress period less 3 s (a busy machine's start-ups vary by seconds), at least one
            per_round = 1 if overhead is None else max(1, int((progress - 3.0 - overhead) // interval) + 1)
            args.update(timeout=left - (overhead or 0.0), looks=per_round)
            started = time.monotonic()
            res = self._run_module(args, task_vars)
            made = res.get("looks", 0) or 0
            spent = time.monotonic() - started - max(made - 1, 0) * interval
            overhead = min(max(spent, 0.2, (overhead or 0.0) * 0.8), progress / 2.0)
            looks += made
            history = (history + list(res.get("history") or []))[-HISTORY_KEPT:]
            if res.get("failed") or "state" not in res:
                line = "canary judge: FAILED after %s looks: %s" % (looks, res.get("msg", ""))
                display.display(line)
                lines.append(line)
                res.update(looks=looks, history=history, progress=lines)
                result.update(res)
                return result
            if first_look is None:
                first_look = time.monotonic()       # the first round's one look was its last step
            left = timeout - (time.monotonic() - first_look)
            # no round is started that could not read the metrics once in its time (it would fail closed)
            done = res.get("verdict") != "continue" or left - overhead < MIN_LOOK_SECONDS
            line = verdict_line(dict(res, looks=looks)) if done else progress_line(res, max_seconds, left)
            display.display(line)
            lines.append(line)
            if done:
                break
            # the next round continues the analysis from this one's state
            args.update(state=res["state"], reset=False)
        res.update(looks=looks, history=history, progress=lines)
        result.update(res)
        return result
