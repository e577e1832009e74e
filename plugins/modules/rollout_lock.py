#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: rollout_lock
short_description: One rollout per target at a time, with a lock file on a host every controller reaches
version_added: "0.1.0"
description:
  - Run it on a host that every controller of the target reaches (the phases use the load-balancer host), so that
    two controllers see the same lock.
  - O(action=acquire) takes the lock for O(token) (a value only this run knows) and records O(holder). A lock
    held by another run that has not expired fails the task naming its holder, before any change. A lock of
    this token is refreshed; an expired one (O(ttl) after it was taken) is taken over; O(break_lock) takes it
    from whoever holds it. RV(previous) tells whose lock was taken over or broken.
  - O(action=release) removes the lock when O(token) holds it (no change otherwise).
  - O(action=show) reads it.
  - The file is created with C(O_EXCL) and mode 0600, never through a symbolic link.
author:
  - stagegate.rollout contributors (@stagegate)
options:
  path:
    description: The lock file.
    type: path
    required: true
  action:
    description: What to do.
    type: str
    choices: [acquire, release, show]
    default: acquire
  token:
    description: The value that identifies this run's hold. Required with O(action=acquire) and O(action=release).
    type: str
  holder:
    description: Who holds it, shown to a run that is refused (for example release, phase, controller, user).
    type: dict
    default: {}
  ttl:
    description: Seconds after which a lock that was not released (its run was killed) expires.
    type: int
    default: 7200
  break_lock:
    description: Take the lock whoever holds it (a person who knows that run is gone).
    type: bool
    default: false
attributes:
  check_mode:
    description: Acquire reports whether the lock would be taken (and fails when it is held) without writing.
    support: full
  diff_mode:
    description: Not supported.
    support: none
"""

EXAMPLES = r"""
- name: One rollout of codex at a time
  stagegate.rollout.rollout_lock:
    path: /run/haproxy/stagegate-codex.lock
    token: "{{ run_token }}"
    holder: {release: v2, phase: canary, controller: "{{ lookup('ansible.builtin.pipe', 'hostname') }}"}
  delegate_to: lb1

- name: Give it back
  stagegate.rollout.rollout_lock:
    path: /run/haproxy/stagegate-codex.lock
    action: release
    token: "{{ run_token }}"
  delegate_to: lb1
"""

RETURN = r"""
result:
  description: C(acquire) (it was free), C(refresh) (this token held it), C(take_over) (it had expired), C(break),
    C(released), C(not_held) (release of a lock this token does not hold) or C(show).
  returned: always
  type: str
lock:
  description: The lock now (holder, acquired_at, expires_at; never the token); null when there is none.
  returned: always
  type: dict
previous:
  description: The lock that was taken over or broken (without its token), else null.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.stagegate.rollout.plugins.module_utils.rollout_lock import (
    LockError, acquire, read, release)


def _public(lock):
    if isinstance(lock, dict):
        return dict((k, v) for k, v in lock.items() if k != "token")
    return None if lock is None else {"unreadable": str(lock)[:200]}


def run_module(module):
    p = module.params
    if p["action"] in ("acquire", "release") and not p["token"]:
        module.fail_json(msg="token: required with action %s (a value only this run knows)" % p["action"])
    try:
        if p["action"] == "show":
            module.exit_json(changed=False, result="show", lock=_public(read(p["path"])), previous=None)
        if p["action"] == "release":
            done = release(p["path"], p["token"], check_mode=module.check_mode)
            module.exit_json(changed=done, result="released" if done else "not_held", lock=_public(read(p["path"])),
                             previous=None)
        res = acquire(p["path"], p["token"], p["holder"], p["ttl"], break_lock=p["break_lock"],
                      check_mode=module.check_mode)
    except LockError as exc:
        module.fail_json(msg=str(exc), result="held")
    if res["result"] in ("take_over", "break"):
        how = "took over the expired" if res["result"] == "take_over" else "broke"
        module.warn("rollout lock %s: %s lock of %s" % (p["path"], how, _public(res["previous"])))
    module.exit_json(changed=True, result=res["result"], lock=_public(res["lock"]), previous=_public(res["previous"]))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            action=dict(type="str", choices=["acquire", "release", "show"], default="acquire"),
            token=dict(type="str", no_log=False),
            holder=dict(type="dict", default={}),
            ttl=dict(type="int", default=7200),
            break_lock=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    run_module(module)


if __name__ == "__main__":
    main()
