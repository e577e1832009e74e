# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Faults injected into real rollouts: the phases fail closed, a rollback finishes what it can, nothing is lost.

The site is tests/integration/hosts/site_kit.py with one SSH app host (sshd on 127.0.0.21; the installed
collection, a user's inventory, NATS, HAProxy, Prometheus, the load generator running throughout) and a
two-step canary plan (10 %, 50 %). HAProxy's weights are read through its socket every 100 ms while the
faults happen; a webhook receiver records every notification. v1 is installed, v2 staged, then each test
runs v2's canary (or a rollback) with one fault:

- two phases started at once: the second is refused by the lock, changing nothing;
- the controller killed (SIGKILL to ansible-playbook and its workers) at 10 %: the canary keeps its share
  until the re-run, which (after a person breaks the dead run's lock) first puts the traffic back to 0 % and
  records the attempt ``aborted``, then runs the canary to its promotion as AWX runs a job (ansible-runner,
  each step's verdict in its job events);
- NATS down during the rollback of that canary: the traffic is restored, the slot stopped, the flags put back;
  the ledger (``rollback_incomplete``, naming the JetStream replay), the metric and a CRITICAL webhook say
  what is left; the re-run once NATS is back replays and completes;
- HAProxy's socket gone during a step (and still during the rollback, and during a second rollback): the
  canary is stopped and its flags restored anyway, ``rollback_incomplete`` names the traffic, CRITICAL
  webhook; the re-run with the socket back applies weight 0;
- Prometheus stopped (SIGSTOP) and killed during a step: the judge fails closed within its timeout (+ 2 s)
  and the traffic is back to 0 %;
- an inconclusive step whose policy is pause, with no terminal: nobody can approve, the canary rolls back
  (in a change freeze overridden with a reason, which the ledger records);
- an irreversible release whose canary fails: held (nothing rolled back, its share down to rollout_hold_share),
  every phase refused until a person decides (resolve_hold: roll_forward ends a hold, roll_back rolls it back);
- a change freeze: the canary refused before any change; a freeze that begins at 10 %: step 2 refused, rollback;
- an approval on a terminal where nobody types: it times out (rollout_approval_timeout), nothing changes;
- a ledger cut short (its last entries removed): the head anchored on the load-balancer host refuses it.

At the end: no event JetStream accepted was lost, the ledger verifies. Not real: one kernel and filesystem
for every component (see site_kit.py).
"""
import json
import os
import re
import signal
import sys
import time

import pytest
import yaml

from demo.stack.haproxy import runtime_command
from tests.integration.http_standin import PostRecorder
from tests.integration.hosts.site_kit import (
    NATS_DURABLE, SERVICE, WeightWatch, assert_ok, entries, expected_weights, open_site, verify_ledger)

pytestmark = pytest.mark.slow

STEPS = [{"weight": 10, "analysis_seconds": 6}, {"weight": 50, "analysis_seconds": 6}]
JUDGE_INTERVAL = 2
# the judge's own timeout of a step (phase_canary/tasks/step.yml): analysis + 2 intervals, at least + 10 s
JUDGE_TIMEOUT = STEPS[0]["analysis_seconds"] + max(2 * JUDGE_INTERVAL, 10)
HOSTS = ["app1"]
RERUN = {"rollout_rerun": True}


class Webhook(PostRecorder):
    """Records the JSON body of every POST (the rollout's notifications)."""

    @property
    def received(self):
        with self.lock:
            return [json.loads(r["body"]) for r in self.requests]

    @property
    def url(self):
        return self.base_url + "/hook"

    def since(self, n):
        return self.received[n:]


@pytest.fixture(scope="module")
def hook():
    with Webhook() as server:
        yield server


@pytest.fixture(scope="module")
def site(installed_collection, tmp_path_factory, hook):
    s = open_site(tmp_path_factory.mktemp("faults"), installed_collection, addresses=("127.0.0.21",), analysis=6,
                  phases={"rollout_canary": {"steps": STEPS, "judge": {"alpha": 0.01, "interval": JUDGE_INTERVAL}}},
                  rollout_vars={"rollout_notify_url": hook.url, "rollout_lock_ttl": 600})
    s.watch = None
    yield s
    if s.watch is not None:
        s.watch.close()
    left = s.close()
    assert not left, left


def lock_path(site):
    return os.path.join(os.path.dirname(site.haproxy.socket_path), "stagegate-%s.lock" % SERVICE)


def metrics(site):
    with open(os.path.join(site.state_dir, "stagegate_rollout.prom"), encoding="utf-8") as fh:
        return fh.read()


def settled_on_stable(site, stable_flags):
    """Canary weight 0, the canary slot stopped with the stable flags, stable v1 serving."""
    assert site.weights() == expected_weights(HOSTS, {"app1": 0})
    assert site.versions() == {"app1": {"stable": "v1", "canary": None}}
    assert site.program_state("app1", "canary") in ("STOPPED", "EXITED")
    assert site.env("app1", "canary") == stable_flags


def canary_with_fault(site, label, fault, restore=None, extra=None, timeout=300):
    """Run v2's canary again; once it takes 10 %, ``fault()`` breaks something; wait for the run to end (killing it
    after ``timeout``), then ``restore(rc)`` whatever happened. -> (rc, out, what ``fault`` returned)."""
    proc, log = site.spawn("canary", "v2", extra=dict(RERUN, **(extra or {})))
    done, rc = None, None
    try:
        site.watch.wait_canary(10, timeout=180)
        done = fault()
        proc.wait(timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        log.seek(0)
        rc, out = site.record("canary (%s)" % label, "v2", proc.wait(30), log.read(), 0)
        log.close()
        if restore is not None:
            restore(rc)
    return rc, out, done


def test_install_v1_and_stage_v2(site):
    assert_ok(*site.play("install", "v1"))
    site.start_load()
    assert_ok(*site.play("staging", "v2"))
    site.watch = WeightWatch(site)
    assert site.weights() == expected_weights(HOSTS, {"app1": 0})


def test_two_phases_at_once_then_the_controller_killed_mid_step(site):
    proc, log = site.spawn("canary", "v2")
    try:
        deadline = time.monotonic() + 120
        while not os.path.exists(lock_path(site)):
            assert proc.poll() is None and time.monotonic() < deadline, "the first run never took the lock"
            time.sleep(0.1)
        # a second rollout while the first holds the lock: refused before any change
        rc, out = site.play("canary", "v2", timeout=300, extra=RERUN)
        assert rc != 0 and "is held by canary of v2" in out, out[-3000:]
        assert "changed=0" in out.split("PLAY RECAP")[-1], out[-2000:]
        # the controller dies at 10 %: SIGKILL to ansible-playbook and every worker of its session
        site.watch.wait_canary(10, timeout=180)
        assert proc.poll() is None, "the first run ended before it was killed"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        log.seek(0)
        site.record("canary (killed)", "v2", proc.wait(30), log.read(), 0)
        log.close()
    time.sleep(1)
    assert site.weights() == expected_weights(HOSTS, {"app1": 10}), "the killed run's share stays until a re-run"
    killed = [e["event"] for e in entries(site, "v2", "canary")]
    assert killed[-1] == "phase_start" or killed[-1] in ("gate", "judge"), killed

    # the re-run: the dead run's lock refuses it, naming it; a person breaks the lock
    rc, out = site.play("canary", "v2", timeout=300, extra=RERUN)
    assert rc != 0 and "is held by canary of v2" in out and "rollout_lock_break" in out, out[-3000:]
    assert site.weights() == expected_weights(HOSTS, {"app1": 10})
    t0 = time.time()
    n = len(site.ledger())
    # the re-run goes to its end as AWX runs a job (ansible-runner, no stdin; the approval node approved): its job
    # events carry each step's verdict
    rc, events = site.run_as_awx("canary", "v2", timeout=600, extra=dict(RERUN, rollout_lock_break=True))
    verdicts = [e["event_data"]["res"]["verdict"] for e in events if e["event"] == "runner_on_ok"
                and e["event_data"]["task"].startswith(("Canary | canary judge", "Phase | gates over the window"))]
    failed = [e for e in events if e["event"] == "runner_on_failed" and not e["event_data"].get("ignore_errors")]
    assert rc == 0 and not failed, (failed or events)[-5:]
    assert len(verdicts) >= len(STEPS) and "fail" not in verdicts, verdicts
    # the first weight change of the re-run put the canary to 0 %, before anything else changed
    moves = [w["app1_canary"] for dummy, w in site.watch.after(t0)]
    assert moves[:1] == [0], moves
    new = site.ledger()[n:]
    # the broken lock, the attempt the killed run left (aborted, with the weights it found), then the phase
    assert [e["event"] for e in new][:3] == ["lock_taken_over", "aborted", "phase_start"], [e["event"] for e in new]
    assert new[0]["decision"] == "break" and new[0]["evidence"]["previous"]["holder"]["release"] == "v2", new[0]
    assert new[1]["evidence"]["weights_before"]["app1_canary"] == 10, new[1]
    assert new[1]["evidence"]["weights_after"] == expected_weights(HOSTS, {"app1": 0}), new[1]
    sys.stderr.write("re-run: canary at 0 %% %.1f s after it started\n" % (site.watch.after(t0)[0][0] - t0))
    assert new[-1]["event"] == "promote", [e["event"] for e in new]
    assert site.weights() == expected_weights(HOSTS, {"app1": STEPS[-1]["weight"]})  # promoted at its last step
    assert not os.path.exists(lock_path(site)), "the re-run gave the lock back"


def test_nats_down_during_a_rollback_then_the_rerun_replays(site, hook):
    stable_flags = site.env("app1", "stable")
    heard = len(hook.received)
    site.nats.stop()
    try:
        rc, out = site.play("rollback", "v2", timeout=300, extra={"reason": "fault suite: NATS down"})
    finally:
        site.nats.start()
    assert rc != 0 and "the rollback is incomplete" in out and "JetStream replay" in out, out[-3000:]
    settled_on_stable(site, stable_flags)  # traffic, slot and flags restored although NATS was down
    last = site.ledger()[-1]
    assert (last["event"], last["release"], last["phase"]) == ("rollback_incomplete", "v2", "canary"), last
    assert [x for x in last["evidence"]["left"] if x.startswith("JetStream replay")], last
    assert 'stagegate_rollout_rollback_incomplete{phase="canary",release="v2"} 1' in metrics(site)
    sent = hook.since(heard)
    assert [m["severity"] for m in sent] == ["CRITICAL"] and "JetStream replay" in sent[0]["message"], sent

    time.sleep(2)  # the services reconnect to the restarted NATS
    heard = len(hook.received)
    rc, out = site.play("rollback", "v2", timeout=300, extra={"reason": "fault suite: NATS back"})
    assert_ok(rc, out)
    last = site.ledger()[-1]
    assert last["event"] == "rollback" and last["evidence"]["left"] == [], last
    assert last["evidence"]["replay"]["replay"]["recreated"], last
    assert 'stagegate_rollout_rollback_incomplete{phase="canary",release="v2"} 0' in metrics(site)
    assert [m["severity"] for m in hook.since(heard)] == ["HIGH"], hook.since(heard)
    settled_on_stable(site, stable_flags)


def test_haproxy_socket_gone_during_a_step_and_the_rollback(site, hook):
    stable_flags = site.env("app1", "stable")
    sock = site.haproxy.socket_path
    heard = len(hook.received)
    moved = []

    def socket_gone():  # the admin socket disappears during the step
        os.rename(sock, sock + ".gone")
        moved.append(True)

    def back_if_it_passed(rc):
        if moved and rc == 0:
            os.rename(sock + ".gone", sock)

    rc, out, dummy = canary_with_fault(site, "socket gone", socket_gone, back_if_it_passed, timeout=600)
    assert rc != 0, out[-3000:]
    # HAProxy kept the 10 % (nobody could change it), but the canary slot is stopped and its flags restored
    w = runtime_command(sock + ".gone", "get weight app/app1_canary")
    assert w.split()[0] == "10", w
    assert site.program_state("app1", "canary") in ("STOPPED", "EXITED")
    assert site.env("app1", "canary") == stable_flags
    last = site.ledger()[-1]
    assert last["event"] == "rollback_incomplete" and last["evidence"]["weights_after"] == {}, last
    assert [x for x in last["evidence"]["left"] if x.startswith("canary traffic to 0")], last
    sent = hook.since(heard)
    assert [m["severity"] for m in sent] == ["CRITICAL"] and "canary traffic to 0" in sent[0]["message"], sent

    # a rollback while the socket is still gone: still incomplete, nothing else breaks
    rc, out = site.play("rollback", "v2", timeout=300, extra={"reason": "fault suite: socket still gone"})
    os.rename(sock + ".gone", sock)
    assert rc != 0 and "canary traffic to 0" in out, out[-3000:]
    assert site.ledger()[-1]["event"] == "rollback_incomplete"

    # with the socket back, the re-run applies weight 0 and completes
    rc, out = site.play("rollback", "v2", timeout=300, extra={"reason": "fault suite: socket back"})
    assert_ok(rc, out)
    last = site.ledger()[-1]
    assert last["event"] == "rollback" and last["evidence"]["left"] == [], last
    assert last["evidence"]["weights_after"] == expected_weights(HOSTS, {"app1": 0}), last
    settled_on_stable(site, stable_flags)


@pytest.mark.parametrize("fault", ["stopped", "killed"])
def test_prometheus_gone_fails_closed_within_the_judge_timeout(site, fault):
    stable_flags = site.env("app1", "stable")

    def prometheus_gone():
        t_fault = time.time()
        if fault == "stopped":
            site.prometheus.pause()
        else:
            site.prometheus.proc.signal(signal.SIGKILL)
        return t_fault, site.watch.wait_canary(0, timeout=120)

    def prometheus_back(dummy):
        if fault == "stopped":
            site.prometheus.resume()
        else:
            site.prometheus.restart()

    rc, out, (t_fault, t_zero) = canary_with_fault(site, "Prometheus %s" % fault, prometheus_gone, prometheus_back)
    assert rc != 0, out[-3000:]
    took = t_zero - t_fault
    # the look that cannot read fails closed within the judge's timeout (its look budget, on the judge's own clock)
    # and writes weight 0 itself (the fast abort) at the verdict, before the task returns
    budget = re.search(r"after \d+ attempt\(s\) in ([0-9.]+) s", out)
    assert budget and float(budget.group(1)) <= JUDGE_TIMEOUT + 1, out[-3000:]
    decided = re.search(r'"decided_at": ([0-9.]+)', out)
    assert decided and "ms after the verdict" in out, out[-3000:]
    assert t_zero - float(decided.group(1)) <= 1.0, (t_zero, decided.group(1))
    # end to end: the judge's step starts when the weight reaches 10 %; its first look comes after the judge task's
    # start-up, which on a busy machine (CI: 2 cores, CPU bound) takes seconds
    sys.stderr.write("Prometheus %s: weight 0 %.1f s after the fault\n" % (fault, took))
    assert took <= JUDGE_TIMEOUT + 30, "canary traffic back to 0 only %.1f s after Prometheus was %s" % (took, fault)
    last = site.ledger()[-1]
    assert last["event"] == "rollback" and last["evidence"]["left"] == [], last
    assert "canary judge" in last["reason"], last
    settled_on_stable(site, stable_flags)


def test_an_irreversible_release_is_held_not_rolled_back_until_a_person_decides(site, hook):
    """Run through ansible-runner as AWX runs jobs: v3 (20 % errors once it takes traffic) declared irreversible, with rollout_hold_share 5: its failing canary
    is held - no rollback, the canary slot keeps v3 and its flags, each host's canary share goes down to 5 % (never
    up), a `hold` ledger entry, a CRITICAL webhook, the held gauge; every phase of any release is then refused before
    any change; a bad decision request is refused; a roll_forward ends a hold on the ledger; the person's roll_back
    puts every host back on the stable version and replays JetStream."""
    stable_flags = site.env("app1", "stable")
    # both phases run as AWX runs its jobs (ansible-runner, no stdin; the workflow's approval node gave the
    # approval): staging goes to its end, and the canary's job events show each step's verdict
    rc, events = site.run_as_awx("staging", "v3")
    ok = [e["event_data"]["task"] for e in events if e["event"] == "runner_on_ok"]
    assert rc == 0 and "Staging | record the promotion" in ok, ok[-20:]
    heard, t0 = len(hook.received), time.time()
    rc, events = site.run_as_awx("canary", "v3", extra={"rollout_irreversible": True, "rollout_hold_share": 5})
    verdicts = [e["event_data"]["res"]["verdict"] for e in events if e["event"] == "runner_on_ok"
                and e["event_data"]["task"].startswith(("Canary | canary judge", "Phase | gates over the window"))]
    assert verdicts and set(verdicts) <= {"pass", "fail", "inconclusive"}, verdicts
    assert verdicts[-1] == "fail", verdicts
    failed = [e["event_data"]["res"].get("msg", "") for e in events if e["event"] == "runner_on_failed"]
    assert rc == 2 and "canary of v3 HELD (an irreversible release), nothing rolled back" in failed[-1], failed
    v3 = entries(site, "v3", "canary")
    start = [e for e in v3 if e["event"] == "phase_start"][-1]
    after = [e for e in v3 if e["seq"] > start["seq"]]
    assert after[-1]["event"] == "hold" and after[-1]["evidence"]["policy"] == "rollout_irreversible", after[-1]
    assert not [e for e in after if e["event"] in ("rollback", "rollback_incomplete")], after
    assert [e for e in after if e["event"] in ("judge", "gate") and e["decision"] == "hold"], after
    assert after[-1]["evidence"]["weights_after"]["app1_canary"] == 5 and after[-1]["evidence"]["left"] == [], after[-1]
    # nothing undone: v3 still in the canary slot with its flags; its share only went down
    assert site.weights() == expected_weights(HOSTS, {"app1": 5})
    assert site.versions() == {"app1": {"stable": "v1", "canary": "v3"}}
    assert all(w["app1_canary"] in (0, 5, 10, 50) for dummy, w in site.watch.after(t0)), site.watch.after(t0)
    assert [w["app1_canary"] for dummy, w in site.watch.after(t0)][-1] == 5
    sent = hook.since(heard)
    assert [m["severity"] for m in sent] == ["CRITICAL"] and "is HELD in canary" in sent[0]["message"], sent
    assert 'stagegate_rollout_held{phase="canary",release="v3"} 1' in metrics(site)

    # held: any phase of any release is refused before any change, and so is a decision without a reason
    before = (len(site.ledger()), site.weights(), site.versions(), site.env("app1", "canary"))
    rc, out = site.play("canary", "v2", timeout=300, extra=RERUN)
    assert rc != 0 and "canary of v3 is HELD since" in out and "Nothing changed." in out, out[-3000:]
    rc, out = site.play("resolve_hold", "v3", timeout=300, extra={"rollout_hold_decision": "roll_back"})
    assert rc != 0 and "rollout_hold_reason" in out and "nothing changed" in out, out[-3000:]
    # nor does the rollback playbook (an AWX workflow's failure edge) undo it
    rc, out = site.play("rollback", "v3", timeout=300, extra={"reason": "an automatic failure edge"})
    assert rc != 0 and "v3 is HELD in canary" in out and "nothing changed" in out, out[-3000:]
    assert (len(site.ledger()), site.weights(), site.versions(), site.env("app1", "canary")) == before

    # a roll_forward ends a hold (on a hold written here for a release that never ran: no traffic changes)
    from ansible_collections.stagegate.rollout.plugins.module_utils.ledger import Ledger, build_record
    Ledger(site.ledger_path).append(build_record("v9-held", "production", "hold", decision="hold",
                                                 reason="a hold written by the test")[0])
    rc, out = site.play("resolve_hold", "v9-held", timeout=300,
                        extra={"rollout_hold_decision": "roll_forward", "rollout_hold_reason": "v9.1 fixes it"})
    assert_ok(rc, out)
    last = site.ledger()[-1]
    assert (last["event"], last["release"], last["phase"], last["reason"]) == (
        "roll_forward", "v9-held", "production", "v9.1 fixes it"), last
    assert site.weights() == expected_weights(HOSTS, {"app1": 5})

    # the person rolls v3 back: every host on the stable version, its events replayed
    rc, out = site.play("resolve_hold", "v3", timeout=300,
                        extra={"rollout_hold_decision": "roll_back", "rollout_hold_reason": "fault suite: not a migration"})
    assert_ok(rc, out)
    last = site.ledger()[-1]
    assert (last["event"], last["release"], last["phase"]) == ("rollback", "v3", "canary"), last
    assert "a person resolved the hold" in last["reason"] and "fault suite: not a migration" in last["reason"], last
    assert last["evidence"]["replay"]["replay"]["recreated"], last
    assert 'stagegate_rollout_held{phase="canary",release="v3"} 0' in metrics(site)
    settled_on_stable(site, stable_flags)


def windows_from_file(site, spec):
    """Write ``spec`` to a file the run's rollout_release_windows reads at every check (a freeze calendar someone
    else keeps); -> the extra vars."""
    path = os.path.join(site.workdir, "release-windows.json")
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(spec, fh)
    return {"rollout_release_windows": "{{ lookup('ansible.builtin.file', '%s') | from_json }}" % path}


def freeze_now(reason):
    def iso(t):
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
    return {"freezes": [{"start": iso(time.time() - 3600), "end": iso(time.time() + 3600), "reason": reason}]}


def test_an_inconclusive_step_to_pause_with_no_terminal_rolls_back(site):
    """The step's judge cannot decide (min_requests far above the traffic) and its policy is pause; the phase
    start is approved (rollout_auto_approve) but nobody can approve the step without a terminal. The run is in a
    change freeze and overrides it with a reason: the ledger records the override at the start and at the step."""
    stable_flags = site.env("app1", "stable")
    with open(os.path.join(site.inventory, "group_vars", "all", "phases.yml"), encoding="utf-8") as fh:
        plan = yaml.safe_load(fh)["rollout_canary"]
    plan.update(steps=[dict(STEPS[0], on_inconclusive="pause")] + STEPS[1:],
                judge=dict(plan["judge"], min_requests=10 ** 9))
    windows = windows_from_file(site, freeze_now("fault suite: freeze"))
    extra = dict(RERUN, rollout_canary=plan, rollout_window_override="fault suite: hotfix", **windows)
    rc, out = site.play("canary", "v2", timeout=300, extra=extra)
    assert rc != 0 and "nobody approved it" in out, out[-3000:]
    v2 = entries(site, "v2", "canary")
    start = [e for e in v2 if e["event"] == "phase_start"][-1]
    overrides = [e for e in v2 if e["event"] == "window_override" and e["seq"] > start["seq"]]
    assert [o["step"] for o in overrides] == ["before any change", "step 1 (10 %)"], overrides
    assert all(o["reason"] == "fault suite: hotfix" and "fault suite: freeze" in o["evidence"]["closed"]
               for o in overrides), overrides
    approval = [e for e in v2 if e["event"] == "approval"][-1]
    assert approval["decision"] == "rollback" and "nobody approved" in approval["reason"], approval
    assert v2[-1]["event"] == "rollback" and v2[-1]["seq"] > approval["seq"], v2[-1]
    settled_on_stable(site, stable_flags)


def test_a_freeze_refuses_a_phase_before_any_change_and_a_step_once_it_begins(site):
    """A freeze in force: the canary stops before any change (the approval is not even asked). A freeze that
    begins while the canary runs at 10 %: the next step is refused, and the canary rolls back."""
    stable_flags = site.env("app1", "stable")
    windows = windows_from_file(site, freeze_now("fault suite: year-end freeze"))
    before = (len(site.ledger()), site.weights(), site.versions(), site.env("app1", "canary"))
    rc, out = site.play("canary", "v2", timeout=300, extra=dict(RERUN, **windows))
    assert rc != 0 and "canary of v2, before any change: change freeze until" in out, out[-3000:]
    assert "fault suite: year-end freeze" in out and "Nothing changed." in out, out[-3000:]
    assert (len(site.ledger()), site.weights(), site.versions(), site.env("app1", "canary")) == before

    windows = windows_from_file(site, {})
    t0 = time.time()
    rc, out, dummy = canary_with_fault(
        site, "a freeze begins", lambda: windows_from_file(site, freeze_now("fault suite: freeze from now on")),
        extra=windows)
    assert rc != 0 and "canary of v2, step 2 (50 %): change freeze until" in out, out[-3000:]
    assert "Every host rolls back." in out, out[-3000:]
    assert all(w["app1_canary"] in (0, 10) for dummy, w in site.watch.after(t0)), site.watch.after(t0)
    last = site.ledger()[-1]
    assert last["event"] == "rollback" and "fault suite: freeze from now on" in last["reason"], last
    settled_on_stable(site, stable_flags)


def test_an_approval_nobody_gives_on_a_terminal_times_out(site):
    """On a terminal where nobody types, the approval waits rollout_approval_timeout seconds, then the phase stops
    before any change."""
    before = (len(site.ledger()), site.weights(), site.versions(), site.env("app1", "canary"))
    t0 = time.monotonic()
    rc, out = site.play("canary", "v2", timeout=300, extra=dict(RERUN, rollout_approval_timeout=3), approve=None)
    assert rc != 0 and "type v2 and Enter to approve" in out, out[-3000:]
    assert "canary of v2 was not approved (nobody typed v2 within 3 s)" in out, out[-3000:]
    assert (len(site.ledger()), site.weights(), site.versions(), site.env("app1", "canary")) == before
    assert time.monotonic() - t0 < 120


def test_a_ledger_that_lost_its_last_entries_is_refused(site):
    """The last phase anchored the ledger's head on the load-balancer host; a ledger cut short (a valid, shorter
    chain that its own hashes cannot show) is refused at the next phase start, before any change."""
    anchor = os.path.join(os.path.dirname(site.haproxy.socket_path), "stagegate-%s.ledger-head" % SERVICE)
    with open(anchor, encoding="utf-8") as fh:
        anchored = list(json.load(fh).values())
    assert len(anchored) == 1 and anchored[0]["hash"] == site.ledger()[-1]["hash"], anchored
    assert oct(os.stat(anchor).st_mode & 0o777) == "0o600"
    with open(site.ledger_path, "rb") as fh:
        whole = fh.read()
    lines = whole.splitlines(True)
    try:
        with open(site.ledger_path, "wb") as fh:
            fh.write(b"".join(lines[:-3]))
        verify_ledger(site.ledger_path)  # the shorter chain verifies on its own
        before = (site.weights(), site.versions(), site.env("app1", "canary"))
        rc, out = site.play("canary", "v2", timeout=300, extra=RERUN)
        assert rc != 0 and "does not hold the head anchored in %s" % anchor in out, out[-3000:]
        assert "entries were removed from its end" in out, out[-3000:]
        assert (site.weights(), site.versions(), site.env("app1", "canary")) == before
        with open(site.ledger_path, "rb") as fh:
            assert fh.read() == b"".join(lines[:-3]), "the refused phase wrote to the ledger"
    finally:
        with open(site.ledger_path, "wb") as fh:
            fh.write(whole)


def test_no_event_lost_and_the_ledger_verifies(site):
    """Every event JetStream accepted was processed by a version (v2's canary events were replayed after each
    rollback; nothing was accepted while NATS was down), and the ledger verifies."""
    from demo.run_demo import account_events
    report = site.stop_load()
    assert report["events"]["published"] > 50, report["events"]
    info = {"workdir": site.workdir, "nats": {"durable": NATS_DURABLE},
            "publish_file": os.path.join(site.publish_dir, "published.jsonl")}
    ev = account_events(info, set(), timeout=60, say=lambda *a: None)
    assert ev["published"] == report["events"]["published"] and ev["lost"] == 0, (ev, report["events"])
    verify_ledger(site.ledger_path)
    assert not os.path.exists(lock_path(site)), "a lock was left behind"
