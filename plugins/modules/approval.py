#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: approval
short_description: A person approves by typing a word at the controller's terminal, within a time limit
version_added: "0.1.0"
description:
  - Shows O(prompt) on the terminal of the controller and waits until a person types a line (Enter) or
    O(timeout) seconds pass. RV(approved) is true only when the line is O(expect).
  - Fails closed, unlike M(ansible.builtin.pause) (which returns at once with no input when there is no
    terminal, and ignores what is typed when it has a time limit). Without an interactive terminal (cron, CI, an
    AWX job) RV(approved) is false at once. So it is under ansible-runner (how AWX runs a job; the environment
    has C(AWX_ISOLATED_DATA_DIR)), where the prompt would wait on a pseudo-terminal nobody types into. The caller
    decides what that means (the phases stop before any change, or roll back an inconclusive canary step). In
    AWX, use a workflow approval node instead and let the job run with an approval given.
  - The task itself never fails for a missing approval; it reports what happened (RV(terminal), RV(timed_out),
    RV(typed), RV(waited)).
  - This is an action plugin; it runs on the controller only.
author:
  - stagegate.rollout contributors (@stagegate)
options:
  prompt:
    description: What the person is asked.
    type: str
    required: true
  expect:
    description: The word that approves (the phases use the release version). Surrounding spaces are ignored.
    type: str
    required: true
  timeout:
    description: Seconds to wait for the answer; V(0) waits as long as it takes.
    type: int
    default: 0
attributes:
  check_mode:
    description: Asks in check mode as well (nothing changes either way).
    support: full
  diff_mode:
    description: Not supported.
    support: none
  action:
    description: Runs as an action plugin on the controller.
    support: full
  bypass_host_loop:
    description: Asks once for all hosts of the play.
    support: full
notes:
  - The answer goes through ansible's own prompt (the main process owns the terminal), like M(ansible.builtin.pause).
"""

EXAMPLES = r"""
- name: A person approves the canary of the release
  stagegate.rollout.approval:
    prompt: "Canary of {{ rollout_version }}: type {{ rollout_version }} and Enter to approve"
    expect: "{{ rollout_version }}"
    timeout: 1800
  register: approval

- name: Stop unless approved
  ansible.builtin.assert:
    that: approval.approved
    fail_msg: "not approved: {{ approval.reason }}"
"""

RETURN = r"""
approved:
  description: The person typed O(expect) within O(timeout).
  type: bool
  returned: always
terminal:
  description: An interactive terminal was there to ask on.
  type: bool
  returned: always
timed_out:
  description: Nobody finished a line within O(timeout).
  type: bool
  returned: always
interrupted:
  description: The prompt was interrupted (Ctrl+C).
  type: bool
  returned: always
typed:
  description: What was typed (at most 40 characters).
  type: str
  returned: always
waited:
  description: Seconds the prompt waited.
  type: float
  returned: always
reason:
  description: One line saying what happened.
  type: str
  returned: always
  sample: nobody typed v3 within 1800 s
"""
