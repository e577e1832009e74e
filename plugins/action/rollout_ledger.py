# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""stagegate.rollout.rollout_ledger, run by Ansible: in the controller's process when the ledger is local.

The ledger lives on the controller (every phase delegates it to localhost) and is read and appended to more than
ten times a phase. Run as a module, each call starts a Python process on the controller (0.3-0.5 s); when the
task's connection is local, without become, async or a task environment, this action validates the same
argument spec and calls the same code (``module_utils.ledger.run_ledger``) in its own worker process instead,
with the same results, warnings, failures and check mode. Any other task (a ledger on another host, become, ...)
runs the module as usual.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.common.parameters import remove_values
from ansible.plugins.action import ActionBase

from ansible_collections.stagegate.rollout.plugins.module_utils.ledger import (
    ARGUMENT_SPEC, REQUIRED_IF, LedgerRunError, run_ledger)

MODULE = "stagegate.rollout.rollout_ledger"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = True
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def _in_process(self):
        """Whether the module would run on this controller as this user, in the environment of this process."""
        return (getattr(self._connection, "transport", "") == "local" and not self._play_context.become
                and not self._task.async_val and not any(self._task.environment or []))

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp  # no effect
        if not self._in_process():
            # as ansible.builtin.normal runs a module
            wrap_async = bool(self._task.async_val) and not self._connection.has_native_async
            result.update(self._execute_module(module_name=MODULE, module_args=self._task.args, task_vars=task_vars,
                                               wrap_async=wrap_async))
            if not wrap_async:
                self._remove_tmp_path(self._connection._shell.tmpdir)
            return result
        validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC, required_if=REQUIRED_IF)
        secrets, warnings = set(validation._no_log_values), []
        try:
            out = run_ledger(args, check_mode=bool(self._play_context.check_mode), secrets=secrets,
                             warn=warnings.append)
        except LedgerRunError as exc:
            out = dict(exc.result, failed=True, msg=str(exc))
        if warnings:
            out["warnings"] = warnings
        out["invocation"] = {"module_args": args}   # as a module's result has it (shown with -vvv)
        # the key and the raw values an appended record's evidence had redacted stay out of the result
        result.update(remove_values(out, secrets))
        return result
