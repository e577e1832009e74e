# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""supervisord_program: the steps decided from what is there, against a model of supervisord that answers as
supervisorctl does (the real daemon runs in tests/integration/deploy_hosts)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.stagegate.rollout.plugins.module_utils.supervisord_program import (
    Supervisord, SupervisordError, program_state, program_steps, wait_healthy)

DIR = "/srv/codex/supervisor"
NAME = "codex-canary"
CONF = "[supervisord]\npidfile=%s/supervisord.pid\n" % DIR
SECTION = "[program:codex-canary]\ncommand=/usr/bin/codex --port 8102\n"


class FakeSupervisord:
    """supervisord and supervisorctl as far as the module uses them; ``files`` is the host's filesystem."""

    def __init__(self, spawn_error=False):
        self.files = {}
        self.up = False
        self.programs = {}  # name -> state
        self.loaded = {}  # name -> the section supervisord runs it with
        self.commands = []
        self.spawn_error = spawn_error

    # the filesystem
    def write(self, path, content):
        if self.files.get(path) == content:
            return False
        self.files[path] = content
        return True

    def read(self, path):
        return self.files.get(path)

    def remove(self, path):
        return self.files.pop(path, None) is not None

    def _sections(self):
        prefix = DIR + "/conf.d/"
        return dict((p[len(prefix):-5], c) for p, c in self.files.items() if p.startswith(prefix))

    def _run_program(self, name):
        self.programs[name] = "BACKOFF" if self.spawn_error else "RUNNING"
        self.loaded[name] = self._sections()[name]

    # the commands
    def run(self, argv):
        self.commands.append(argv[1:] if argv[0].endswith("supervisord") else argv[3:])
        if argv[0].endswith("supervisord"):
            self.up = True
            for name in self._sections():  # autostart=true
                self._run_program(name)
            return 0, "", ""
        if not self.up:
            return 7, "unix://%s/supervisor.sock no such file" % DIR, ""
        cmd, args = argv[3], argv[4:]
        name = args[0] if args else None
        if cmd == "pid":
            return 0, "4242\n", ""
        if cmd == "status":
            if name not in self.programs:
                return 4, "%s: ERROR (no such process)\n" % name, ""
            return 0, "%s                     %s   pid 99, uptime 0:00:03\n" % (name, self.programs[name]), ""
        if cmd == "reread":
            return 0, "%s: available\n" % NAME, ""
        if cmd == "add":
            self._run_program(name)
            return 0, "%s: added process group\n" % name, ""
        if cmd == "update":
            self._run_program(name)
            return 0, "%s: stopped\n%s: updated process group\n" % (name, name), ""
        if cmd == "start":
            if self.programs[name] in ("RUNNING", "STARTING", "BACKOFF"):
                return 0, "%s: ERROR (already started)\n" % name, ""
            if self.spawn_error:
                self.programs[name] = "FATAL"
                return 7, "%s: ERROR (spawn error)\n" % name, ""
            self._run_program(name)
            return 0, "%s: started\n" % name, ""
        if cmd == "stop":
            if self.programs[name] not in ("RUNNING", "STARTING", "BACKOFF"):
                return 7, "%s: ERROR (not running)\n" % name, ""
            self.programs[name] = "STOPPED"
            return 0, "%s: stopped\n" % name, ""
        if cmd == "restart":
            self._run_program(name)
            return 0, "%s: stopped\n%s: started\n" % (name, name), ""
        if cmd == "remove":
            del self.programs[name]
            return 0, "%s: removed process group\n" % name, ""
        raise AssertionError("unexpected command %r" % argv)


def sup(fake, check_mode=False):
    return Supervisord(DIR, NAME, fake.run, fake.write, fake.read, fake.remove, supervisord_bin="/venv/supervisord",
                       supervisorctl_bin="/venv/supervisorctl", check_mode=check_mode, sleep=lambda s: None)


