# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One way for the integration tests to run ansible-playbook: its environment, its command line and the json
callback's output read back.

``ansible_env(workdir)`` is ansible's environment: no ``ANSIBLE_*`` variable from outside (a developer's shell
or CI changes nothing; nor ``CONTROLLER_*``/``TOWER_*``, which would point awx.awx at a real AWX), the
collection from ``.collections`` (or ``collections``), this venv's Python and tools, Ansible's temp dirs and home
under ``workdir``; more variables as keywords (``None`` takes one out).
``run_playbook(playbook, workdir, ...)`` runs one playbook (a path or an FQCN) with it and returns a
:class:`PlaybookRun`: ``rc``, ``stdout``, ``stderr``, and with ``callback="json"`` (the default) the parsed
results of ``host``. ``run_tasks(tasks, workdir, ...)`` writes ``tasks`` as one play on localhost and runs it.

The SSH-host site (``tests/integration/hosts/site_kit.py``) keeps its own ``ansible_env``: it runs the
collection built and installed from the tarball, as a user does, not this checkout's ``.collections``.
"""
import datetime
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
COLLECTIONS = os.path.join(ROOT, ".collections")
VENV_BIN = os.path.dirname(sys.executable)
CALLBACKS = {"json": "ansible.posix.json", "default": "ansible.builtin.default"}
OUTSIDE = ("ANSIBLE_", "CONTROLLER_", "TOWER_")  # never taken from the caller's environment


def ansible_env(workdir, collections=COLLECTIONS, **extra):
    """The environment of an ansible-playbook (and of tools it runs) for a test working in ``workdir``."""
    workdir = str(workdir)
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith(OUTSIDE))
    env.update(
        PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""),
        PYTHONDONTWRITEBYTECODE="1",
        ANSIBLE_COLLECTIONS_PATH=str(collections),
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="True",  # the venv's ansible package brings ansible.posix
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_HOME=os.path.join(workdir, "ansible-home"),
        ANSIBLE_LOCAL_TEMP=os.path.join(workdir, "ansible-local"),
        ANSIBLE_REMOTE_TEMP=os.path.join(workdir, "ansible-remote"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_NOCOWS="1",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_HOST_KEY_CHECKING="0",
        ANSIBLE_LOCALHOST_WARNING="0",
        ANSIBLE_PIPELINING="1",
    )
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    return env


def run_playbook(playbook, workdir, inventory="localhost,", connection=None, extra_vars=None, check=False,
                 diff=False, verbosity=0, callback="json", env=None, extra_args=(), timeout=300, cwd=None,
                 host="localhost"):
    """Run ``playbook`` (a path or an FQCN) -> :class:`PlaybookRun`.

    ``env``: a full environment (default ``ansible_env(workdir)``); ``callback``: ``json`` (results parsed),
    ``default``, another callback's name, or None to keep the one ``env`` names; ``extra_vars`` go as one JSON
    ``-e``; ``extra_args`` are appended as they are. Runs in ``cwd`` (default ``workdir``).
    """
    run_env = dict(env if env is not None else ansible_env(workdir))
    if callback is not None:
        run_env["ANSIBLE_STDOUT_CALLBACK"] = CALLBACKS.get(callback, callback)
    argv = [os.path.join(VENV_BIN, "ansible-playbook"), "-i", str(inventory)]
    if connection:
        argv += ["-c", connection]
    argv.append(str(playbook))
    if extra_vars is not None:
        argv += ["-e", json.dumps(extra_vars)]
    if check:
        argv.append("--check")
    if diff:
        argv.append("--diff")
    if verbosity:
        argv.append("-" + "v" * verbosity)
    argv.extend(extra_args)
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, env=run_env, cwd=str(cwd or workdir),
                          timeout=timeout, check=False)
    return PlaybookRun(proc, host, parse=run_env.get("ANSIBLE_STDOUT_CALLBACK") == CALLBACKS["json"],
                       elapsed=time.monotonic() - started)


def run_tasks(tasks, workdir, play=None, **kwargs):
    """Run ``tasks`` as one play on localhost (no facts; ``play``: more keys of the play, e.g. ``vars``) over the
    local connection -> :class:`PlaybookRun`; ``kwargs`` as :func:`run_playbook`'s. The play is written to a new
    ``play-N.yml`` in ``workdir`` (JSON is YAML)."""
    doc = [dict({"name": "test play", "hosts": "localhost", "gather_facts": False, "tasks": tasks}, **(play or {}))]
    number = 1
    while os.path.exists(os.path.join(str(workdir), "play-%d.yml" % number)):
        number += 1
    path = os.path.join(str(workdir), "play-%d.yml" % number)
    with open(path, "w") as fh:
        json.dump(doc, fh, indent=1)
    kwargs.setdefault("connection", "local")
    return run_playbook(path, workdir, **kwargs)


class PlaybookRun:
    """One ansible-playbook run: ``rc``, ``stdout``, ``stderr``, ``output`` (both), ``elapsed`` (wall seconds);
    with the json callback ``data`` (its whole document) and ``results`` (``host``'s result of every task in
    order, each with ``_task``, the task's name; ``run[i]`` is ``results[i]``). The document is read from its
    first line ``{``, so ``-v`` lines before it do no harm."""

    def __init__(self, proc, host="localhost", parse=True, elapsed=None):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.host = host
        self.elapsed = elapsed
        self.data = None
        self.results = []
        if parse:
            try:
                start = re.search(r"^\{$", self.stdout, re.M)
                self.data = json.loads(self.stdout[start.start() if start else self.stdout.index("{"):])
            except ValueError as exc:  # no "{" at all, or not JSON
                raise AssertionError("ansible-playbook output is not the json callback's (%s), rc=%s:\n%s\n%s"
                                     % (exc, self.rc, self.stdout[-3000:], self.stderr[-3000:]))
            self.results = [dict(res, _task=name) for name, res in self._tasks()]

    def _tasks(self):
        for name, dummy, res in self._entries():
            yield name, res

    def _entries(self):
        for play in (self.data or {}).get("plays", []):
            for task in play.get("tasks", []):
                meta = task.get("task", {})
                yield meta.get("name"), meta, task.get("hosts", {}).get(self.host, {})

    @property
    def output(self):
        return self.stdout + self.stderr

    def __getitem__(self, i):
        return self.results[i]

    def task(self, name):
        """The result of the task named ``name`` (its last run); KeyError when it did not run on the host."""
        found = None
        for task_name, res in self._tasks():
            if task_name == name:
                found = res or None
        if found is None:
            raise KeyError("task %r not in the run on %s" % (name, self.host))
        return found

    def ended(self, name):
        """When the task named ``name`` ended (its last run; the json callback's UTC time), as ``time.time()``."""
        ends = [meta["duration"]["end"] for task_name, meta, dummy in self._entries() if task_name == name]
        if not ends:
            raise KeyError("task %r not in the run" % name)
        end = datetime.datetime.strptime(ends[-1], "%Y-%m-%dT%H:%M:%S.%fZ")
        return end.replace(tzinfo=datetime.timezone.utc).timestamp()

    @property
    def stats(self):
        """The host's line of the play recap (ok, changed, failures, ...)."""
        return self.data["stats"][self.host]

    def failures(self):
        """``<task>: <msg>`` of every failed task."""
        return ["%s: %s" % (name, res.get("msg")) for name, res in self._tasks() if res.get("failed")]

    def ok(self, i=0):
        """The result of task ``i``, after asserting the play and that task succeeded."""
        assert self.rc == 0, self.output[-4000:]
        res = self.results[i]
        assert not res.get("failed"), res
        return res

    def __repr__(self):
        return "rc=%s\nfailed: %s\n--- stdout ---\n%s\n--- stderr ---\n%s" % (
            self.rc, self.failures(), self.stdout[-6000:], self.stderr[-3000:])
