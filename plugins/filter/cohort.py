# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: cohort
short_description: Select a stable percentage of IDs (repositories, users) by salted hashing
version_added: "0.1.0"
description:
  - Keeps the IDs whose salted hash falls below O(percent)%. Each ID's position is
    C(int(sha256(seed + ":" + id)[:16], 16) / 2**64), a number in [0, 1) that depends only on the seed and the ID.
  - The same function (C(plugins/module_utils/cohort.py)) decides which events a queue consumer's canary takes,
    so a cohort drawn here is the one a consumer splits its events by (C(docs/phases.md), "Queue-consumer canaries").
  - Deterministic (same input, same output on any machine and Python version) and monotone (every ID selected at
    10% is also selected at 25%), so growing a canary never drops users already in it. A new O(seed) reshuffles.
  - IDs in O(include) are always selected (when present in the input), IDs in O(exclude) never are
    (O(exclude) wins). The input order is kept.
author:
  - stagegate.rollout contributors (@stagegate)
positional: percent, seed
options:
  _input:
    description: The IDs (strings or integers), or mappings when O(attribute) is given.
    type: list
    elements: raw
    required: true
  percent:
    description: Percentage of IDs to select, 0 to 100 (fractions allowed).
    type: float
    required: true
  seed:
    description: Salt of the hash; change it to draw a different cohort.
    type: str
    default: ""
  include:
    description: IDs always selected.
    type: list
    elements: str
    default: []
  exclude:
    description: IDs never selected.
    type: list
    elements: str
    default: []
  attribute:
    description: When the input holds mappings, the key holding each item's ID.
    type: str
"""

EXAMPLES = r"""
- name: 10% of repositories for the canary, the same ones on every run
  ansible.builtin.set_fact:
    canary_repos: "{{ repos | stagegate.rollout.cohort(percent=10, seed='v2') }}"

- name: 25% next (contains the 10%), the pilot repository always in, a sensitive one never
  ansible.builtin.set_fact:
    canary_repos: "{{ repos | stagegate.rollout.cohort(percent=25, seed='v2', include=['org/pilot'], exclude=['org/payroll']) }}"

- name: Users given as mappings
  ansible.builtin.debug:
    msg: "{{ users | stagegate.rollout.cohort(percent=5, seed='beta-1', attribute='login') }}"
"""

RETURN = r"""
_value:
  description: The selected items, in input order.
  type: list
  elements: raw
"""

import math

from ansible.errors import AnsibleFilterError

# the hash lives in module_utils: a service splitting its events by cohort evaluates the same function
from ansible_collections.stagegate.rollout.plugins.module_utils.cohort import cohort_position, in_cohort


def _kind(value):
    """Plain type name (Ansible 2.19 wraps templated values in tagged subclasses)."""
    for kind in (bool, str, int, float, dict, list, tuple, set):
        if isinstance(value, kind):
            return kind.__name__
    return "null" if value is None else type(value).__name__


def _item_id(item, attribute, index):
    if attribute is not None:
        if not isinstance(item, dict):
            raise AnsibleFilterError("cohort: item %d is %s, not a mapping with the attribute %r"
                                     % (index, _kind(item), attribute))
        if attribute not in item:
            raise AnsibleFilterError("cohort: item %d has no attribute %r" % (index, attribute))
        item = item[attribute]
    if isinstance(item, bool) or not isinstance(item, (str, int)):
        raise AnsibleFilterError("cohort: item %d is %s %r; IDs must be strings or integers%s"
                                 % (index, _kind(item), item,
                                    "" if attribute else " (use attribute= for mappings)"))
    return str(item)


def _id_list(value, name):
    if value is None:
        return set()
    if isinstance(value, str) or not isinstance(value, (list, tuple, set)):
        raise AnsibleFilterError("cohort: %s must be a list of IDs, got %s %r" % (name, _kind(value), value))
    return set(str(v) for v in value)


def cohort(items, percent, seed="", include=None, exclude=None, attribute=None):
    """Select a stable, monotone percentage of ``items``."""
    if isinstance(items, (str, dict)) or not hasattr(items, "__iter__"):
        raise AnsibleFilterError("cohort: the input must be a list of IDs, got %s" % _kind(items))
    if isinstance(percent, bool):
        raise AnsibleFilterError("cohort: percent must be a number from 0 to 100, got %r" % (percent,))
    try:
        pct = float(percent)
    except (TypeError, ValueError):
        raise AnsibleFilterError("cohort: percent must be a number from 0 to 100, got %r" % (percent,))
    if math.isnan(pct) or pct < 0 or pct > 100:
        raise AnsibleFilterError("cohort: percent must be from 0 to 100, got %r" % (percent,))
    if seed is None or isinstance(seed, (dict, list)):
        raise AnsibleFilterError("cohort: seed must be a string, got %r" % (seed,))
    seed = str(seed)
    if attribute is not None and not isinstance(attribute, str):
        raise AnsibleFilterError("cohort: attribute must be a string, got %r" % (attribute,))
    always = _id_list(include, "include")
    never = _id_list(exclude, "exclude")
    return [item for index, item in enumerate(items)
            if in_cohort(_item_id(item, attribute, index), pct, seed, include=always, exclude=never)]


__all__ = ["FilterModule", "cohort", "cohort_position"]


class FilterModule(object):
    """stagegate.rollout cohort filter."""

    def filters(self):
        return {"cohort": cohort}
