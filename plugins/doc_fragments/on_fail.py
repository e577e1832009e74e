# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The fast abort of the judging modules (canary_judge, metric_gate): module_utils/fast_abort.py.
    DOCUMENTATION = r"""
options:
  on_fail:
    description:
      - The fast abort - a traffic change the module makes itself, in the same process, the moment it decides
        C(fail), before the task returns (one HAProxy runtime session of about 2 ms; see RV(on_fail)).
      - M(stagegate.rollout.canary_judge) also makes it when a look cannot be made once the looks have begun
        (the metrics unreadable within the time left, a counter reset with C(on_counter_reset=error)) - it fails
        closed, and the failed result carries RV(on_fail).
      - Run the task where the HAProxy runtime socket is (C(delegate_to) the load-balancer host).
      - The options are checked before anything is read. A failed write does not fail the task; it is reported in
        RV(on_fail), and the rollback that follows writes the weights again.
      - Not written in check mode.
    type: dict
    suboptions:
      socket:
        description: HAProxy runtime API address - a UNIX socket path, C(unix@/path), or C(host:port) / C(ipv4@host:port).
        type: str
        required: true
      backend:
        description: The backend whose servers get O(on_fail.weights).
        type: str
        required: true
      weights:
        description: Server name to weight (0-256) - the weights that give the canary no traffic.
        type: dict
        required: true
      timeout:
        description: Seconds for each runtime session.
        type: float
        default: 2.0
"""
