#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: rollout_ledger
short_description: Append-only, hash-chained, optionally HMAC-keyed JSON Lines ledger of rollout decisions
version_added: "0.1.0"
description:
  - Keeps every decision of a rollout (phase start, gate verdicts, promotions, rollbacks, kill switches) as one JSON
    line per entry with the fields C(seq), C(ts), C(release), C(phase), C(step), C(event), C(decision), C(reason),
    C(evidence), C(prev_hash) and C(hash).
  - C(hash) is the SHA-256 of the canonical JSON (sorted keys, no whitespace, UTF-8) of the entry without C(hash);
    C(prev_hash) is the hash of the entry before it (64 zeros for the first). Editing, removing or reordering any
    entry breaks the chain from that entry on, and O(action=verify) names the first broken seq and line.
  - A hash chain alone does not stop someone who can write the file from appending (or rewriting everything) with
    recomputed hashes. With O(key), every entry also carries C(mac), the HMAC-SHA256 with the key of the canonical
    JSON of the entry without C(hash) and C(mac) (so C(seq) and C(prev_hash) are authenticated too), and every
    action checks every entry's mac; an entry without a valid mac makes the ledger invalid, naming its line.
  - The last line must be complete. A last line without its newline, or that is not complete JSON (a write
    interrupted by a crash, or a cut file), is a torn tail and makes RV(valid=false), with RV(problem) C(torn tail at line N).
  - O(action=append) opens the file without following a symlink (a symlink at O(path) is refused), in append mode,
    creates it with mode C(0600), takes an exclusive C(fcntl) lock and verifies the whole chain before writing
    anything; a refused append leaves every byte of the file as it was. The line is written with one C(write) and
    C(fsync)ed (and the directory when the file was created) before the lock is released, so concurrent runs never
    fork or interleave the chain.
  - Values under evidence keys matching C(password), C(token), C(secret), C(webhook), C(creds) or C(authorization)
    (case-insensitive, at any depth) are replaced with C(********) before they are written or returned.
author:
  - stagegate.rollout contributors (@stagegate)
extends_documentation_fragment:
  - stagegate.rollout.action_group.evidence
options:
  path:
    description: The ledger file (JSON Lines). Its directory must exist; the file is created by the first append.
    type: path
    required: true
  action:
    description:
      - V(append) adds one entry; V(verify) recomputes every link; V(read) returns the entries (V(show) is the same).
    type: str
    choices: [append, verify, read, show]
    default: append
  key:
    description:
      - Secret for the HMAC-SHA256 of every entry (keyed ledger). Falls back to the environment variable
        E(STAGEGATE_LEDGER_KEY). Never written to the ledger nor returned.
      - With a key, O(action=append) writes C(mac) and refuses a ledger whose entries have no mac (unless
        O(adopt_unkeyed)); every action reports an entry without a valid mac as invalid.
      - Without a key, entries that carry a mac are only hash-checked (RV(authenticated=false)), and appending to
        such a ledger is refused.
    type: str
  adopt_unkeyed:
    description:
      - With O(action=append) and O(key), continue a ledger whose entries have no mac. The first keyed entry records
        C(adopted) (the number of unkeyed entries and their head hash). Without it such an append is refused; a new
        keyed ledger at another path is the other way.
    type: bool
    default: false
  repair_torn_tail:
    description:
      - With O(action=append), when the ledger ends with a torn tail and the rest of the chain verifies, copy the torn
        bytes to C(<path>.torn-<timestamp>) (mode C(0600)), cut them off and append. Without it (or when the rest does
        not verify) the append is refused and nothing is changed.
    type: bool
    default: false
  release:
    description: Release (version) the entry is about. Required with O(action=append).
    type: str
  phase:
    description: Phase (V(staging), V(canary), V(production), V(advanced), or V(rollback), ...). Required with O(action=append).
    type: str
  step:
    description: Step inside the phase (for example the canary step number or name); an integer is stored as a string.
    type: raw
  event:
    description:
      - What happened (for example V(phase_start), V(gate), V(judge), V(promote), V(rollback), V(killswitch)).
      - Required with O(action=append).
    type: str
  decision:
    description: The decision taken (for example V(continue), V(promote), V(rollback), V(pause), V(inconclusive)).
    type: str
  reason:
    description: Why, in one sentence (put measured values in O(evidence)).
    type: str
  evidence:
    description:
      - Measured values, thresholds, verdicts, fingerprints backing the decision. Secret-looking keys are redacted,
        and so is the userinfo (C(user:password@)) of any URL in a value (or in O(reason)).
    type: dict
    default: {}
  once:
    description:
      - With O(action=append), do not append when an entry with the same release, phase, step, event, decision,
        reason and evidence already exists (the task then reports no change). Makes re-runs of a settled phase idempotent.
    type: bool
    default: false
  expected_head:
    description:
      - The head hash the chain must have (RV(head) of an earlier run, kept outside the ledger file). O(action=verify)
        fails and O(action=append) is refused when the chain's head is another one (entries removed from the end, or
        appended since); O(action=read) reports RV(valid=false).
    type: str
  fail_on_invalid:
    description: With O(action=verify), fail the task when the chain is broken (otherwise only RV(valid=false)).
    type: bool
    default: true
  release_filter:
    description: With O(action=read), only entries of this release.
    type: str
  phase_filter:
    description: With O(action=read), only entries of this phase.
    type: str
  last:
    description: With O(action=read), only the last N entries (after filtering).
    type: int
