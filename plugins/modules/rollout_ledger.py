#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: rollout_ledger
short_description: Append-only, hash-chained JSON Lines ledger of rollout decisions (append, verify, read)
version_added: "1.0.0"
description:
  - Keeps every decision of a rollout (phase start, gate verdicts, promotions, rollbacks, kill switches) as one JSON
    line per entry with the fields C(seq), C(ts), C(release), C(phase), C(step), C(event), C(decision), C(reason),
    C(evidence), C(prev_hash) and C(hash).
  - C(hash) is the SHA-256 of the canonical JSON (sorted keys, no whitespace, UTF-8) of the entry without C(hash);
    C(prev_hash) is the hash of the entry before it (64 zeros for the first). Editing, removing or reordering any
    entry breaks the chain from that entry on, and O(action=verify) names the first broken seq.
  - O(action=append) takes an exclusive C(fcntl) lock on the ledger file, writes the line with one C(write) and
    C(fsync)s it before releasing the lock, so concurrent runs never fork or interleave the chain. A crash in the
    middle of a write can only leave an unterminated last line; it is reported by O(action=verify) as
    RV(torn_tail) (the ledger stays valid) and removed by the next append.
  - Values under evidence keys matching C(password), C(token), C(secret), C(webhook), C(creds) or C(authorization)
    (case-insensitive, at any depth) are replaced with C(********) before they are written or returned.
author:
  - stagegate.rollout contributors (@stagegate)
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
      - Measured values, thresholds, verdicts, fingerprints backing the decision. Secret-looking keys are redacted.
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
      - With O(action=verify), a head hash recorded earlier (RV(head_hash)); verify fails when it is no longer in the
        ledger, which detects entries removed from the end.
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
  description: Dotted paths of the evidence values that were redacted.
  returned: when action is append
  type: list
  elements: str
  sample: ["evidence.notify.webhook_url"]
torn_tail_repaired:
  description: Bytes of a torn (unterminated, incomplete) last line removed before appending (0 normally).
  returned: when action is append
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
  description: What is wrong at RV(broken_seq), or null.
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
  description: Whether the file ends with an incomplete line left by a crash mid-write (not an error).
  returned: when action is verify or read
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.stagegate.rollout.plugins.module_utils.ledger import (
    Ledger, LedgerError, build_record, read_entries, verify_bytes)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            action=dict(type="str", default="append", choices=["append", "verify", "read", "show"]),
            release=dict(type="str"),
            phase=dict(type="str"),
            step=dict(type="raw"),
            event=dict(type="str"),
            decision=dict(type="str"),
            reason=dict(type="str"),
            evidence=dict(type="dict", default={}),
            once=dict(type="bool", default=False),
            expected_head=dict(type="str"),
            fail_on_invalid=dict(type="bool", default=True),
            release_filter=dict(type="str"),
            phase_filter=dict(type="str"),
            last=dict(type="int"),
        ),
        required_if=[("action", "append", ("release", "phase", "event"))],
        supports_check_mode=True,
    )
    p = module.params
    ledger = Ledger(p["path"])

    if p["action"] == "append":
        try:
            record, redacted, secrets = build_record(p["release"], p["phase"], p["event"], step=p["step"],
                                                     decision=p["decision"], reason=p["reason"],
                                                     evidence=p["evidence"])
        except LedgerError as exc:
            module.fail_json(msg=to_native(exc))
        # the raw values stay out of every result, including the -vvv invocation
        for secret in secrets:
            if len(secret) >= 3:
                module.no_log_values.add(secret)
        try:
            entry, changed, info = ledger.append(record, once=p["once"], check_mode=module.check_mode)
        except LedgerError as exc:
            module.fail_json(msg=to_native(exc))
        module.exit_json(changed=changed, entry=entry, seq=entry["seq"], hash=entry["hash"], redacted=redacted,
                         path=p["path"], torn_tail_repaired=info["torn_tail_repaired"])

    try:
        data = ledger.read_bytes()
    except LedgerError as exc:
        module.fail_json(msg=to_native(exc))
    state = verify_bytes(data, expected_head=p["expected_head"])

    if p["action"] == "verify":
        result = dict(changed=False, path=p["path"], **state)
        if not state["valid"] and p["fail_on_invalid"]:
            module.fail_json(msg="ledger %s is broken at seq %s: %s" % (p["path"], state["broken_seq"], state["problem"]),
                             **result)
        if state["torn_tail"]:
            module.warn("ledger %s ends with an incomplete line (%d bytes) left by an interrupted write; the next "
                        "append removes it" % (p["path"], state["torn_tail_bytes"]))
        module.exit_json(**result)

    # read / show
    entries = read_entries(data, strict=False)
    if p["release_filter"] is not None:
        entries = [e for e in entries if e.get("release") == p["release_filter"]]
    if p["phase_filter"] is not None:
        entries = [e for e in entries if e.get("phase") == p["phase_filter"]]
    if p["last"] is not None:
        if p["last"] < 0:
            module.fail_json(msg="last must be 0 or more, got %d" % p["last"])
        entries = entries[len(entries) - p["last"]:] if p["last"] else []
    state["entries"] = entries
    module.exit_json(changed=False, path=p["path"], **state)


if __name__ == "__main__":
    main()
