# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One supervisord program, brought to a state in one call: the supervisord of a directory (its
``supervisord.conf``, started when it does not run), the program's section in ``conf.d/<name>.conf``, and the
program started, restarted, stopped or removed through ``supervisorctl``.

What to do is decided from what is there (:func:`program_steps`, pure); :class:`Supervisord` observes and acts
through an injected command runner and file writer, so the decisions are unit-tested without a daemon.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time

STATES = ("started", "stopped", "absent")
# supervisord states in which the program runs or tries to (``stop`` applies to each)
ACTIVE = ("RUNNING", "STARTING", "BACKOFF")
UP = ("RUNNING", "STARTING")


class SupervisordError(Exception):
    """A supervisorctl step failed; the message says which and what supervisor answered."""


def program_state(status_output, name):
    """The state of ``name`` in ``supervisorctl status <name>`` output (RUNNING, STOPPED, BACKOFF, ...), or
    None when supervisord does not know the program ("no such process")."""
    for line in (status_output or "").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == name and parts[1].isupper() and parts[1].isalpha():
            return parts[1]
    return None


def program_steps(state, known, current, section_changed, restart):
    """The supervisorctl steps that bring a program from ``current`` (its supervisord state, None when
    supervisord does not know it; ``known`` whether it does) to ``state``.

    started: a program supervisord does not know yet is added (``reread``, ``add``); a changed section is
    applied (``reread``, ``update``: supervisord replaces the process); otherwise a running program is
    restarted when ``restart`` (its env file changed) and a stopped one started. Then ``start`` makes sure it
    runs (a program that is already up answers "already started").
    stopped: ``stop`` when it runs or tries to. absent: ``stop`` when it runs or tries to, then ``remove``.
    """
    if state not in STATES:
        raise ValueError("state must be one of %s, got %r" % (", ".join(STATES), state))
    steps = []
    if state == "started":
        if not known:
            steps += ["reread", "add", "start"]
        elif section_changed:
            steps += ["reread", "update", "start"]
        elif current in UP and restart:
            steps += ["restart"]
        elif current not in UP:
            steps += ["start"]
    elif state == "stopped":
        if known and current in ACTIVE:
            steps.append("stop")
    else:
        if known and current in ACTIVE:
            steps.append("stop")
        if known:
            steps.append("remove")
    return steps


def _ok_answer(step, out):
    """Whether supervisorctl's answer to ``step`` means it worked (or there was nothing to do)."""
    text = out.lower()
    if step == "start":
        return ": started" in text or "already started" in text
    if step == "stop":
        return ": stopped" in text or "not running" in text
    if step == "restart":
        return ": started" in text
    if step == "add":
        return "added process group" in text or "already active" in text
    if step == "update":
        return "error" not in text
    if step == "remove":
        return "removed process group" in text
    return True


