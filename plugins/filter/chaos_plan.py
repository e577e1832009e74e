# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: chaos_plan
short_description: Check the advanced phase's chaos drills and fill in their defaults
version_added: "0.1.0"
description:
  - Checks C(rollout_advanced.chaos) (C({min_success, drills})) before any change and returns it with every default
    filled in - each drill's C(recovery_seconds) (30), C(host) (the last app host), C(slot) (V(stable)),
    C(max_error_ratio) (0.01), C(seconds) (5), C(max_pending) (0), C(url) (a closed loopback port), and with
    C(slot) V(canary) C(share) (the percent of its host's traffic the borrowed canary slot takes during the drill,
    0 to 50; V(kill_slot) 10, V(freeze_consumer) 0; not accepted with V(stable)).
  - Kinds - V(kill_slot), V(freeze_consumer) (needs the target's NATS), V(metrics_unreachable). A bad plan fails
    naming the field, the value and what is accepted. See C(plugins/module_utils/chaos.py) and docs/phases.md.
author:
  - stagegate.rollout contributors (@stagegate)
positional: app_hosts, has_nats
options:
  _input:
    description: The chaos plan (C({min_success, drills})); empty or null - no drills.
    type: dict
    required: true
  app_hosts:
    description: The target's app hosts, in order.
    type: list
    elements: str
    required: true
  has_nats:
    description: Whether the target has NATS (C(rollout_target.nats)).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: The drills, checked before any change
  ansible.builtin.set_fact:
    chaos: "{{ rollout_advanced.chaos | stagegate.rollout.chaos_plan(ansible_play_hosts_all, true) }}"
"""

RETURN = r"""
_value:
  description: C({min_success, drills}) with every default filled in.
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.stagegate.rollout.plugins.module_utils.chaos import ChaosError, plan


def chaos_plan(chaos, app_hosts, has_nats=False):
    try:
        return plan(chaos, app_hosts, has_nats=bool(has_nats))
    except ChaosError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    """stagegate.rollout chaos_plan filter."""

    def filters(self):
        return {"chaos_plan": chaos_plan}
