#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: feature_flags
short_description: Validate feature flags against a declared schema and render them to a service env file or Helm values
version_added: "0.1.0"
description:
  - Validates O(flags) against O(schema) and renders the resolved flags (defaults filled in) to O(path).
  - "The schema declares, per flag: C(type) (V(bool), V(int), V(str), V(enum), V(list)), C(default), C(choices)
    (enum), C(min)/C(max) (int), C(pattern) (str, list items), C(min_phase) (the first phase in which the flag may
    be on), C(requires) (flags that must be on when this one is) and C(description)."
  - Unknown flag names and type mismatches (all of them together), then flags on before their C(min_phase) (unless
    O(force)) and missing requirements (all of them together) are refused, each naming its flag, before anything is
    written; RV(problems) lists them.
  - "A flag is on when it is a true bool, a non-empty list, or an int/str/enum value different from its default."
  - "O(format=env): C(KEY=value) lines sorted by key after a header comment; booleans V(true)/V(false), lists
    comma-joined, values unquoted (for systemd C(EnvironmentFile), C(docker --env-file), Compose C(env_file))."
  - "O(format=helm): a Helm values file with the typed flags under O(helm_key)."
  - The file is written atomically (temporary file in the same directory, C(fsync), rename) and only when its
    content differs, so a re-run changes nothing.
  - Without O(path) the module only validates and returns the resolved flags (a preflight check).
author:
  - stagegate.rollout contributors (@stagegate)
options:
  schema:
    description: Flag name (the environment variable name) -> declaration, see the description.
    type: dict
    required: true
  flags:
    description: Flag values for this phase. Flags not given take their default.
    type: dict
    default: {}
  phase:
    description:
      - The phase these flags are for, checked against each flag's C(min_phase). Required when a flag with a
        C(min_phase) is on.
    type: str
  phases:
    description: Phase order used by C(min_phase).
    type: list
    elements: str
    default: [staging, canary, production, advanced]
  force:
    description: Allow flags on before their C(min_phase) (reported in RV(forced) and as a warning).
    type: bool
    default: false
  path:
    description: File to render. Its directory must exist. Omit to validate only.
    type: path
  update:
    description:
      - Change the flags of the existing env file O(path) instead of writing O(flags) alone - the flags it holds are
        read back, O(flags) set over them and the names in O(unset) taken out (a taken-out flag then gets its
        default), and the result is validated and written like O(flags). One module run for what a running
        program's flags change needs (read, change, validate, write).
      - Needs O(path) and O(format=env); a missing O(path) or a line in it that is not C(KEY=value) is refused.
    type: bool
    default: false
  unset:
    description: With O(update=true), the flags taken out of the file (not together with the same name in O(flags)).
    type: list
    elements: str
    default: []
  format:
    description: V(env) for C(KEY=value) lines, V(helm) for a Helm values file.
    type: str
    choices: [env, helm]
    default: env
  helm_key:
    description: With O(format=helm), the top-level key holding the flags.
    type: str
    default: flags
  header:
    description: Extra comment lines written after the standard header (no timestamps, to stay idempotent).
    type: str
extends_documentation_fragment:
  - ansible.builtin.files
  - stagegate.rollout.action_group.evidence
notes:
  - Supports check mode and diff mode.
  - A new file gets mode C(0644) unless O(mode) is given; an existing file keeps its mode unless O(mode) is given.
seealso:
  - module: stagegate.rollout.config_fingerprint
attributes:
  check_mode:
    description: Validates, renders and reports whether the file would change, without writing.
    support: full
  diff_mode:
    description: Shows the file before and after.
    support: full
"""

EXAMPLES = r"""
- name: Render the canary flags for the service
  stagegate.rollout.feature_flags:
    schema:
      CODEX_PUBLISH_ENABLED: {type: bool, default: false}
      CODEX_PUBLISH_PORTAL: {type: enum, choices: [build-only, external], default: build-only, min_phase: canary}
      CODEX_REPO_INCLUDE_LIST: {type: list, default: []}
      CODEX_GRAPH_API_ENABLED: {type: bool, default: false, min_phase: advanced, requires: [CODEX_PUBLISH_ENABLED]}
    flags:
      CODEX_PUBLISH_ENABLED: true
      CODEX_PUBLISH_PORTAL: external
      CODEX_REPO_INCLUDE_LIST: "{{ all_repos | stagegate.rollout.cohort(percent=10, seed='v2') }}"
    phase: canary
    path: /etc/codex/rollout.env
    mode: "0640"
  notify: Restart codex

- name: Preflight only (fails before any change on an unknown flag or a type mismatch)
  stagegate.rollout.feature_flags:
    schema: "{{ flag_schema }}"
    flags: "{{ phase_flags }}"
    phase: "{{ rollout_phase }}"

