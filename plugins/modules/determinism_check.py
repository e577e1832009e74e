#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: determinism_check
short_description: Prove that a build or analysis step is deterministic (same input, same output hash)
version_added: "0.1.0"
description:
  - Runs O(command) O(runs) times, serially, in parallel, or both, and compares the SHA-256 of what each run
    produced (its standard output, and the O(outputs) files); fails when any two runs differ.
  - Or compares files produced twice (or more) by other means, given as groups in O(files).
  - The digests of every run are returned, so they can go into the ledger.
author:
  - stagegate.rollout contributors (@stagegate)
extends_documentation_fragment:
  - stagegate.rollout.action_group.evidence
options:
  command:
    description:
      - The command as an argument list (no shell). The placeholder C({run}) in any argument is replaced with the
        run number (1, 2, ...), so parallel runs can write to distinct files.
    type: list
    elements: str
  runs:
    description: How many times to run O(command) (per mode; at least 2).
    type: int
    default: 2
  mode:
    description: V(serial) runs one after the other, V(parallel) all at once, V(both) does a serial then a parallel round.
    type: str
    choices: [serial, parallel, both]
    default: serial
  outputs:
    description:
      - Files each run produces, hashed after the run (C({run}) is replaced as in O(command)). Relative to O(chdir).
    type: list
    elements: str
    default: []
  include_stdout:
    description: Hash the standard output of each run.
    type: bool
    default: true
  include_stderr:
    description: Also hash the standard error of each run.
    type: bool
    default: false
  chdir:
    description: Working directory of the command.
    type: path
  environment:
    description: Extra environment variables for the command.
    type: dict
    default: {}
  timeout:
    description: Seconds each run may take before it is killed and the task fails.
    type: float
    default: 600
  files:
    description:
      - Groups of files that must be identical, for example C([[out-1/report.json, out-2/report.json]]). Each group
        has at least two files.
    type: list
    elements: list
    default: []
  run_in_check_mode:
    description: Run O(command) in check mode too (it must have no side effects). O(files) are always compared.
    type: bool
    default: false
notes:
  - Supports check mode (the command is skipped unless O(run_in_check_mode), files are compared).
  - Never reports a change.
seealso:
  - module: stagegate.rollout.config_fingerprint
attributes:
  check_mode:
    description: Compares O(files); runs O(command) only with O(run_in_check_mode).
    support: full
  diff_mode:
    description: Nothing to diff.
    support: none
"""

EXAMPLES = r"""
- name: The analysis gives the same bytes twice in a row and four times in parallel
  stagegate.rollout.determinism_check:
    command: [python3, tools/analyse.py, --input, fixtures/repo, --out, "/tmp/analysis-{run}.json"]
    outputs: ["/tmp/analysis-{run}.json"]
    mode: both
    runs: 4
  register: det

- name: Two builds of the same commit produced the same artefacts
  stagegate.rollout.determinism_check:
    files:
      - [build-a/app.tar, build-b/app.tar]
      - [build-a/sbom.json, build-b/sbom.json]
"""

RETURN = r"""
identical:
  description: Whether all runs (and all file groups) produced identical digests.
  returned: always
  type: bool
digests:
  description: One combined SHA-256 per run, in the order of RV(runs_detail).
  returned: always
  type: list
  elements: str
runs_detail:
  description: Per run, its mode, number, return code, duration and per-item digests (C(stdout), C(stderr), outputs).
  returned: always
  type: list
  elements: dict
file_groups:
  description: Per O(files) group, the digest of each file and whether they are identical.
  returned: always
  type: list
  elements: dict
differing:
  description: Names of the items (C(stdout), an output file, a file group) whose digests differ.
  returned: always
  type: list
  elements: str
skipped:
  description: Whether the command was skipped (check mode).
  returned: always
  type: bool
