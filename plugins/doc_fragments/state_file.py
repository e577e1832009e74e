# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The modules that keep an analysis between runs in their state_file option (canary_judge, drift_monitor;
    # written by module_utils/atomic_file.py, write_json_state): what check mode and diff mode do with it.
    DOCUMENTATION = r"""
options: {}
notes:
  - Supports check mode (the new state is computed and returned but O(state_file) is not written).
attributes:
  check_mode:
    description: Computes the verdict and the new state without writing O(state_file).
    support: full
  diff_mode:
    description: Nothing to diff; the state file is internal.
    support: none
"""