- name: Pause the consumer of a running slot (its other flags kept), then tell it to re-read them
  stagegate.rollout.feature_flags:
    schema: "{{ flag_schema }}"
    flags: {CODEX_CONSUME_ENABLED: false}
    unset: [CODEX_EVENT_SPLIT_UNTIL_SEQ]
    update: true
    path: /srv/codex/stable/service.env
  register: paused

- name: Flags as Helm values
  stagegate.rollout.feature_flags:
    schema: "{{ flag_schema }}"
    flags: "{{ phase_flags }}"
    phase: production
    format: helm
    helm_key: env
    path: "{{ chart_dir }}/values-flags.yaml"
"""

RETURN = r"""
flags:
  description: The resolved flags (declared defaults plus the given values), typed.
  returned: always
  type: dict
  sample: {"CODEX_PUBLISH_ENABLED": true, "CODEX_REPO_INCLUDE_LIST": ["org/a", "org/b"]}
path:
  description: The rendered file, or null when validating only.
  returned: always
  type: str
checksum:
  description: SHA-256 of the rendered content.
  returned: always
  type: str
content:
  description: The rendered content.
  returned: always
  type: str
problems:
  description: Every problem found, each naming its flag.
  returned: failure
  type: list
  elements: str
forced:
  description: Flags that are on before their C(min_phase) because of O(force).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.stagegate.rollout.plugins.module_utils.atomic_file import AtomicWriteError, atomic_write
from ansible_collections.stagegate.rollout.plugins.module_utils.env_flags import EnvFlagsError, changed as env_changed
from ansible_collections.stagegate.rollout.plugins.module_utils.feature_flags import (
    FlagError, PHASES, checksum, read_text, render_env, render_helm, resolve)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            schema=dict(type="dict", required=True),
            flags=dict(type="dict", default={}),
            phase=dict(type="str"),
            phases=dict(type="list", elements="str", default=list(PHASES)),
            force=dict(type="bool", default=False),
            path=dict(type="path"),
            format=dict(type="str", default="env", choices=["env", "helm"]),
            helm_key=dict(type="str", default="flags", no_log=False),
            header=dict(type="str"),
            update=dict(type="bool", default=False),
            unset=dict(type="list", elements="str", default=[]),
        ),
        add_file_common_args=True,
        required_if=[("update", True, ("path",))],
        supports_check_mode=True,
    )
    p = module.params
    given = p["flags"]
    if p["unset"] and not p["update"]:
        module.fail_json(msg="unset is given without update=true (it takes flags out of an existing env file)")
    if p["update"]:
        if p["format"] != "env":
            module.fail_json(msg="update=true changes an env file: format is %r (accepted: env)" % p["format"])
        try:
            current = read_text(p["path"])
        except (IOError, OSError) as exc:
            module.fail_json(msg="path %s: cannot read: %s" % (p["path"], to_native(exc)))
        if current is None:
            module.fail_json(msg="path %s does not exist (update=true changes an existing env file; without "
                                 "update the flags are written as given)" % p["path"])
        try:
            given = env_changed(current, set_flags=p["flags"], unset=p["unset"])
        except EnvFlagsError as exc:
            module.fail_json(msg="path %s: %s" % (p["path"], to_native(exc)))
    try:
        flags, forced = resolve(p["schema"], given, phase=p["phase"], force=p["force"],
                                phases=tuple(p["phases"]))
    except FlagError as exc:
        module.fail_json(msg="feature flags refused: %s" % to_native(exc), problems=exc.problems)
    for name in forced:
        module.warn("flag %s is on before its min_phase because force is set" % name)

    if p["format"] == "helm":
        if not p["helm_key"] or not p["helm_key"].replace("_", "").replace("-", "").isalnum():
            module.fail_json(msg="helm_key must be a plain key (letters, digits, _ and -), got %r" % p["helm_key"])
        content = render_helm(flags, key=p["helm_key"], header=p["header"], phase=p["phase"])
    else:
        content = render_env(flags, header=p["header"], phase=p["phase"])
    result = dict(changed=False, flags=flags, path=p["path"], checksum=checksum(content), content=content,
                  forced=forced)
    if not p["path"]:
        module.exit_json(**result)

    try:
        before = read_text(p["path"])
    except (IOError, OSError) as exc:
        module.fail_json(msg="path %s: cannot read: %s" % (p["path"], to_native(exc)), **result)
    changed = before != content
    diff = dict(before=before or "", after=content, before_header=p["path"], after_header=p["path"])
    file_args = module.load_file_common_arguments(p)
    mode = None
    if before is None and file_args.get("mode") is None:
        mode = 0o644
    if changed and not module.check_mode:
        try:
            atomic_write(p["path"], content, mode=mode, module=module)
        except AtomicWriteError as exc:
            module.fail_json(msg=to_native(exc), **result)
        except (IOError, OSError) as exc:
            module.fail_json(msg="path %s: cannot write: %s" % (p["path"], to_native(exc)), **result)
    if not module.check_mode or before is not None:
        attr_diff = {}
        changed = module.set_fs_attributes_if_different(file_args, changed, diff=attr_diff)
    result["changed"] = changed
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
