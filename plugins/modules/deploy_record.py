#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: deploy_record
short_description: Create a deployment's directory and record what it holds, refusing another owner's directory
version_added: "0.1.0"
description:
  - The record of a directory C(stagegate.rollout.deploy_hosts) deploys into (C(deploy.json)) - the version, port
    and program, and the instance when the directory is an instance's - in one call on the host instead of a read,
    a check, a directory and a copy.
  - Refuses, before anything changes, a directory whose record belongs to another instance, holds a version when
    O(instance) is given, or an instance when it is not.
  - Creates the directory (mode C(0755)) when missing. A record already there is kept unless O(rewrite=true) and
    it differs from O(record) (its C(deployed_at), the time it was written, left out of the comparison).
  - Writes the file all at once (a temporary file renamed over it), so a reader never sees part of it.
author:
  - stagegate.rollout contributors (@stagegate)
options:
  path:
    description: The record file, e.g. C(/srv/codex/v2/deploy.json).
    type: path
    required: true
  record:
    description: "What the directory holds, e.g. C({version: v2, port: 8101, program: codex-v2}). C(deployed_at) is
      added (UTC); O(instance) is added when given."
    type: dict
    required: true
  instance:
    description: The instance the directory belongs to; empty for a version's own directory.
    type: str
    default: ""
  rewrite:
    description: Write a new record when O(record) differs from the one there (an instance's directory, whose
      version changes); false keeps the first record (a version's directory).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Reads the record and reports what would change, without creating or writing anything.
  diff_mode:
    support: full
    description: Shows the record before and after.
seealso:
  - module: stagegate.rollout.feature_flags
  - module: stagegate.rollout.supervisord_program
"""

EXAMPLES = r"""
- name: A version's directory and its first record
  stagegate.rollout.deploy_record:
    path: /srv/codex/v2/deploy.json
    record: {version: v2, port: 8102, program: codex-v2}

- name: The canary instance now runs v3 (the record follows what runs there)
  stagegate.rollout.deploy_record:
    path: /srv/codex/canary/deploy.json
    record: {version: v3, port: 8101, program: codex-canary}
    instance: canary
    rewrite: true
"""

RETURN = r"""
created:
  description: Whether the directory was created (would be, in check mode).
  returned: always
  type: bool
previous:
  description: The record found, null when there was none.
  returned: always
  type: dict
record:
  description: The record the file holds afterwards (would hold, in check mode).
  returned: always
  type: dict
  sample: {"version": "v2", "port": 8102, "program": "codex-v2", "deployed_at": "2026-12-04T05:40:00.123456Z"}
"""

import datetime

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.stagegate.rollout.plugins.module_utils.deploy_record import DeployRecordError, apply


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            record=dict(type="dict", required=True),
            instance=dict(type="str", default=""),
            rewrite=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    params = module.params
    try:
        result = apply(params["path"], params["record"], instance=params["instance"], rewrite=params["rewrite"],
                       deployed_at=now, check_mode=module.check_mode, module=module)
    except DeployRecordError as exc:
        module.fail_json(msg="deploy_record: %s" % exc, path=params["path"])
    before, after = result.pop("before"), result.pop("after")
    if module._diff:
        result["diff"] = dict(before=before, after=after, before_header=params["path"], after_header=params["path"])
    module.exit_json(path=params["path"], **result)


if __name__ == "__main__":
    main()