class Supervisord:
    """The supervisord of ``directory`` and one program ``name`` in it.

    ``run(argv) -> (rc, stdout, stderr)`` runs a command; ``write(path, content) -> bool`` writes a file when its
    content differs (True when it did); ``read(path)`` returns a file's content or None; ``remove(path)``
    removes a file (True when there was one). ``check_mode`` observes and reports without changing anything.
    """

    def __init__(self, directory, name, run, write, read, remove, supervisord_bin="supervisord",
                 supervisorctl_bin="supervisorctl", check_mode=False, start_timeout=15.0, sleep=time.sleep):
        self.directory = directory
        self.name = name
        self.conf = os.path.join(directory, "supervisord.conf")
        self.section_path = os.path.join(directory, "conf.d", "%s.conf" % name)
        self._run, self._write, self._read, self._remove = run, write, read, remove
        self.supervisord_bin = supervisord_bin
        self.supervisorctl_bin = supervisorctl_bin
        self.check_mode = check_mode
        self.start_timeout = start_timeout
        self._sleep = sleep
        self.done = []  # what changed, in order: the result's ``actions``

    # observing
    def ctl(self, *args):
        return self._run([self.supervisorctl_bin, "-c", self.conf] + list(args))

    def running(self):
        """Whether the supervisord of this directory answers (``supervisorctl pid`` prints its pid)."""
        if self._read(self.conf) is None:
            return False
        rc, out, dummy = self.ctl("pid")
        return rc == 0 and out.strip().isdigit()

    def status(self):
        """(known, state): whether supervisord knows the program, and its state."""
        rc, out, err = self.ctl("status", self.name)
        state = program_state(out, self.name)
        return state is not None, state

    # acting
    def _step(self, step):
        self.done.append(step)
        if self.check_mode:
            return
        args = {"reread": ["reread"], "update": ["update", self.name]}.get(step, [step, self.name])
        rc, out, err = self.ctl(*args)
        answer = (out + err).strip()
        if not _ok_answer(step, answer) or (step in ("reread", "update") and rc != 0):
            raise SupervisordError("supervisorctl -c %s %s failed (rc %s): %s" % (
                self.conf, " ".join(args), rc, answer[-500:] or "(no output)"))

    def ensure_daemon(self, supervisord_conf):
        """Write supervisord.conf (when it differs) and start supervisord when it does not run."""
        if self._write(self.conf, supervisord_conf):
            self.done.append("write supervisord.conf")
        if self.running():
            return True
        self.done.append("start supervisord")
        if self.check_mode:
            return False
        rc, out, err = self._run([self.supervisord_bin, "-c", self.conf])
        if rc != 0:
            answer = (out + err).strip()[-500:]
            raise SupervisordError("%s -c %s failed (rc %s): %s" % (self.supervisord_bin, self.conf, rc, answer))
        deadline = time.monotonic() + self.start_timeout
        while not self.running():
            if time.monotonic() > deadline:
                raise SupervisordError("supervisord (%s) did not answer within %.0f s after it was started"
                                       % (self.conf, self.start_timeout))
            self._sleep(0.2)
        return True

    def apply(self, state, supervisord_conf=None, section=None, restart=False):
        """Bring the program to ``state``; returns (before, after) program states (None: unknown)."""
        if state == "started":
            if section is None or supervisord_conf is None:
                raise ValueError("state started needs the program section and supervisord.conf")
            daemon = self.ensure_daemon(supervisord_conf)
            section_changed = self._write(self.section_path, section)
            if section_changed:
                self.done.append("write the program section")
            known, before = self.status() if daemon else (False, None)
            for step in program_steps(state, known, before, section_changed and known, restart):
                self._step(step)
        else:
            if not self.running():  # no supervisord: nothing runs; the section goes (absent)
                before = None
            else:
                known, before = self.status()
                for step in program_steps(state, known, before, False, False):
                    self._step(step)
            if state == "absent" and self._remove(self.section_path):
                self.done.append("remove the program section")
        after = self.status()[1] if not self.check_mode and self.running() else None
        return before, after


def wait_healthy(get, url, attempts, delay, sleep=time.sleep):
    """Call ``get(url)`` (-> the HTTP status, or raises with the reason) until it answers 200, at most
    ``attempts`` times ``delay`` seconds apart; returns ``{"url", "status", "attempts"}``.

    Raises :class:`SupervisordError` naming the URL, the tries and the last answer when it never does."""
    last = None
    for attempt in range(1, max(1, int(attempts)) + 1):
        try:
            last = get(url)
        except Exception as exc:  # pylint: disable=broad-except  # any failure to answer is one more try
            last = str(exc) or exc.__class__.__name__
        if last == 200:
            return {"url": url, "status": 200, "attempts": attempt}
        if attempt < attempts:
            sleep(delay)
    raise SupervisordError("its health check %s did not answer 200 in %d tries %s s apart (last: %s)"
                           % (url, attempts, delay, last))