def changing(commands):
    return [c for c in commands if c[0] not in ("pid", "status")]


# ----- parsing and planning ------------------------------------------------------------------------------------
def test_program_state_reads_the_line_of_the_program():
    out = "codex-stable   RUNNING   pid 10, uptime 0:01:00\ncodex-canary   BACKOFF   Exited too quickly\n"
    assert program_state(out, "codex-canary") == "BACKOFF"
    assert program_state(out, "codex-stable") == "RUNNING"
    assert program_state("codex-canary: ERROR (no such process)\n", "codex-canary") is None
    assert program_state("", "codex-canary") is None


@pytest.mark.parametrize("state,known,current,section_changed,restart,steps", [
    ("started", False, None, False, False, ["reread", "add", "start"]),
    ("started", True, "RUNNING", True, False, ["reread", "update", "start"]),
    ("started", True, "RUNNING", False, True, ["restart"]),
    ("started", True, "RUNNING", False, False, []),
    ("started", True, "STOPPED", False, True, ["start"]),
    ("started", True, "EXITED", False, False, ["start"]),
    ("stopped", True, "RUNNING", False, False, ["stop"]),
    ("stopped", True, "BACKOFF", False, False, ["stop"]),
    ("stopped", True, "STOPPED", False, False, []),
    ("stopped", False, None, False, False, []),
    ("absent", True, "STARTING", False, False, ["stop", "remove"]),
    ("absent", True, "FATAL", False, False, ["remove"]),
    ("absent", False, None, False, False, []),
])
def test_program_steps(state, known, current, section_changed, restart, steps):
    assert program_steps(state, known, current, section_changed, restart) == steps


def test_program_steps_refuses_an_unknown_state():
    with pytest.raises(ValueError, match="started, stopped, absent"):
        program_steps("running", True, "RUNNING", False, False)


# ----- against the model --------------------------------------------------------------------------------------
def test_first_start_starts_supervisord_then_adds_the_program_and_a_rerun_changes_nothing():
    fake = FakeSupervisord()
    s = sup(fake)
    before, after = s.apply("started", CONF, SECTION)
    assert (before, after) == (None, "RUNNING")
    assert s.done == ["write supervisord.conf", "start supervisord", "write the program section", "reread", "add",
                      "start"]
    assert fake.files[DIR + "/conf.d/codex-canary.conf"] == SECTION
    again = sup(fake)
    fake.commands = []
    assert again.apply("started", CONF, SECTION) == ("RUNNING", "RUNNING")
    assert again.done == [] and changing(fake.commands) == []


def test_a_changed_env_file_restarts_a_changed_section_is_applied_by_update():
    fake = FakeSupervisord()
    sup(fake).apply("started", CONF, SECTION)
    s = sup(fake)
    s.apply("started", CONF, SECTION, restart=True)
    assert s.done == ["restart"]
    new = SECTION.replace("8102", "8103")
    s = sup(fake)
    s.apply("started", CONF, new, restart=True)  # update replaces the process: no second restart
    assert s.done == ["write the program section", "reread", "update", "start"]
    assert fake.loaded[NAME] == new


def test_supervisord_down_with_the_section_on_disk_autostarts_it_no_add():
    fake = FakeSupervisord()
    fake.files[DIR + "/supervisord.conf"] = CONF
    fake.files[DIR + "/conf.d/codex-canary.conf"] = SECTION
    s = sup(fake)
    assert s.apply("started", CONF, SECTION) == ("RUNNING", "RUNNING")
    assert s.done == ["start supervisord"]


def test_stop_keeps_the_section_and_a_second_stop_changes_nothing():
    fake = FakeSupervisord()
    sup(fake).apply("started", CONF, SECTION)
    s = sup(fake)
    assert s.apply("stopped") == ("RUNNING", "STOPPED")
    assert s.done == ["stop"] and DIR + "/conf.d/codex-canary.conf" in fake.files
    s = sup(fake)
    assert s.apply("stopped") == ("STOPPED", "STOPPED") and s.done == []
    s = sup(fake)  # started again from the kept section
    s.apply("started", CONF, SECTION)
    assert s.done == ["start"]


