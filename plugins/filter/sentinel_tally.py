# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: sentinel_tally
short_description: Tally the sentinel probes of every app host
version_added: "0.1.0"
description:
  - From each host's result of M(stagegate.rollout.sentinel_probe), how many sentinels returned results, which did
    not (with the host and why) and whether that passes.
  - O(required=all) passes only when every sentinel returned results on every host (a promotion gate);
    O(required=any) when at least one did (zero results from every sentinel is the kill-switch condition).
  - A host without a result (unreachable, skipped) counts as an empty sentinel.
author:
  - stagegate.rollout contributors (@stagegate)
positional: required
options:
  _input:
    description: C({host - its sentinel_probe result}).
    type: dict
    required: true
  required:
    description: What passes.
    type: str
    choices: [all, any]
    default: all
"""

EXAMPLES = r"""
- name: Every host's sentinels
  ansible.builtin.set_fact:
    sentinels_result: >-
      {{ dict(ansible_play_hosts_all | zip(ansible_play_hosts_all | map('extract', hostvars, 'probed')))
         | stagegate.rollout.sentinel_tally('any') }}
"""

RETURN = r"""
_value:
  description: C({passed, returned, total, empty, probes}) - C(empty) names each sentinel without results, on which
    host and why; C(probes) is every sentinel as run, with its C(host).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.stagegate.rollout.plugins.module_utils.sentinel import SentinelError, tally


def sentinel_tally(probed_by_host, required="all"):
    if not isinstance(probed_by_host, dict):
        raise AnsibleFilterError("sentinel_tally: %r is not a mapping of host to sentinel_probe result" % (probed_by_host,))
    probes = []
    for host, result in sorted(probed_by_host.items()):
        result = result if isinstance(result, dict) else {}
        ran = result.get("sentinels")
        if not ran:
            probes.append({"name": "every sentinel", "host": host, "results": None,
                           "error": "no result from the host: %s" % str(result.get("msg") or "it did not run")[:200]})
        for probe in ran or []:
            probes.append(dict(probe, host=host))
    try:
        return dict(tally(probes, required), probes=probes)
    except SentinelError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    """stagegate.rollout sentinel_tally filter."""

    def filters(self):
        return {"sentinel_tally": sentinel_tally}
