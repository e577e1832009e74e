# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A sync point of the phase skeleton (roles/rollout_phase/tasks/sync.yml) on three inventory hosts (local
connections: what is under test is the play's logic, not SSH): every host goes on when nothing failed, every host
fails together, naming the cause, when one host recorded a failure or when a host (the leader among them) left the
play. The leader lists the recorded failures once; the others read only its mark."""
import json
import re

import pytest

from tests.integration.playbook_run import run_playbook

PLAY = [{"hosts": "app", "gather_facts": False, "tasks": [
    {"name": "a host records a failure", "when": "inventory_hostname in fail_hosts",
     "ansible.builtin.set_fact": {"_rollout_phase_host_error": "{{ inventory_hostname }}: the stable slot is down"}},
    {"name": "a host leaves the play", "when": "inventory_hostname in lose_hosts",
     "ansible.builtin.fail": {"msg": "lost"}},
    {"name": "the sync point",
     "ansible.builtin.include_role": {"name": "stagegate.rollout.rollout_phase", "tasks_from": "sync.yml"},
     "vars": {"_rollout_phase_sync": "batch 1"}},
    {"name": "after the sync point", "ansible.builtin.debug": {"msg": "went on"}}]}]


def run(tmp_path, fail_hosts=(), lose_hosts=()):
    (tmp_path / "play.yml").write_text(json.dumps(PLAY))
    (tmp_path / "hosts.ini").write_text("[app]\napp1\napp2\napp3\n[app:vars]\nansible_connection=local\n")
    run = run_playbook(tmp_path / "play.yml", tmp_path, inventory=tmp_path / "hosts.ini", callback="default",
                       extra_vars={"fail_hosts": list(fail_hosts), "lose_hosts": list(lose_hosts)})
    recap = dict((h, (int(ok), int(failed))) for h, ok, failed in
                 re.findall(r"^(app\d)\s+: ok=(\d+)\s+changed=\d+\s+unreachable=\d+\s+failed=(\d+)", run.output, re.M))
    return run.rc, run.output, recap


def failed_with(out, message):
    """The hosts whose task failed with ``message``."""
    return sorted(re.findall(r'^fatal: \[(app\d)\]: FAILED! => .*"msg": "%s"' % re.escape(message), out, re.M))


def test_every_host_goes_on_when_nothing_failed(tmp_path):
    rc, out, recap = run(tmp_path)
    assert rc == 0, out[-3000:]
    assert out.count('"msg": "went on"') == 3 and all(failed == 0 for dummy, failed in recap.values()), out[-3000:]


@pytest.mark.parametrize("failing", ["app1", "app3"])  # the leader or another host recorded the failure
def test_one_recorded_failure_stops_every_host(tmp_path, failing):
    rc, out, recap = run(tmp_path, fail_hosts=[failing])
    assert rc != 0 and "went on" not in out, out[-3000:]
    assert sorted(h for h, (dummy, failed) in recap.items() if failed) == ["app1", "app2", "app3"], recap
    assert failed_with(out, "batch 1: failed on %s: the stable slot is down" % failing) == ["app1", "app2", "app3"], \
        out[-3000:]


@pytest.mark.parametrize("lost", ["app1", "app2"])  # the leader itself, or another host
def test_a_lost_host_stops_the_others(tmp_path, lost):
    rc, out, recap = run(tmp_path, lose_hosts=[lost])
    assert rc != 0 and "went on" not in out, out[-3000:]
    assert all(failed == 1 for dummy, failed in recap.values()), recap
    others = sorted({"app1", "app2", "app3"} - {lost})
    assert failed_with(out, "batch 1: hosts no longer in the rollout: %s" % lost) == others, out[-3000:]
