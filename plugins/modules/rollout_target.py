#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: rollout_target
short_description: Validate a rollout target before any change and derive the app hosts and HAProxy servers
version_added: "0.1.0"
description:
  - Checks the C(rollout_target) of an inventory (docs/targets.md) - its kind, the app host group, how a version
    is installed and started on the hosts, the load balancer, the metrics provider and metric names, the NATS
    connection - and returns it with its defaults filled in, its secrets removed.
  - A C(kind=kubernetes) target has one "app host", C(kubernetes.controller) (the inventory host that runs
    C(helm) and the C(kubernetes.core) modules, default V(localhost)), whose two "servers" are the Helm releases
    C(<release>-stable) and C(<release>-canary); canary shares other than 0 and 100 are refused on a blue-green
    router.
  - With O(groups) and O(hosts) (pass the magic variables C(groups) and C(groups.all)) the app host group and
    the load-balancer host are checked against the inventory; with O(backend_servers) (from
    M(stagegate.rollout.haproxy_traffic) run on the load-balancer host) every stable and canary server must be
    in the HAProxy backend.
  - Every error names the field, the value and what is accepted. Nothing is changed, so the module runs the
    same in check mode.
  - Passwords, tokens, API keys, nkey seeds and the userinfo of URLs are C(no_log) values; they never appear in the
    result.
author:
  - stagegate.rollout contributors (@stagegate)
options:
  target:
    description: The target description (C(rollout_target)); see docs/targets.md for every field.
    type: dict
    required: true
  groups:
    description: The inventory's groups (the magic variable C(groups)).
    type: dict
  hosts:
    description: Every host of the inventory (C(groups.all)).
    type: list
    elements: str
  backend_servers:
    description: The servers of the target's HAProxy backend, when known.
    type: list
    elements: str
  canary_weights:
    description: Canary shares in percent (0 to 100) whose HAProxy weights to return in RV(weights).
    type: list
    elements: raw
  batches:
    description:
      - Production host batches, as Ansible's C(serial) - counts or percentages of the app hosts, the last one
        repeated until every host is in a batch, for example V([1, "25%", "100%"]). Returned in RV(host_batches).
    type: list
    elements: raw
  version:
    description: The release, for the version label of the default queries (C(metrics.version_label)).
    type: str
    default: ""
  canary_weights_field:
    description: Where O(canary_weights) come from, named in error messages (for example V(rollout_canary.steps)).
    type: str
    default: canary_weights
  batches_field:
    description: Where O(batches) come from, named in error messages (for example V(rollout_production.batches)).
    type: str
    default: batches
attributes:
  check_mode:
    description: Can run in check mode and return the same result (it never changes anything).
    support: full
  diff_mode:
    description: Nothing changes, so there is no diff.
    support: none
"""

EXAMPLES = r"""
- name: Check the target before anything changes
  stagegate.rollout.rollout_target:
    target: "{{ rollout_target }}"
    groups: "{{ groups }}"
    hosts: "{{ groups.all }}"
  register: rollout_plan
  run_once: true
  delegate_to: localhost

- name: The canary servers of every app host
  ansible.builtin.debug:
    msg: "{{ rollout_plan.servers | dict2items | map(attribute='value.canary') | list }}"
"""

RETURN = r"""
kind:
  description: The target's kind.
  returned: always
  type: str
  sample: hosts
name:
  description: The service name.
  returned: always
  type: str
  sample: codex
app_hosts:
  description: The app hosts (kind hosts, with O(groups)); for kind kubernetes the controller host.
  returned: when kind is hosts and O(groups) is given, or kind is kubernetes
  type: list
  elements: str
  sample: [app1, app2, app3]
servers:
  description: The HAProxy server of each app host and slot (kind kubernetes - the Helm release of each slot).
  returned: always
  type: dict
  sample: {"app1": {"stable": "app1_stable", "canary": "app1_canary"}}
nats_connection_keys:
  description: Which NATS connection options are set (names only).
  returned: always
  type: list
  elements: str
  sample: [servers, user, password]
weights:
  description: For each of O(canary_weights), the weight of every stable and canary server (or release).
  returned: always
  type: dict
  sample: {"25": {"app1_canary": 25, "app1_stable": 75, "app2_canary": 25, "app2_stable": 75}}
host_batches:
  description: The app hosts split into the batches of O(batches).
  returned: when O(batches) is given (kind kubernetes - one batch, the controller)
  type: list
  elements: list
  sample: [["app1"], ["app2", "app3"]]
queries:
  description:
    - The default queries built from the service's metric names and selectors - C(judge) (C(baseline) and
      C(canary) cumulative counters for M(stagegate.rollout.canary_judge)) and C(gates) (per slot, C(error_rate)
      and C(p99_latency_ms) over C($window)) and C(report) (the plots of M(stagegate.rollout.rollout_report) - the
      canary's gate queries of O(version), the stable slot's without the version, so the stable line shows the
      previous version until a promotion).
  returned: always
  type: dict
releases:
  description: The Helm release of each slot.
  returned: when kind is kubernetes
  type: dict
  sample: {"stable": "codex-stable", "canary": "codex-canary"}
router:
  description: The router that splits the traffic between the releases.
  returned: when kind is kubernetes
  type: str
  sample: gateway-api
target:
  description: The target with its defaults filled in and its secrets removed.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.stagegate.rollout.plugins.module_utils.rollout_target import (
    TargetError,
    plan,
    secret_values,
)

ARGUMENT_SPEC = dict(
    target=dict(type="dict", required=True),
    groups=dict(type="dict"),
    hosts=dict(type="list", elements="str"),
    backend_servers=dict(type="list", elements="str"),
    canary_weights=dict(type="list", elements="raw"),
    batches=dict(type="list", elements="raw"),
    version=dict(type="str", default=""),
    canary_weights_field=dict(type="str", default="canary_weights"),
    batches_field=dict(type="str", default="batches"),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.no_log_values.update(secret_values(module.params["target"]))
    try:
        result, secrets = plan(module.params["target"], groups=module.params["groups"],
                               hosts=module.params["hosts"], backend_servers=module.params["backend_servers"],
                               canary_weights=module.params["canary_weights"], batch_sizes=module.params["batches"],
                               version=module.params["version"],
                               weights_field=module.params["canary_weights_field"],
                               batches_field=module.params["batches_field"])
    except TargetError as exc:
        module.fail_json(msg=str(exc))
    module.no_log_values.update(secrets)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
