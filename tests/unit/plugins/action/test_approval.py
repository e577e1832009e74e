# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""stagegate.rollout.approval decides from what ansible's prompt returned (typed, timed out, no terminal,
interrupted); the real terminal is tested on a pty in tests/integration/faults and tests/integration/hosts."""
import time
from unittest import mock

import pytest
from ansible.errors import AnsibleError, AnsiblePromptInterrupt, AnsiblePromptNoninteractive

from ansible_collections.stagegate.rollout.plugins.action import approval


def run(args, prompt):
    task = mock.MagicMock()
    task.args = args
    task.async_val = 0
    task.get_name.return_value = "Phase | wait for approval"
    action = approval.ActionModule(task, mock.MagicMock(), mock.MagicMock(), loader=None, templar=None,
                                   shared_loader_obj=None)
    with mock.patch.object(approval.display, "prompt_until", side_effect=prompt) as called:
        return action.run(task_vars={}), called


def test_the_version_typed_approves():
    res, called = run({"prompt": "type v3", "expect": "v3", "timeout": 60}, lambda *a, **k: b" v3 ")
    assert res["approved"] and res["terminal"] and not res["timed_out"] and res["typed"] == "v3"
    assert not res["changed"]
    # asked with a time limit, Enter completes
    assert called.call_args.kwargs["seconds"] == 60 and called.call_args.kwargs["complete_input"] is None
    assert "(within 60 s)" in called.call_args.args[0]


def test_another_word_does_not_approve():
    res, dummy = run({"prompt": "type v3", "expect": "v3"}, lambda *a, **k: b"yes")
    assert not res["approved"] and res["reason"] == "'yes' was typed, not v3"


def test_no_terminal_never_approves():
    def no_tty(*a, **k):
        raise AnsiblePromptNoninteractive("stdin is not interactive")
    res, dummy = run({"prompt": "type v3", "expect": "v3"}, no_tty)
    assert not res["approved"] and not res["terminal"] and "no interactive terminal" in res["reason"]


def test_the_time_limit_passes_without_a_line():
    def slow(*a, **k):
        time.sleep(1.0)
        return b"v"  # typed, no Enter: what prompt_until returns when the time is up
    res, dummy = run({"prompt": "type v3", "expect": "v3", "timeout": 1}, slow)
    assert not res["approved"] and res["timed_out"] and res["reason"] == "nobody typed v3 within 1 s"


def test_under_ansible_runner_nobody_is_asked(monkeypatch):
    monkeypatch.setenv("AWX_ISOLATED_DATA_DIR", "/runner/artifacts/1")

    def asked(*a, **k):
        raise AssertionError("asked on the runner's pseudo-terminal")
    res, called = run({"prompt": "type v3", "expect": "v3", "timeout": 60}, asked)
    assert not res["approved"] and not res["terminal"] and "ansible-runner" in res["reason"]
    assert not called.called


def test_interrupted():
    def ctrl_c(*a, **k):
        raise AnsiblePromptInterrupt("user interrupt")
    res, dummy = run({"prompt": "type v3", "expect": "v3"}, ctrl_c)
    assert not res["approved"] and res["interrupted"]


@pytest.mark.parametrize("args, needle", [
    ({"prompt": "p", "expect": "v3", "timeout": -1}, "timeout: -1"),
    ({"prompt": "p", "expect": "  "}, "expect"),
])
def test_bad_arguments(args, needle):
    with pytest.raises(AnsibleError, match=needle):
        run(args, lambda *a, **k: b"")
