#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: config_fingerprint
short_description: Canonical SHA-256 fingerprint of everything that defines a release; freeze it and check it later
version_added: "0.1.0"
description:
  - Computes one SHA-256 fingerprint over O(data) (version, flags, thresholds, retention, ...) and O(files)
    (chart, values, configuration), plus a digest per item, so the same inputs give the same fingerprint byte for
    byte across runs, machines and checkouts, and any change names the item that changed.
  - Each top-level key of O(data) is one item C(data.<key>), hashed as canonical JSON (sorted keys, no
    whitespace, UTF-8). Each file is one item C(file:<name>); a directory stands for every file under it.
  - "The tag + freeze discipline: at staging write the fingerprint with O(dest); before each later phase
    compute it again with O(expected_file) (or O(expected)): a configuration changed without a new staging run
    fails the task and names the changed items."
author:
  - stagegate.rollout contributors (@stagegate)
options:
  data:
    description: Data to fingerprint (a mapping gives one item per top-level key). JSON data only (no NaN).
    type: raw
  files:
    description:
      - Files or directories to fingerprint. Names are relative to O(base_dir) when it is given, else the paths as
        given (relative paths keep the fingerprint equal across checkouts).
    type: list
    elements: path
    default: []
  base_dir:
    description: Directory that relative O(files) are resolved against and file item names are relative to.
    type: path
  expected:
    description: A fingerprint the computed one must equal; the task fails when it differs.
    type: str
  expected_file:
    description:
      - A freeze file written earlier with O(dest); the task fails when the fingerprint differs, naming the items
        added, removed or changed. A missing file fails too (no staging run froze this release).
    type: path
  dest:
    description:
      - Write the fingerprint and the item digests here (JSON, atomic). Written only when it changes. Not written in
        check mode.
    type: path
extends_documentation_fragment:
  - ansible.builtin.files
  - stagegate.rollout.action_group.evidence
notes:
  - Supports check mode.
seealso:
  - module: stagegate.rollout.rollout_ledger
  - module: stagegate.rollout.determinism_check
attributes:
  check_mode:
    description: Computes and compares; O(dest) is not written.
    support: full
  diff_mode:
    description: Shows the freeze file before and after.
    support: full
"""

EXAMPLES = r"""
# The release definition is written once (module_defaults): frozen at staging, checked before each later phase.
- name: Fingerprint the release definition
  module_defaults:
    stagegate.rollout.config_fingerprint:
      data:
        version: "{{ release_version }}"
        flags: "{{ phase_flags }}"
        thresholds: "{{ gate_thresholds }}"
        retention: "{{ jetstream_retention }}"
      files:
        - charts/codex
      base_dir: "{{ playbook_dir }}/.."
  block:
    - name: Freeze the release definition at staging
      stagegate.rollout.config_fingerprint:
        dest: /var/lib/stagegate/{{ release_version }}.fingerprint.json
      when: rollout_phase == "staging"

    - name: Refuse a later phase when the definition changed since staging
      stagegate.rollout.config_fingerprint:
        expected_file: /var/lib/stagegate/{{ release_version }}.fingerprint.json
      when: rollout_phase != "staging"
"""

RETURN = r"""
fingerprint:
  description: SHA-256 (hex) of the canonical JSON of all item digests.
  returned: always
  type: str
  sample: 1f3e9a0c5b...
items:
  description: Item name -> SHA-256 of that item.
  returned: always
  type: dict
  sample: {"data.flags": "ab12...", "data.version": "cd34...", "file:charts/codex/values.yaml": "ef56..."}
expected:
  description: The fingerprint compared against (from O(expected) or O(expected_file)), or null.
  returned: always
  type: str
matches:
  description: Whether the fingerprint equals the expected one (null when nothing was expected).
  returned: always
  type: bool
differences:
  description: Items added, removed or changed against O(expected_file).
  returned: always
  type: list
  elements: dict
  sample: [{"item": "data.flags", "change": "changed"}]
"""

import json

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.stagegate.rollout.plugins.module_utils.atomic_file import AtomicWriteError, atomic_write
from ansible_collections.stagegate.rollout.plugins.module_utils.fingerprint import (
    FingerprintError, compare, fingerprint)
from ansible_collections.stagegate.rollout.plugins.module_utils.feature_flags import read_text


def main():
    module = AnsibleModule(
        argument_spec=dict(
            data=dict(type="raw"),
            files=dict(type="list", elements="path", default=[]),
            base_dir=dict(type="path"),
            expected=dict(type="str"),
            expected_file=dict(type="path"),
            dest=dict(type="path"),
        ),
        mutually_exclusive=[("expected", "expected_file")],
        add_file_common_args=True,
        supports_check_mode=True,
    )
    p = module.params
    try:
        result = fingerprint(data=p["data"], files=p["files"], base_dir=p["base_dir"])
    except FingerprintError as exc:
        module.fail_json(msg=to_native(exc))
    result.update(changed=False, expected=None, matches=None, differences=[])

    expected, expected_items = p["expected"], None
    if expected is not None:
        expected = expected.strip().lower()
    if p["expected_file"]:
        try:
            text = read_text(p["expected_file"])
        except (IOError, OSError) as exc:
            module.fail_json(msg="expected_file %s: cannot read: %s" % (p["expected_file"], to_native(exc)), **result)
        if text is None:
            module.fail_json(msg="expected_file %s does not exist: no frozen fingerprint for this release (run the "
                                 "staging phase first)" % p["expected_file"], **result)
        try:
            frozen = json.loads(text)
            expected = frozen["fingerprint"]
            expected_items = frozen.get("items")
        except (ValueError, KeyError, TypeError, AttributeError):
            expected = text.strip().lower()
    if expected is not None:
        result["expected"] = expected
        result["matches"] = expected == result["fingerprint"]
        if isinstance(expected_items, dict):
            result["differences"] = compare(result["items"], expected_items)
        if not result["matches"]:
            what = ", ".join("%s %s" % (d["item"], d["change"]) for d in result["differences"])
            module.fail_json(msg="fingerprint %s differs from the expected %s%s: the release definition changed "
                                 "since it was frozen; run staging again to freeze the new one"
                                 % (result["fingerprint"], expected, " (%s)" % what if what else ""), **result)

    if p["dest"]:
        content = json.dumps({"fingerprint": result["fingerprint"], "items": result["items"], "version": 1},
                             sort_keys=True, indent=2) + "\n"
        try:
            before = read_text(p["dest"])
        except (IOError, OSError) as exc:
            module.fail_json(msg="dest %s: cannot read: %s" % (p["dest"], to_native(exc)), **result)
        changed = before != content
        if changed and not module.check_mode:
            try:
                atomic_write(p["dest"], content, module=module)
            except AtomicWriteError as exc:
                module.fail_json(msg=to_native(exc).replace("path ", "dest ", 1), **result)
            except (IOError, OSError) as exc:
                module.fail_json(msg="dest %s: cannot write: %s" % (p["dest"], to_native(exc)), **result)
        if not module.check_mode or before is not None:
            changed = module.set_fs_attributes_if_different(module.load_file_common_arguments(p, path=p["dest"]),
                                                            changed)
        result["changed"] = changed
        result["dest"] = p["dest"]
        if module._diff:
            result["diff"] = dict(before=before or "", after=content, before_header=p["dest"], after_header=p["dest"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