def test_stop_without_supervisord_changes_nothing():
    fake = FakeSupervisord()
    s = sup(fake)
    assert s.apply("stopped") == (None, None) and s.done == [] and fake.commands == []


def test_absent_stops_removes_and_deletes_the_section():
    fake = FakeSupervisord()
    sup(fake).apply("started", CONF, SECTION)
    s = sup(fake)
    assert s.apply("absent") == ("RUNNING", None)
    assert s.done == ["stop", "remove", "remove the program section"]
    assert NAME not in fake.programs and DIR + "/conf.d/codex-canary.conf" not in fake.files
    assert sup(fake).apply("absent") == (None, None)


def test_check_mode_reports_the_steps_and_changes_nothing():
    fake = FakeSupervisord()
    fake.write = lambda path, content: fake.files.get(path) != content  # the module's writer in check mode
    s = sup(fake, check_mode=True)
    assert s.apply("started", CONF, SECTION) == (None, None)
    assert s.done == ["write supervisord.conf", "start supervisord", "write the program section", "reread", "add",
                      "start"]
    assert fake.files == {} and changing(fake.commands) == [] and not fake.up


def test_a_program_that_does_not_start_fails_with_supervisors_answer():
    fake = FakeSupervisord(spawn_error=True)
    fake.files[DIR + "/supervisord.conf"] = CONF
    fake.up = True
    fake.programs[NAME] = "STOPPED"
    fake.loaded[NAME] = fake.files[DIR + "/conf.d/codex-canary.conf"] = SECTION
    with pytest.raises(SupervisordError, match=r"supervisorctl -c %s/supervisord.conf start codex-canary failed "
                                               r"\(rc 7\): codex-canary: ERROR \(spawn error\)" % DIR):
        sup(fake).apply("started", CONF, SECTION)


def test_supervisord_that_never_answers_fails_naming_its_conf():
    fake = FakeSupervisord()
    real_run = fake.run

    def run(argv):
        res = real_run(argv)
        fake.up = False  # it died right after it started
        return res
    s = Supervisord(DIR, NAME, run, fake.write, fake.read, fake.remove, start_timeout=0.0, sleep=lambda s: None)
    with pytest.raises(SupervisordError, match="did not answer"):
        s.apply("started", CONF, SECTION)


class _Answers:
    """A health URL that answers ``answers`` in turn (an exception instance is raised: no answer)."""

    def __init__(self, *answers):
        self.answers, self.urls, self.sleeps = list(answers), [], []

    def get(self, url):
        self.urls.append(url)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_wait_healthy_tries_until_it_answers_200():
    h = _Answers(ConnectionRefusedError("connection refused"), 503, 200)
    res = wait_healthy(h.get, "http://127.0.0.1:8101/healthz", 5, 0.5, sleep=h.sleeps.append)
    assert res == {"url": "http://127.0.0.1:8101/healthz", "status": 200, "attempts": 3}
    assert h.urls == ["http://127.0.0.1:8101/healthz"] * 3 and h.sleeps == [0.5, 0.5]


def test_wait_healthy_gives_up_after_its_tries_naming_the_last_answer():
    h = _Answers(503, ConnectionRefusedError("connection refused"), 500)
    with pytest.raises(SupervisordError) as err:
        wait_healthy(h.get, "http://127.0.0.1:8101/healthz", 3, 1, sleep=h.sleeps.append)
    assert str(err.value) == ("its health check http://127.0.0.1:8101/healthz did not answer 200 in 3 tries 1 s apart "
                              "(last: 500)")
    assert len(h.urls) == 3 and h.sleeps == [1, 1]  # no sleep after the last try
