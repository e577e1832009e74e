#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: supervisord_program
short_description: One program of a per-directory supervisord, started, stopped or removed in one call
version_added: "0.1.0"
description:
  - Manages the supervisord of O(supervisord_dir) (no system service needed) and one program in it, in one call
    on the host instead of a task per C(supervisorctl) step.
  - "O(state=started) writes C(supervisord.conf) (O(supervisord_conf), when it differs), starts supervisord when it
    does not answer, writes the program's section to C(conf.d/<name>.conf) (O(section), when it differs), then adds
    a program supervisord does not know (C(reread), C(add)), applies a changed section (C(reread), C(update);
    supervisord replaces the process), restarts a running program when O(restart) (its env file changed) and starts
    a stopped one."
  - O(state=stopped) stops the program when it runs, starts or retries to start (C(BACKOFF)); its section and files
    stay, so a later O(state=started) starts it again. Without a running supervisord nothing runs, so nothing changes.
  - O(state=absent) stops and removes the program and deletes its section.
  - Used by the C(deploy_hosts) role; the steps are decided from what is there
    (C(module_utils/supervisord_program.py), unit-tested).
author:
  - stagegate.rollout contributors (@stagegate)
options:
  name:
    description: The program's name (letters, digits, C(_ . -)).
    type: str
    required: true
  state:
    description: What the program should be.
    type: str
    choices: [started, stopped, absent]
    default: started
  supervisord_dir:
    description: The directory of this supervisord (its C(supervisord.conf), C(conf.d/), socket, pid file and log).
    type: path
    required: true
  supervisord_conf:
    description: The content of C(supervisord.conf). Required with O(state=started).
    type: str
  section:
    description: The content of the program's section (C([program:<name>]) ...). Required with O(state=started).
    type: str
  restart:
    description: With O(state=started), restart the program when it runs already (its env file changed).
    type: bool
    default: false
  supervisord_bin:
    description: C(supervisord), a path or a name looked up on the PATH.
    type: str
    default: supervisord
  supervisorctl_bin:
    description: C(supervisorctl), a path or a name looked up on the PATH.
    type: str
    default: supervisorctl
  health_url:
    description:
      - With O(state=started), once the program is started, GET this URL on the host until it answers 200, at most
        O(health_retries) times O(health_delay) seconds apart (in the same call, no task of its own); the module fails
        naming the URL and the last answer when it never does. Not checked in check mode.
    type: str
  health_retries:
    description: How many times O(health_url) is tried.
    type: int
    default: 30
  health_delay:
    description: Seconds between two tries of O(health_url).
    type: float
    default: 1
  health_timeout:
    description: Seconds each try of O(health_url) may take.
    type: int
    default: 5
attributes:
  check_mode:
    description: Reads what is there and reports the steps it would take in RV(actions), without writing or
      running anything that changes the host.
    support: full
  diff_mode:
    description: Shows the program's section before and after.
    support: full
"""

EXAMPLES = r"""
- name: Run v2 of codex under the supervisord of /srv/codex/supervisor
  stagegate.rollout.supervisord_program:
    name: codex-v2
    supervisord_dir: /srv/codex/supervisor
    supervisord_conf: "{{ lookup('ansible.builtin.template', 'supervisord.conf.j2') }}"
    section: "{{ lookup('ansible.builtin.template', 'program.conf.j2') }}"
    restart: "{{ env_file is changed }}"
    health_url: http://127.0.0.1:8102/healthz

- name: Stop it, keep its section
  stagegate.rollout.supervisord_program:
    name: codex-v2
    supervisord_dir: /srv/codex/supervisor
    state: stopped
"""

RETURN = r"""
before:
  description: The program's supervisord state before (C(RUNNING), C(STOPPED), C(BACKOFF), ...); null when
    supervisord did not know it or did not run.
  returned: always
  type: str
after:
  description: Its state after; null when it is gone (or in check mode).
  returned: always
  type: str
health:
  description: The health check of O(health_url) - the URL, its answer (200) and the tries it took.
  returned: when O(health_url) is given, not in check mode
  type: dict
  sample: {"url": "http://127.0.0.1:8101/healthz", "status": 200, "attempts": 2}
