# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: sentinel_plan
short_description: Check sentinel probes before any change and fill in their defaults
version_added: "0.1.0"
description:
  - Each sentinel is C({name, path | url | command, results, min_results}) - an HTTP GET of a path on a slot of every
    app host, of an absolute URL, or a command run on every app host - that must return results (module_utils/sentinel.py).
  - A bad sentinel fails naming the field, the value and what is accepted.
author:
  - stagegate.rollout contributors (@stagegate)
positional: field
options:
  _input:
    description: The sentinels (C(rollout_sentinels) in the inventory); null or empty - none.
    type: list
    elements: dict
    required: true
  field:
    description: The variable the sentinels came from (error messages name it).
    type: str
    default: rollout_sentinels
"""

EXAMPLES = r"""
- name: The sentinels, checked before any change
  ansible.builtin.set_fact:
    sentinels: "{{ rollout_sentinels | stagegate.rollout.sentinel_plan }}"
"""

RETURN = r"""
_value:
  description: The sentinels, each C({name, path | url | command, results, min_results}) (C(min_results) default 1).
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.stagegate.rollout.plugins.module_utils.sentinel import FIELD, SentinelError, plan


def sentinel_plan(sentinels, field=FIELD):
    try:
        return plan(sentinels, field=field)
    except SentinelError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    """stagegate.rollout sentinel_plan filter."""

    def filters(self):
        return {"sentinel_plan": sentinel_plan}
