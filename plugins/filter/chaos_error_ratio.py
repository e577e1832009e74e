# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: chaos_error_ratio
short_description: The clients' 5xx share between two reads of an HAProxy backend
version_added: "0.1.0"
description:
  - From two results of M(stagegate.rollout.haproxy_traffic) (their C(before), each server's C(counters)), the 5xx
    answers per request of the whole backend in between - what a chaos drill's clients saw.
  - C(ratio) is null when HAProxy gave no counters or no request came in between (nothing was measured).
author:
  - stagegate.rollout contributors (@stagegate)
positional: after
options:
  _input:
    description: The servers as read before (C(before) of a read-only M(stagegate.rollout.haproxy_traffic)).
    type: dict
    required: true
  after:
    description: The servers as read after.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: What the clients saw during the drill
  ansible.builtin.debug:
    msg: "{{ lb_before.before | stagegate.rollout.chaos_error_ratio(lb_after.before) }}"
"""

RETURN = r"""
_value:
  description: C({ratio, requests, errors_5xx}).
  type: dict
"""

from ansible_collections.stagegate.rollout.plugins.module_utils.chaos import error_ratio


def chaos_error_ratio(before, after):
    ratio, requests, errors = error_ratio(before, after)
    return {"ratio": ratio, "requests": requests, "errors_5xx": errors}


class FilterModule(object):
    """stagegate.rollout chaos_error_ratio filter."""

    def filters(self):
        return {"chaos_error_ratio": chaos_error_ratio}
