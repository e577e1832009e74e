#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: drift_monitor
short_description: CUSUM (Page) drift monitor for a production metric, with persisted state, reset and escalation
version_added: "0.1.0"
description:
  - Feeds one or more values of a metric into a two-sided tabular CUSUM (Page 1954) and reports whether it is in
    alarm, in which direction, since when, and whether the alarm has lasted longer than O(escalate_after).
  - "Values are standardised with O(target) and O(sigma): z = (x - target) / sigma. S+ = max(0, S+ + z - k),
    S- = max(0, S- - z - k); the alarm is on while S+ > h or S- > h."
  - "O(k) and O(h) are in sigma units. In average run length (ARL) terms, k = 0.5 and h = 5 give about 465
    observations between false alarms of a stable process (two-sided) and detect a 1 sigma shift in about 10.4
    observations; h = 4 gives 168 and 8.4; h = 6 gives about 1,300 and 12.4. k is half the shift worth catching."
  - The statistics, the alarm start time and the calibration are kept in O(state_file) between runs;
    O(reset=true) clears them by hand (after the cause has been handled).
  - Values come from O(value)/O(values) directly or from O(query) through the collection's metric provider.
author:
  - stagegate.rollout contributors (@stagegate)
extends_documentation_fragment:
  - stagegate.rollout.metric_provider
  - stagegate.rollout.state_file
  - stagegate.rollout.action_group.metrics
options:
  value:
    description: One new observation of the metric.
    type: float
  values:
    description: Several new observations, oldest first.
    type: list
    elements: float
  query:
    description: A query returning one value, read through the metric provider configured by O(provider).
    type: str
  target:
    description:
      - In-control mean of the metric. When omitted, the first O(warmup) values estimate it (they raise no alarm).
    type: float
  sigma:
    description:
      - In-control standard deviation of the metric (> 0). When omitted, estimated from the first O(warmup) values.
    type: float
  k:
    description: Reference value (allowance) in sigma units; half the shift to detect.
    type: float
    default: 0.5
  h:
    description: Decision interval in sigma units (see the ARL figures above).
    type: float
    default: 5.0
  escalate_after:
    description:
      - How long the alarm must last before RV(escalate) turns on. Seconds, or a duration such as V(24h), V(90m), V(30s), V(1d).
    type: str
    default: 24h
  warmup:
    description: Number of values used to estimate O(target) and/or O(sigma) when they are not given.
    type: int
    default: 30
  state_file:
    description:
      - JSON file keeping the CUSUM state between runs. Without it the module starts from zero every run.
      - Not written in check mode.
    type: path
  reset:
    description: Clear the statistics and the alarm (manual reset), then apply any new values.
    type: bool
    default: false
notes:
  - An alarm does not fail the task; branch on RV(alarm) and RV(escalate).
seealso:
  - module: stagegate.rollout.canary_judge
"""

EXAMPLES = r"""
- name: Feed the last minute's P@1 into the CUSUM
  stagegate.rollout.drift_monitor:
    value: "{{ precision_at_1 }}"
    target: 0.82
    sigma: 0.03
    state_file: /var/lib/stagegate/drift-p-at-1.json
  register: drift

- name: Escalate an alarm that lasted more than 24 hours
  ansible.builtin.debug:
    msg: "CUSUM alarm ({{ drift.direction }}) since {{ drift.alarm_since }}: escalate"
  when: drift.escalate

- name: Read the error ratio from Prometheus, calibrate on the first 60 values
  stagegate.rollout.drift_monitor:
    provider:
      type: prometheus
      url: http://127.0.0.1:9090
    query: sum(rate(http_requests_total{code=~"5.."}[5m])) / sum(rate(http_requests_total[5m]))
    warmup: 60
    h: 5
    escalate_after: 24h
    state_file: /var/lib/stagegate/drift-errors.json

- name: Reset the monitor by hand after the incident
  stagegate.rollout.drift_monitor:
    reset: true
    state_file: /var/lib/stagegate/drift-errors.json
"""

RETURN = r"""
alarm:
  description: Whether the CUSUM is in alarm (S+ > h or S- > h).
  returned: always
  type: bool
  sample: false
escalate:
  description: Whether the alarm has lasted at least O(escalate_after).
  returned: always
  type: bool
  sample: false
direction:
  description: C(up) or C(down) while in alarm, else null.
  returned: always
  type: str
alarm_since:
  description: Epoch seconds when the current alarm started, or null.
  returned: always
  type: float
alarm_seconds:
  description: How long the current alarm has lasted.
  returned: always
  type: float
