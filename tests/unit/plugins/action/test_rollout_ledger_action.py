# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollout_ledger action: a local ledger in the worker's process (results as the module's), else the module."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
from unittest import mock

import pytest

from ansible.errors import AnsibleActionFail

from ansible_collections.stagegate.rollout.plugins.action import rollout_ledger as action
from ansible_collections.stagegate.rollout.plugins.modules import rollout_ledger as module
from tests.unit.module_run import run_module_main

KEY = "k3y-0f-the-ledger-for-tests"


def run(args, transport="local", check=False, become=False, environment=None):
    """The action's result for ``args``, and the module runs it asked for (none when it ran in-process)."""
    task = mock.MagicMock()
    task.args = dict(args)
    task.async_val = 0
    task.check_mode = check
    task.environment = environment if environment is not None else [{}]
    connection = mock.MagicMock()
    connection.transport = transport
    play_context = mock.MagicMock()
    play_context.check_mode = check
    play_context.become = become
    act = action.ActionModule(task, connection, play_context, loader=None, templar=None, shared_loader_obj=None)
    calls = []

    def execute(module_name, module_args, task_vars, wrap_async=False):
        calls.append((module_name, dict(module_args)))
        return {"changed": False, "ran": "module"}

    with mock.patch.object(act, "_execute_module", side_effect=execute), \
            mock.patch.object(act, "_remove_tmp_path"):
        return act.run(task_vars={}), calls


def start(path, **kw):
    return dict({"path": path, "release": "v2", "phase": "canary", "event": "phase_start", "decision": "start"}, **kw)


def test_a_local_ledger_is_written_and_read_in_process_as_the_module_would(tmp_path, capsys):
    path = str(tmp_path / "ledger.jsonl")
    out, calls = run(start(path, key=KEY))
    assert calls == [] and out["changed"] and out["seq"] == 1 and out["entry"]["event"] == "phase_start"
    with open(path) as fh:
        assert json.loads(fh.read())["hash"] == out["hash"]
    out, calls = run({"path": path, "action": "read", "key": KEY})
    assert calls == [] and not out["changed"] and out["valid"] and out["authenticated"]
    assert out["unfinished"][0]["release"] == "v2" and [e["seq"] for e in out["entries"]] == [1]
    dummy, by_module = run_module_main(module, {"path": path, "action": "read", "key": KEY}, capsys)
    # the module's result also has the attributes AnsibleModule adds for a result's path (owner, mode, ...)
    assert out == dict((k, v) for k, v in by_module.items() if k in out)
    assert set(by_module) - set(out) <= {"invocation", "uid", "gid", "owner", "group", "mode", "state", "size"}
    # the invocation is shown with -vvv, the key masked as a module's no_log option is
    assert out["invocation"]["module_args"]["key"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert KEY not in json.dumps(out)


def test_check_mode_writes_nothing(tmp_path):
    path = str(tmp_path / "ledger.jsonl")
    out, dummy = run(start(path), check=True)
    assert out["changed"] and out["seq"] == 1 and not os.path.exists(path)


def test_secrets_of_the_evidence_stay_out_of_the_result(tmp_path):
    path = str(tmp_path / "ledger.jsonl")
    out, dummy = run(start(path, evidence={"url": "nats://user:s3cret-pw@nats:4222", "api_token": "tok-123456"},
                           reason="could not reach http://admin:adm1n-pw@prometheus:9090/api"))
    text = json.dumps(out)
    assert sorted(out["redacted"]) == ["evidence.api_token", "evidence.url", "reason"]
    assert out["invocation"]["module_args"]["evidence"]["api_token"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert "s3cret-pw" not in text and "tok-123456" not in text and "adm1n-pw" not in text
    assert out["entry"]["evidence"]["url"] == "nats://********@nats:4222"
    assert out["entry"]["reason"] == "could not reach http://********@prometheus:9090/api"
    with open(path) as fh:
        written = fh.read()
    assert "s3cret-pw" not in written and "tok-123456" not in written and "adm1n-pw" not in written


def test_refusals_fail_the_task_and_name_what_is_wrong(tmp_path):
    path = str(tmp_path / "ledger.jsonl")
    with pytest.raises(AnsibleActionFail, match="release"):
        run({"path": path, "phase": "canary", "event": "phase_start"})     # append needs release, phase, event
    with pytest.raises(AnsibleActionFail, match="nosuch"):
        run(start(path, nosuch=1))
    run(start(path))
    with open(path) as fh:
        line = json.loads(fh.read())
    line["decision"] = "promote"
    with open(path, "w") as fh:
        fh.write(json.dumps(line) + "\n")
    out, dummy = run({"path": path, "action": "verify"})
    assert out["failed"] and "broken at seq 1" in out["msg"] and not out["valid"]
    out, dummy = run(start(path))
    assert out["failed"] and "seq 1" in out["msg"]
    out, dummy = run({"path": path, "action": "read", "last": -1, "fail_on_invalid": False})
    assert out["failed"] and out["msg"] == "last must be 0 or more, got -1"


@pytest.mark.parametrize("where", [dict(transport="ssh"), dict(become=True), dict(environment=[{"TZ": "UTC"}])])
def test_any_other_task_runs_the_module(tmp_path, where):
    args = start(str(tmp_path / "ledger.jsonl"))
    out, calls = run(args, **where)
    assert calls == [("stagegate.rollout.rollout_ledger", args)] and out["ran"] == "module"
    assert not os.path.exists(args["path"])