notes:
  - Supports check mode (append computes and returns the entry it would write, with its seq and hash, without writing).
  - The lock is an advisory C(flock); every writer must go through this module (or C(module_utils/ledger.py)).
  - Removing entries from the end leaves a shorter valid chain, keyed or not; keep RV(head) elsewhere and pass it as
    O(expected_head) to detect it.
seealso:
  - module: stagegate.rollout.config_fingerprint
attributes:
  check_mode:
    description: Append reports the entry it would write and writes nothing; verify and read only read.
    support: full
  diff_mode:
    description: Nothing to diff; the ledger only grows.
    support: none
"""

EXAMPLES = r"""
- name: Record the start of the canary phase
  stagegate.rollout.rollout_ledger:
    path: /var/lib/stagegate/ledger.jsonl
    release: "{{ release_version }}"
    phase: canary
    event: phase_start
    evidence:
      fingerprint: "{{ frozen.fingerprint }}"

- name: Record a failed gate with its observed values
  stagegate.rollout.rollout_ledger:
    path: /var/lib/stagegate/ledger.jsonl
    release: "{{ release_version }}"
    phase: canary
    step: "2"
    event: gate
    decision: rollback
    reason: error rate above threshold
    evidence:
      check: error_rate
      observed: 0.083
      threshold: 0.05
      window: 60s

- name: Verify the whole chain (fails when any entry was edited, removed or reordered)
  stagegate.rollout.rollout_ledger:
    path: /var/lib/stagegate/ledger.jsonl
    action: verify
  register: chain

- name: Record a promotion in a keyed ledger, only on top of the head recorded before
  stagegate.rollout.rollout_ledger:
    path: /var/lib/stagegate/ledger.jsonl
    key: "{{ vault_ledger_key }}"
    expected_head: "{{ chain.head }}"
    release: "{{ release_version }}"
    phase: canary
    event: promote
    decision: promote

- name: Show the last 5 entries of this release
  stagegate.rollout.rollout_ledger:
    path: /var/lib/stagegate/ledger.jsonl
    action: read
    release_filter: "{{ release_version }}"
    last: 5
"""

RETURN = r"""
entry:
  description: With O(action=append), the entry written (or that would be written in check mode, or the identical earlier entry with O(once)).
  returned: when action is append
  type: dict
  sample: {"seq": 3, "ts": "2025-01-01T00:00:00.000000Z", "release": "2.1.0", "phase": "canary", "step": "1",
           "event": "gate", "decision": "continue", "reason": null, "evidence": {"error_rate": 0.01},
           "prev_hash": "9f...", "hash": "4a..."}
seq:
  description: Seq of RV(entry).
  returned: when action is append
  type: int
hash:
  description: Hash of RV(entry).
  returned: when action is append
  type: str