s_pos:
  description: Upper CUSUM statistic S+ (sigma units).
  returned: always
  type: float
s_neg:
  description: Lower CUSUM statistic S- (sigma units).
  returned: always
  type: float
n:
  description: Values monitored since the last reset (after calibration).
  returned: always
  type: int
status:
  description: The whole status (target, sigma, k, h, calibration, alarms counted since reset, ...).
  returned: always
  type: dict
state:
  description: The state after this run (what O(state_file) holds).
  returned: always
  type: dict
"""

import json
import os
import time

from ansible.module_utils.common.text.converters import to_native

from ansible_collections.stagegate.rollout.plugins.module_utils.atomic_file import AtomicWriteError, write_json_state
from ansible_collections.stagegate.rollout.plugins.module_utils.drift_monitor import Cusum, DriftError
from ansible_collections.stagegate.rollout.plugins.module_utils.durations import parse_go_duration
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_base import MetricError
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_module import run_metric_module
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_spec import PROVIDER_OPTIONS


def monitor(module):
    """Feed the values (given, or read with the query) into the saved CUSUM; returns the module's result."""
    p = module.params
    try:
        escalate_after = parse_go_duration(p["escalate_after"].lower(), "escalate_after")
    except ValueError:
        module.fail("escalate_after must be seconds or a duration like 24h, 90m, 1d12h; got %r" % p["escalate_after"])
    if p["value"] is None and p["values"] is None and p["query"] is None and not p["reset"]:
        module.fail("give value, values or query (or reset: true)")

    try:
        cusum = Cusum(target=p["target"], sigma=p["sigma"], k=p["k"], h=p["h"],
                      escalate_after=escalate_after, warmup=p["warmup"])
    except DriftError as exc:
        module.fail(to_native(exc))

    if p["state_file"] and os.path.exists(p["state_file"]):
        try:
            with open(p["state_file"]) as fh:
                saved = Cusum.from_state(json.load(fh))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            module.fail("state_file %s: not a usable drift monitor state: %s" % (p["state_file"], to_native(exc)))
        # declared parameters win over the saved ones; the statistics carry over
        mismatch = [name for name, new, old in (("target", p["target"], saved.target), ("sigma", p["sigma"], saved.sigma),
                                                ("k", p["k"], saved.k), ("h", p["h"], saved.h))
                    if new is not None and old is not None and float(new) != float(old)]
        if mismatch and not p["reset"]:
            module.fail("state_file %s was made with different %s; use reset: true to start over with the new "
                        "parameters" % (p["state_file"], ", ".join(mismatch)))
        saved.escalate_after = escalate_after
        cusum = saved

    now = time.time()
    if p["reset"]:
        cusum.reset(now=now)

    values = []
    if p["value"] is not None:
        values = [p["value"]]
    elif p["values"] is not None:
        values = p["values"]
    elif p["query"] is not None:
        provider = module.provider(p["provider"])
        try:
            values = [provider.scalar(p["query"])]
        except MetricError as exc:
            module.fail("query %r: %s" % (p["query"], to_native(exc)))

    status = cusum.status(now)
    try:
        for v in values:
            status = cusum.update(v, now=now)
    except DriftError as exc:
        module.fail(to_native(exc))

    state = cusum.to_state()
    changed = False
    if p["state_file"]:
        try:
            changed = write_json_state(p["state_file"], state, module)
        except AtomicWriteError as exc:
            module.fail(to_native(exc))
    return dict(changed=changed, alarm=status["alarm"], escalate=status["escalate"],
                direction=status["direction"], alarm_since=status["alarm_since"],
                alarm_seconds=status["alarm_seconds"], s_pos=status["s_pos"], s_neg=status["s_neg"],
                n=status["n"], status=status, state=state, values=values)


def main():
    run_metric_module(
        monitor,
        argument_spec=dict(
            value=dict(type="float"),
            values=dict(type="list", elements="float"),
            query=dict(type="str"),
            provider=dict(type="dict", options=PROVIDER_OPTIONS),
            target=dict(type="float"),
            sigma=dict(type="float"),
            k=dict(type="float", default=0.5),
            h=dict(type="float", default=5.0),
            escalate_after=dict(type="str", default="24h"),
            warmup=dict(type="int", default=30),
            state_file=dict(type="path"),
            reset=dict(type="bool", default=False),
        ),
        mutually_exclusive=[("value", "values", "query")],
        required_by={"query": "provider"},
        supports_check_mode=True,
    )


if __name__ == "__main__":
    main()
