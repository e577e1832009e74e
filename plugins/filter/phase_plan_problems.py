# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: phase_plan_problems
short_description: What a phase's plan asks of its target that it cannot run, each problem naming its field
version_added: "0.1.0"
description:
  - Checks the phase's strategy (V(progressive) or V(blue-green); blue-green only in the canary, production and
    advanced phases, without C(steps) or C(batches), with whole C(analysis_seconds) > 0, on kind V(hosts)) and, on
    kind V(kubernetes), what the phases run on hosts only (the blue-green router, probes, chaos drills, sentinels,
    hold).
  - A queue consumer's canary (C(split=events)) - canary phase, kind V(hosts), progressive, one step whose weight is
    the cohort's share of the events (below 100), the judge's C(judge_queries), gates that do not look at HTTP
    requests, and C(events) naming the canary's durable, the consumer's split flags and the cohort flags.
  - Returns the problems found, an empty list when there is none; the phase skeleton asserts it is empty before any
    change. See C(plugins/module_utils/phase_plan.py) and docs/phases.md.
author:
  - stagegate.rollout contributors (@stagegate)
positional: given, plan
options:
  _input:
    description: The phase's name (V(install), V(staging), V(canary), V(production), V(advanced)).
    type: str
    required: true
  given:
    description: The inventory's C(rollout_<phase>) as written.
    type: dict
    required: true
  plan:
    description: C(given) merged with the phase's defaults.
    type: dict
    required: true
  kind:
    description: The target's kind.
    type: str
    default: hosts
  router:
    description: The kubernetes router's type (kind V(kubernetes)).
    type: str
  failure_policy:
    description: What a failure does, V(rollback) or V(hold).
    type: str
    default: rollback
  sentinels:
    description: How many sentinels the inventory declares.
    type: int
    default: 0
  schema:
    description: C(rollout_flag_schema) or its flag names; with C(split=events) or V(both) the split flags must be
      among them, and (the schema itself) no flag may require the consume flag.
      Left out - not checked.
    type: raw
  nats:
    description: The target's C(nats) section; with C(split=events) the canary's durable must be another than its
      C(durable). Left out - not checked.
    type: dict
"""

EXAMPLES = r"""
- name: Check the phase's plan before any change
  ansible.builtin.assert:
    that: _problems | length == 0
    fail_msg: "{{ _problems | join('; ') }}; nothing changed"
  vars:
    _problems: "{{ 'production' | stagegate.rollout.phase_plan_problems(rollout_production, rollout_production, kind='hosts') }}"
"""

RETURN = r"""
_value:
  description: The problems, each naming the field, what is wrong and what is accepted; empty when there is none.
  type: list
  elements: str
"""

from ansible_collections.stagegate.rollout.plugins.module_utils.phase_plan import problems


def phase_plan_problems(phase, given, plan, kind="hosts", router=None, failure_policy="rollback", sentinels=0,
                        schema=None, nats=None):
    return problems(phase, given, plan, kind=kind, router=router, failure_policy=failure_policy,
                    sentinels=int(sentinels or 0),
                    schema=None if schema is None else schema if isinstance(schema, dict) else list(schema), nats=nats)


class FilterModule(object):
    """stagegate.rollout phase_plan_problems filter."""

    def filters(self):
        return {"phase_plan_problems": phase_plan_problems}