redacted:
  description: Dotted paths of the evidence values that were redacted (and C(reason) when a URL's userinfo was taken out of it).
  returned: when action is append
  type: list
  elements: str
  sample: ["evidence.notify.webhook_url"]
torn_tail_repaired:
  description: Bytes of a torn last line moved aside and cut off before appending (only with O(repair_torn_tail); 0 normally).
  returned: when action is append
  type: int
torn_tail_file:
  description: Where the torn bytes were copied (C(<path>.torn-<timestamp>)) when RV(torn_tail_repaired) is not 0, else null.
  returned: when action is append
  type: str
head:
  description: Hash of the last (verified) entry, after the append with O(action=append); 64 zeros for an empty ledger.
  returned: always
  type: str
count:
  description: Number of (verified) entries, after the append with O(action=append).
  returned: always
  type: int
authenticated:
  description: Whether a key was given and every entry's mac was checked with it (false without a key).
  returned: always
  type: bool
adopted:
  description: Number of unkeyed entries adopted by the first keyed entry (0 when none).
  returned: always
  type: int
valid:
  description: Whether every link of the chain is intact.
  returned: when action is verify or read
  type: bool
entries:
  description: With O(action=verify), the number of valid entries checked; with O(action=read), the entries.
  returned: when action is verify or read
  type: raw
broken_seq:
  description: The seq at which the chain first breaks (the edited entry, or the one after a removed entry), or null.
  returned: when action is verify or read
  type: int
broken_line:
  description: Line number (1-based) of the first broken entry, or null.
  returned: when action is verify or read
  type: int
problem:
  description: What is wrong at RV(broken_seq) (for example C(torn tail at line N), or a line without a valid mac), or null.
  returned: when action is verify or read
  type: str
head_seq:
  description: Seq of the last valid entry (0 for an empty ledger).
  returned: when action is verify or read
  type: int
head_hash:
  description: Hash of the last valid entry (64 zeros for an empty ledger); keep it to detect later truncation with O(expected_head).
  returned: when action is verify or read
  type: str
torn_tail:
  description: Whether the file ends with a torn tail (a line without its newline or not complete JSON); the ledger is then invalid.
  returned: when action is verify or read
  type: bool
torn_tail_bytes:
  description: Size of the torn tail in bytes (0 without one).
  returned: when action is verify or read
  type: int
torn_tail_line:
  description: Line number of the torn tail, or null.
  returned: when action is verify or read
  type: int
keyed_entries:
  description: Number of verified entries that carry a mac.
  returned: when action is verify or read
  type: int
unfinished:
  description:
    - With O(action=read), the attempts that started (C(phase_start)) and have no outcome (C(promote), C(rollback),
      C(rollback_incomplete), C(aborted), C(hold) or C(roll_forward)) yet, whatever the filters, each C(release), C(phase), C(seq), C(ts) of
      its start. An attempt interrupted (the controller killed) stays here until a later run records C(aborted).
  returned: when action is read
  type: list
  elements: dict
incomplete:
  description: With O(action=read), the release and phase whose last outcome is C(rollback_incomplete) (something
    is left to undo), each C(release), C(phase), C(seq), C(ts) and what is C(left).
  returned: when action is read
  type: list
  elements: dict
held:
  description: With O(action=read), the release and phase whose last outcome is C(hold) (a failure stopped it and
    nothing undid it; a person decides), each C(release), C(phase), C(seq), C(ts) and C(reason).
  returned: when action is read
  type: list
  elements: dict
head_found:
  description: With O(expected_head), whether that hash is anywhere in the chain (false when entries were removed from its end).
  returned: when action is verify or read and expected_head is given
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.stagegate.rollout.plugins.module_utils.ledger import (
    ARGUMENT_SPEC, REQUIRED_IF, LedgerRunError, run_ledger)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, required_if=REQUIRED_IF, supports_check_mode=True)
    try:
        result = run_ledger(module.params, check_mode=module.check_mode, secrets=module.no_log_values,
                            warn=module.warn)
    except LedgerRunError as exc:
        module.fail_json(msg=to_native(exc), **exc.result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