"""

import hashlib
import os
import threading
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.stagegate.rollout.plugins.module_utils.canonical_json import canonical_json
from ansible_collections.stagegate.rollout.plugins.module_utils.fingerprint import digest_file


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def substitute(values, run):
    return [v.replace("{run}", str(run)) for v in values]


def run_once(module, number, mode):
    p = module.params
    argv = substitute(p["command"], number)
    started = time.time()
    timers, fired = [], []

    def expire(proc):
        fired.append(True)
        proc.kill()

    def arm_timeout(proc):
        timer = threading.Timer(p["timeout"], expire, args=(proc,))
        timer.daemon = True
        timer.start()
        timers.append(timer)

    try:
        rc, out, err = module.run_command(argv, cwd=p["chdir"], environ_update=p["environment"], encoding=None,
                                          expand_user_and_vars=False, handle_exceptions=False,
                                          before_communicate_callback=arm_timeout)
    except (OSError, ValueError) as exc:
        return dict(mode=mode, run=number, error="run %d (%s): cannot start %s: %s"
                    % (number, mode, argv[0], to_native(exc)))
    finally:
        for timer in timers:
            timer.cancel()
    if fired:
        return dict(mode=mode, run=number, error="run %d (%s) timed out after %ss" % (number, mode, p["timeout"]))
    detail = dict(mode=mode, run=number, rc=rc, duration=round(time.time() - started, 3), items={})
    if rc != 0:
        detail["error"] = "run %d (%s) exited with %d: %s" % (
            number, mode, rc, to_native(err[-2000:], errors="surrogate_or_replace"))
        return detail
    if p["include_stdout"]:
        detail["items"]["stdout"] = sha256(out)
    if p["include_stderr"]:
        detail["items"]["stderr"] = sha256(err)
    for template, path in zip(p["outputs"], substitute(p["outputs"], number)):
        full = path if os.path.isabs(path) or not p["chdir"] else os.path.join(p["chdir"], path)
        try:
            detail["items"]["output:%s" % template] = digest_file(full)
        except (IOError, OSError) as exc:
            detail["error"] = "run %d (%s): output %s: %s" % (number, mode, path, to_native(exc))
    return detail


def run_round(module, mode, first):
    runs = module.params["runs"]
    numbers = list(range(first, first + runs))
    if mode == "serial":
        return [run_once(module, n, mode) for n in numbers]
    results = [None] * runs

    def worker(i, n):
        results[i] = run_once(module, n, mode)

    threads = [threading.Thread(target=worker, args=(i, n)) for i, n in enumerate(numbers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def main():
    module = AnsibleModule(
        argument_spec=dict(
            command=dict(type="list", elements="str"),
            runs=dict(type="int", default=2),
            mode=dict(type="str", default="serial", choices=["serial", "parallel", "both"]),
            outputs=dict(type="list", elements="str", default=[]),
            include_stdout=dict(type="bool", default=True),
            include_stderr=dict(type="bool", default=False),
            chdir=dict(type="path"),
            environment=dict(type="dict", default={}),
            timeout=dict(type="float", default=600),
            files=dict(type="list", elements="list", default=[]),
            run_in_check_mode=dict(type="bool", default=False),
        ),
        required_one_of=[("command", "files")],
        supports_check_mode=True,
    )
    p = module.params
    if p["command"] is not None and not p["command"]:
        module.fail_json(msg="command must be a non-empty argument list")
    if p["runs"] < 2:
        module.fail_json(msg="runs must be at least 2 to compare anything, got %d" % p["runs"])
    if p["timeout"] <= 0:
        module.fail_json(msg="timeout must be more than 0 seconds, got %s" % p["timeout"])
    if p["chdir"] and not os.path.isdir(p["chdir"]):
        module.fail_json(msg="chdir %s is not a directory" % p["chdir"])
    if p["command"] and not (p["include_stdout"] or p["include_stderr"] or p["outputs"]):
        module.fail_json(msg="nothing to compare: set include_stdout, include_stderr or outputs")
    groups = []
    for i, group in enumerate(p["files"]):
        if len(group) < 2 or not all(isinstance(f, str) and f for f in group):
            module.fail_json(msg="files[%d] must list at least two file paths, got %r" % (i, group))
        groups.append(list(group))

    result = dict(changed=False, identical=True, digests=[], runs_detail=[], file_groups=[], differing=[],
                  skipped=False)
    differing = set()

    for i, group in enumerate(groups):
        digests = {}
        for path in group:
            try:
                digests[path] = digest_file(path)
            except (IOError, OSError) as exc:
                module.fail_json(msg="files[%d]: cannot read %s: %s" % (i, path, to_native(exc)), **result)
        same = len(set(digests.values())) == 1
        result["file_groups"].append(dict(files=group, digests=digests, identical=same))
        if not same:
            differing.add("files[%d]" % i)

    if p["command"]:
        if module.check_mode and not p["run_in_check_mode"]:
            result["skipped"] = True
        else:
            p["environment"] = dict((str(k), str(v)) for k, v in p["environment"].items())
            modes = ["serial", "parallel"] if p["mode"] == "both" else [p["mode"]]
            details = []
            for m in modes:
                details.extend(run_round(module, m, len(details) + 1))
            result["runs_detail"] = details
            errors = [d["error"] for d in details if d.get("error")]
            if errors:
                module.fail_json(msg="determinism check could not complete: %s" % "; ".join(errors), **result)
            result["digests"] = [sha256(canonical_json(d["items"])) for d in details]
            for name in details[0]["items"]:
                if len(set(d["items"].get(name) for d in details)) > 1:
                    differing.add(name)

    result["differing"] = sorted(differing)
    result["identical"] = not differing
    if differing:
        module.fail_json(msg="not deterministic: %s differ between runs" % ", ".join(result["differing"]), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
