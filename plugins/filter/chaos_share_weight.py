# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: chaos_share_weight
short_description: The HAProxy weight that gives a chaos drill's canary slot its share of the host's traffic
version_added: "0.1.0"
description:
  - The weight of a borrowed canary slot (a drill of C(rollout_advanced.chaos) on slot V(canary)) beside its host's
    stable server, which keeps its weight, so that the canary slot takes C(share) percent of the host's traffic.
  - V(0) when C(share) is 0 or the stable server has weight 0 (nothing to share; the drill then fails when it asked
    for a share). See C(plugins/module_utils/chaos.py).
author:
  - stagegate.rollout contributors (@stagegate)
positional: share
options:
  _input:
    description: The weight of the host's stable server.
    type: int
    required: true
  share:
    description: The percent of the host's traffic the canary slot takes (0 to 50).
    type: int
    required: true
"""

EXAMPLES = r"""
- name: 10 % of the host's traffic beside a stable weight of 100 (weight 11)
  ansible.builtin.debug:
    msg: "{{ 100 | stagegate.rollout.chaos_share_weight(10) }}"
"""

RETURN = r"""
_value:
  description: The canary server's weight (0 to 256).
  type: int
"""

from ansible_collections.stagegate.rollout.plugins.module_utils.chaos import share_weight


def chaos_share_weight(stable_weight, share):
    return share_weight(stable_weight, share)


class FilterModule(object):
    """stagegate.rollout chaos_share_weight filter."""

    def filters(self):
        return {"chaos_share_weight": chaos_share_weight}
