# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: chaos_drill_result
short_description: What a chaos drill measured, as its verdict and a line that says why
version_added: "0.1.0"
description:
  - Turns the measures of one drill of C(rollout_advanced.chaos) into its result - passed or not, and a detail line
    naming what recovered and what did not (a measure that is missing fails the drill).
  - C(kill_slot) passes when the supervisor ran the slot again healthy within C(recovery_seconds), HAProxy sees the
    server running and the clients' 5xx share between the two reads of the backend is at most C(max_error_ratio).
  - C(freeze_consumer) passes when the slot answers again and the durable consumer has nothing waiting for an
    acknowledgement and at most C(max_pending) pending events.
  - C(metrics_unreachable) passes when the gate against the unreachable provider did not pass (it failed closed).
  - A drill on a C(canary) slot (it has C(share)) borrows the slot and passes only when the slot was there for the
    drill (running, or started by it), had a weight when C(share) is above 0, and was put back afterwards (its weight
    as before, stopped again when the drill started it).
  - A drill with an C(error) (a task of the drill failed) fails.
author:
  - stagegate.rollout contributors (@stagegate)
positional: kill, server, lb_before, lb_after, consumer, gate_verdict, durable, borrow, error
options:
  _input:
    description: The drill, with every default filled in (one of C(drills) of M(stagegate.rollout.chaos_plan)).
    type: dict
    required: true
  kill:
    description: C(deploy_hosts_kill) of the drill's host (recovered, seconds, program, pid_killed, pid_after).
    type: dict
  server:
    description: The HAProxy server of the killed slot.
    type: str
  lb_before:
    description: The servers as read before a kill (C(before) of a read-only M(stagegate.rollout.haproxy_traffic)).
    type: dict
  lb_after:
    description: The servers as read after it.
    type: dict
  consumer:
    description: The durable consumer after a freeze (C(consumer) of M(stagegate.rollout.jetstream_info)).
    type: dict
  gate_verdict:
    description: The verdict of the gate against the unreachable provider.
    type: str
  durable:
    description: The durable consumer's name (for the detail line).
    type: str
  borrow:
    description:
      - The borrowed canary slot of a drill with C(share) - C(running_before), C(started), C(start_error),
        C(weight_before), C(stable_weight), C(weight), C(weight_after), C(stopped), C(stop_error).
    type: dict
  error:
    description: The message of a task of the drill that failed; the drill fails.
    type: str
"""

EXAMPLES = r"""
- name: The verdict of a kill_slot drill
  ansible.builtin.debug:
    msg: >-
      {{ (drill | stagegate.rollout.chaos_drill_result(kill=hostvars[drill.host].deploy_hosts_kill,
          server='app3_stable', lb_before=lb_before.before, lb_after=lb_after.before)).detail }}
"""

RETURN = r"""
_value:
  description: C({name, kind, host, slot, passed, seconds, clients, detail}); C(clients) is C({ratio, requests,
    errors_5xx}) for a kill_slot drill (C(ratio) null when nothing was measured), else empty; a drill on a canary
    slot adds C(share) and C(borrow), a drill with an error C(error).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.stagegate.rollout.plugins.module_utils.chaos import drill_result


def chaos_drill_result(drill, kill=None, server=None, lb_before=None, lb_after=None, consumer=None, gate_verdict=None,
                       durable=None, borrow=None, error=None):
    if not isinstance(drill, dict) or "kind" not in drill:
        raise AnsibleFilterError("chaos_drill_result: %r is not a drill of the chaos_plan filter" % (drill,))
    return drill_result(drill, kill=kill, server=server, lb_before=lb_before, lb_after=lb_after, consumer=consumer,
                        gate_verdict=gate_verdict, durable=durable, borrow=borrow, error=error)


class FilterModule(object):
    """stagegate.rollout chaos_drill_result filter."""

    def filters(self):
        return {"chaos_drill_result": chaos_drill_result}
