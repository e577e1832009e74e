# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the evidence playbooks through the real ansible-playbook against localhost."""

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
PLAYBOOKS = os.path.join(HERE, "playbooks")


class Run(object):
    def __init__(self, proc, callback):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.data = None
        if callback == "json":
            start = self.stdout.find("{")
            self.data = json.loads(self.stdout[start:]) if start >= 0 else None

    def results(self, task_name):
        """The localhost result of the task named ``task_name`` (last occurrence)."""
        found = None
        for play in self.data["plays"]:
            for task in play["tasks"]:
                if task["task"]["name"] == task_name:
                    found = task["hosts"].get("localhost")
        if found is None:
            raise KeyError("task %r not in the run" % task_name)
        return found

    @property
    def stats(self):
        return self.data["stats"]["localhost"]

    def failures(self):
        out = []
        for play in (self.data or {}).get("plays", []):
            for task in play["tasks"]:
                res = task["hosts"].get("localhost", {})
                if res.get("failed"):
                    out.append("%s: %s" % (task["task"]["name"], res.get("msg")))
        return out

    def __repr__(self):
        return "rc=%s\nfailed: %s\n--- stdout ---\n%s\n--- stderr ---\n%s" % (self.rc, self.failures(), self.stdout[-6000:], self.stderr[-3000:])


@pytest.fixture
def playbook(tmp_path):
    """run(name, extra_vars, check=False, diff=False, verbosity=0, callback='json') -> Run."""
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"),
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="True",
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-local"),
        ANSIBLE_REMOTE_TEMP=str(tmp_path / "ansible-remote"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_HOST_KEY_CHECKING="0",
        ANSIBLE_DEPRECATION_WARNINGS="0",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
    )
    env.pop("ANSIBLE_CONFIG", None)
    ansible_playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")

    def run(name, extra_vars=None, check=False, diff=False, verbosity=0, callback="json", timeout=300):
        cmd = [ansible_playbook, "-i", "localhost,", "-c", "local", os.path.join(PLAYBOOKS, name),
               "-e", json.dumps(dict(extra_vars or {}, ansible_python_interpreter=sys.executable))]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        if verbosity:
            cmd.append("-" + "v" * verbosity)
        run_env = dict(env, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json" if callback == "json" else callback)
        proc = subprocess.run(cmd, cwd=str(tmp_path), env=run_env, capture_output=True, text=True, timeout=timeout,
                              check=False)
        return Run(proc, callback)

    return run
