# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The action groups of meta/runtime.yml, one fragment each: a module of a group extends
    # stagegate.rollout.action_group.<group> (the group's membership is documented once, here).
    METRICS = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/stagegate.rollout.metrics) in C(module_defaults) to set O(provider) once.
    support: full
    membership:
      - stagegate.rollout.metrics
"""

    NATS = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/stagegate.rollout.nats) in C(module_defaults) to set the connection options.
    support: full
    membership:
      - stagegate.rollout.nats
"""

    EVIDENCE = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/stagegate.rollout.evidence) in C(module_defaults) to set options shared by the evidence
      modules once.
    support: full
    membership:
      - stagegate.rollout.evidence
"""