actions:
  description: What changed, in order (C(start supervisord), C(write the program section), C(add), C(start), ...).
  returned: always
  type: list
  elements: str
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.six.moves.urllib.error import HTTPError
from ansible.module_utils.urls import open_url

from ansible_collections.stagegate.rollout.plugins.module_utils.atomic_file import atomic_write
from ansible_collections.stagegate.rollout.plugins.module_utils.supervisord_program import (
    STATES, Supervisord, SupervisordError, wait_healthy)


def _read(path):
    try:
        with open(path, "rb") as fh:
            return to_text(fh.read())
    except (IOError, OSError):
        return None


class _Files:
    """File writes and removals of this run (nothing touched in check mode), with the diff of the section."""

    def __init__(self, module):
        self.module = module
        self.diff = {"before": "", "after": ""}

    def write(self, path, content):
        if not content.endswith("\n"):
            content += "\n"
        old = _read(path)
        if old == content:
            return False
        if path.endswith(".conf") and os.path.basename(os.path.dirname(path)) == "conf.d":
            self.diff = {"before": old or "", "after": content, "before_header": path, "after_header": path}
        if self.module.check_mode:
            return True
        directory = os.path.dirname(path)
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o755)
        atomic_write(path, content, 0o644, module=self.module)
        return True

    def remove(self, path):
        if not os.path.exists(path):
            return False
        self.diff = {"before": _read(path) or "", "after": "", "before_header": path, "after_header": path}
        if not self.module.check_mode:
            os.unlink(path)
        return True


def _status(url, timeout):
    """The HTTP status of a GET of ``url`` (an error status is an answer too; no answer raises)."""
    try:
        return open_url(url, method="GET", timeout=timeout, validate_certs=True).getcode()
    except HTTPError as exc:
        return exc.code


def _binary(module, name):
    return name if os.path.isabs(name) else module.get_bin_path(name, required=True)


def run_module(module):
    p = module.params
    if p["state"] == "started" and (p["section"] is None or p["supervisord_conf"] is None):
        module.fail_json(msg="state started needs section (the program's section) and supervisord_conf "
                             "(got section: %s, supervisord_conf: %s)" % (
                                 "given" if p["section"] is not None else "missing",
                                 "given" if p["supervisord_conf"] is not None else "missing"))
    if p["health_url"] and p["state"] != "started":
        module.fail_json(msg="health_url: only with state started (state: %s)" % p["state"])
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", p["name"]):
        module.fail_json(msg="name: %r is not a program name (letters, digits, _ . -; a letter or digit first)"
                             % p["name"])
    files = _Files(module)

    def run(argv):
        return module.run_command(argv, environ_update={"LANG": "C", "LC_ALL": "C"})

    sup = Supervisord(p["supervisord_dir"], p["name"], run, files.write, _read, files.remove,
                      supervisord_bin=_binary(module, p["supervisord_bin"]),
                      supervisorctl_bin=_binary(module, p["supervisorctl_bin"]), check_mode=module.check_mode)
    try:
        before, after = sup.apply(p["state"], p["supervisord_conf"], p["section"], p["restart"])
    except SupervisordError as exc:
        module.fail_json(msg="program %s: %s" % (p["name"], exc), actions=sup.done)
    result = {"changed": bool(sup.done), "before": before, "after": after, "actions": sup.done}
    if p["health_url"] and not module.check_mode:
        try:
            result["health"] = wait_healthy(lambda url: _status(url, p["health_timeout"]), p["health_url"],
                                            p["health_retries"], p["health_delay"])
        except SupervisordError as exc:
            module.fail_json(msg="program %s: %s" % (p["name"], exc), actions=sup.done, before=before, after=after)
    if module._diff:
        result["diff"] = files.diff
    module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", choices=list(STATES), default="started"),
            supervisord_dir=dict(type="path", required=True),
            supervisord_conf=dict(type="str"),
            section=dict(type="str"),
            restart=dict(type="bool", default=False),
            supervisord_bin=dict(type="str", default="supervisord"),
            supervisorctl_bin=dict(type="str", default="supervisorctl"),
            health_url=dict(type="str"),
            health_retries=dict(type="int", default=30),
            health_delay=dict(type="float", default=1.0),
            health_timeout=dict(type="int", default=5),
        ),
        supports_check_mode=True,
    )
    run_module(module)


if __name__ == "__main__":
    main()
