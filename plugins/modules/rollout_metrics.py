#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: rollout_metrics
short_description: Record the rollout's own metrics in a Prometheus text-format file
version_added: "0.1.0"
description:
  - Updates counters and gauges of the rollout itself (progress, analysis runs and failures, rollbacks,
    blue-green switches and their duration) in a file in the Prometheus text exposition format, for
    node_exporter's textfile collector or any HTTP server Prometheus scrapes.
  - Read-modify-write under an exclusive lock, written to a temporary file and renamed, so concurrent runs
    never lose an increment and a scrape never reads half a file.
  - Every update is validated before the file is read; a bad one changes nothing.
  - "Known families (type and help filled in): C(stagegate_rollout_progress_ratio), C(stagegate_rollout_canary_weight_percent),
    C(stagegate_rollout_analysis_runs_total), C(stagegate_rollout_analysis_failures_total), C(stagegate_rollout_rollbacks_total),
    C(stagegate_rollout_rollback_incomplete),
    C(stagegate_rollout_bluegreen_switches_total), C(stagegate_rollout_bluegreen_switch_seconds)."
author:
  - stagegate.rollout contributors (@stagegate)
extends_documentation_fragment:
  - stagegate.rollout.action_group.evidence
options:
  path:
    description: The metrics file, e.g. C(/var/lib/node_exporter/textfile_collector/stagegate_rollout.prom). Its directory must exist.
    type: path
    required: true
  metrics:
    description: Updates to apply, in order.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Metric name (C([a-zA-Z_:][a-zA-Z0-9_:]*)).
        type: str
        required: true
      type:
        description: Metric type; known families have theirs and refuse another. Defaults to C(gauge) for others.
        type: str
        choices: [counter, gauge]
      help:
        description: HELP text for a new family.
        type: str
      labels:
        description: Label names to values.
        type: dict
      inc:
        description: Add this value (counters only accept values >= 0). Exactly one of O(metrics[].inc) and O(metrics[].set).
        type: float
      set:
        description: Set a gauge to this value.
        type: float
attributes:
  check_mode:
    support: full
    description: Computes the new file and reports it without writing.
  diff_mode:
    support: full
    description: Shows the file before and after.

notes:
  - An increment is a change every time it runs; a C(set) to the value already held is not.
seealso:
  - module: stagegate.rollout.rollout_ledger
"""

EXAMPLES = r"""
- name: Count a failed analysis at canary step 2
  stagegate.rollout.rollout_metrics:
    path: /var/lib/node_exporter/textfile_collector/stagegate_rollout.prom
    metrics:
      - name: stagegate_rollout_analysis_runs_total
        labels: {release: v3, phase: canary, step: "2"}
        inc: 1
      - name: stagegate_rollout_analysis_failures_total
        labels: {release: v3, phase: canary, step: "2"}
        inc: 1

- name: Record a rollback and the weight it left
  stagegate.rollout.rollout_metrics:
    path: "{{ rollout_metrics_path }}"
    metrics:
      - name: stagegate_rollout_rollbacks_total
        labels: {release: v3, phase: canary, reason: gate}
        inc: 1
      - name: stagegate_rollout_canary_weight_percent
        labels: {service: org-brain}
        set: 0
"""

RETURN = r"""
path:
  description: The metrics file.
  returned: always
  type: str
updated:
  description: Each sample touched with its value before (null when new) and after.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "stagegate_rollout_rollbacks_total", "labels": {"phase": "canary"}, "before": 1.0, "after": 2.0}]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.stagegate.rollout.plugins.module_utils.rollout_metrics import (
    RolloutMetricsError,
    update_file,
)

ARGUMENT_SPEC = dict(
    path=dict(type="path", required=True),
    metrics=dict(type="list", elements="dict", required=True, options=dict(
        name=dict(type="str", required=True),
        type=dict(type="str", choices=["counter", "gauge"]),
        help=dict(type="str"),
        labels=dict(type="dict"),
        inc=dict(type="float"),
        set=dict(type="float"),
    )),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    path = module.params["path"]
    try:
        changed, before, after, touched = update_file(path, module.params["metrics"], check_mode=module.check_mode)
    except (RolloutMetricsError, OSError) as exc:
        module.fail_json(msg="rollout_metrics: %s" % exc, path=path)
    result = dict(changed=changed, path=path, updated=touched)
    if module._diff:
        result["diff"] = dict(before=before, after=after, before_header=path, after_header=path)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
