# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""stagegate.rollout.approval: a person types a word at the controller's terminal, within a time limit.

Unlike ansible.builtin.pause it never approves by itself: without an interactive terminal (cron, CI, an AWX
job) nothing can be typed and RV(approved) is false at once; with a terminal the prompt waits at most
O(timeout) seconds (pause cannot: with a time limit it ignores what is typed). The answer is read through
ansible's own prompt (the controller's main process owns the terminal), so it works from any worker. Under
ansible-runner (how AWX runs a job; it sets AWX_ISOLATED_DATA_DIR) the prompt is not shown: the runner gives the
job a pseudo-terminal nobody types into, and the prompt would wait there until the job times out.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time

from ansible.errors import AnsibleError, AnsiblePromptInterrupt, AnsiblePromptNoninteractive
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()

ARGUMENT_SPEC = dict(
    prompt=dict(type="str", required=True),
    expect=dict(type="str", required=True, no_log=False),
    timeout=dict(type="int", default=0),
)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    BYPASS_HOST_LOOP = True
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        dummy, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        if args["timeout"] < 0:
            raise AnsibleError("timeout: %r; accepted: 0 (wait as long as it takes) or a number of seconds > 0"
                               % args["timeout"])
        expect = args["expect"].strip()
        if not expect:
            raise AnsibleError("expect: the word to type must not be empty")
        seconds = args["timeout"] or None
        msg = "[%s]\n%s%s:" % (self._task.get_name().strip(), args["prompt"],
                               " (within %d s)" % seconds if seconds else "")
        started = time.time()
        typed, terminal, interrupted = "", True, False
        under_runner = bool(os.environ.get("AWX_ISOLATED_DATA_DIR"))
        try:
            if under_runner:
                terminal = False
            else:
                typed = to_text(display.prompt_until(msg, private=False, seconds=seconds, complete_input=None),
                                errors="surrogate_or_replace").strip()
        except AnsiblePromptNoninteractive:
            terminal = False
        except AnsiblePromptInterrupt:
            interrupted = True
        waited = round(time.time() - started, 1)
        timed_out = bool(terminal and seconds and not interrupted and waited >= seconds - 0.5)
        approved = terminal and not interrupted and not timed_out and typed == expect
        if under_runner:
            why = "not asked: the job runs under ansible-runner (AWX), where nobody can type %s" % expect
        elif not terminal:
            why = "no interactive terminal: nobody can type %s here" % expect
        elif interrupted:
            why = "interrupted at the prompt"
        elif timed_out:
            why = "nobody typed %s within %d s" % (expect, seconds)
        elif not approved:
            why = "%r was typed, not %s" % (typed[:40], expect)
        else:
            why = "a person typed %s at the terminal" % expect
        result.update(changed=False, approved=approved, terminal=terminal, timed_out=timed_out,
                      interrupted=interrupted, typed=typed[:40], waited=waited, reason=why)
        return result
