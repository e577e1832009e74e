#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: release_window
short_description: Whether a rollout may change anything now - release windows and change freezes
version_added: "0.1.0"
description:
  - Checks the current time against release windows (days and hours in a time zone) and change freezes (from and
    to a date or a time, with a reason). A freeze beats every window; no windows means any time but a freeze.
  - Fails when changes may not happen now, naming the freeze or the windows and the next moment it opens, unless
    O(override_reason) says why it must happen anyway (the result says so; the phases record it in the ledger).
  - Reads nothing but the clock; a bad spec fails naming the field, the value and what is accepted.
author:
  - stagegate.rollout contributors (@stagegate)
options:
  windows:
    description:
      - The spec - C(timezone) (an IANA name, default V(UTC)), C(windows) (a list of C({days, start, end}), days
        V(mon) to V(sun) or their full names, times C(HH:MM), an C(end) at or before C(start) runs past midnight,
        V(24:00) is the end of the day) and C(freezes) (a list of C({start, end, reason}), each an RFC 3339 time or a
        date; a date C(end) includes that whole day).
    type: dict
    default: {}
  override_reason:
    description:
      - Why a change must happen outside the windows or in a freeze. Given, a closed window does not fail the task
        (RV(overridden) is true). An empty string is no reason.
    type: str
  now:
    description: The moment to check (RFC 3339), instead of the current time - to see when a plan would be allowed.
    type: str
attributes:
  check_mode:
    description: Reads only the clock; runs the same in check mode.
    support: full
  diff_mode:
    description: Nothing changes.
    support: none
notes:
  - The phases check it before any change and before every traffic step (C(rollout_release_windows), see
    C(docs/phases.md)).
"""

EXAMPLES = r"""
- name: Changes only Monday to Thursday 09:00-16:00 Berlin time, not over the year end
  stagegate.rollout.release_window:
    windows:
      timezone: Europe/Berlin
      windows:
        - {days: [mon, tue, wed, thu], start: "09:00", end: "16:00"}
      freezes:
        - {start: "2026-12-21", end: "2027-01-03", reason: year-end freeze}

- name: The same, with a reason to go on anyway
  stagegate.rollout.release_window:
    windows: "{{ rollout_release_windows }}"
    override_reason: "hotfix for INC-4711, approved by the on-call lead"
  register: window
"""

RETURN = r"""
open:
  description: Whether changes may happen at that moment.
  returned: always
  type: bool
overridden:
  description: Closed, and O(override_reason) let it go on.
  returned: always
  type: bool
reason:
  description: Why it is open or closed (the window, or the freeze and its reason, and the next opening).
  returned: always
  type: str
  sample: "change freeze until 2027-01-03T23:00:00Z: year-end freeze; next open 2027-01-04T08:00:00Z"
next_open:
  description: When it opens next (UTC, RFC 3339); null when open or when nothing opens within 400 days.
  returned: always
  type: str
freeze:
  description: The freeze in force (C(start), C(end), C(reason)), or null.
  returned: always
  type: dict
window:
  description: The window it is in (days and hours), or null.
  returned: always
  type: str
at:
  description: The moment checked (UTC, RFC 3339).
  returned: always
  type: str
"""

import datetime

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.stagegate.rollout.plugins.module_utils.release_window import (
    WindowError, check_spec, evaluate)


def check(module):
    """The module's one call: the spec checked, the moment evaluated, failed when closed without a reason."""
    p = module.params
    try:
        spec = check_spec(p["windows"], field="windows")
        now = None
        if p["now"]:
            try:
                now = datetime.datetime.fromisoformat(p["now"].strip().replace("Z", "+00:00"))
            except ValueError:
                raise WindowError("now: %r is not an RFC 3339 time (e.g. 2026-12-02T09:30:00Z)" % p["now"])
            if now.tzinfo is None:
                now = now.replace(tzinfo=spec["zone"])
        result = evaluate(spec, now)
    except WindowError as exc:
        module.fail_json(msg=str(exc))
    reason = (p["override_reason"] or "").strip()
    result["overridden"] = not result["open"] and bool(reason)
    if not result["open"] and not reason:
        module.fail_json(msg="no change may happen now: %s (override_reason says why it must anyway)" % result["reason"],
                         changed=False, **result)
    module.exit_json(changed=False, **result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            windows=dict(type="dict", default={}),
            override_reason=dict(type="str"),
            now=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    check(module)


if __name__ == "__main__":
    main()
