# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hash-chained ledger: chain, tampering, concurrency, torn writes, redaction, bad input."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import multiprocessing
import os

import pytest

from ansible_collections.stagegate.rollout.plugins.module_utils.ledger import (
    GENESIS_HASH, REDACTED, Ledger, LedgerError, build_record, canonical_json, entry_hash, read_entries,
    verify_bytes)


def add(ledger, n=1, release="2.1.0", phase="canary", event="gate", **kw):
    out = []
    for i in range(n):
        record, dummy, dummy2 = build_record(release, phase, event, step=str(i), decision="continue",
                                             evidence=dict(kw.get("evidence", {}), i=i))
        out.append(ledger.append(record)[0])
    return out


@pytest.fixture
def ledger(tmp_path):
    return Ledger(str(tmp_path / "ledger.jsonl"))


def lines_of(ledger):
    with open(ledger.path, "rb") as fh:
        return fh.read().split(b"\n")[:-1]


def write_lines(ledger, lines):
    with open(ledger.path, "wb") as fh:
        fh.write(b"".join(line + b"\n" for line in lines))


def test_chain_fields_and_hash_definition(ledger):
    entries = add(ledger, 3)
    assert [e["seq"] for e in entries] == [1, 2, 3]
    assert entries[0]["prev_hash"] == GENESIS_HASH
    assert entries[1]["prev_hash"] == entries[0]["hash"]
    assert entries[2]["prev_hash"] == entries[1]["hash"]
    for raw in lines_of(ledger):
        entry = json.loads(raw)
        assert set(entry) == {"seq", "ts", "release", "phase", "step", "event", "decision", "reason", "evidence",
                              "prev_hash", "hash"}
        # the documented definition, computed independently
        body = dict((k, v) for k, v in entry.items() if k != "hash")
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert entry["hash"] == hashlib.sha256(text.encode("utf-8")).hexdigest()
        # each line is itself canonical JSON
        assert raw == canonical_json(entry)
    state = ledger.verify()
    assert state["valid"] and state["entries"] == 3 and state["head_seq"] == 3
    assert state["head_hash"] == entries[2]["hash"]


def test_empty_and_missing_ledger_are_valid(ledger):
    state = ledger.verify()
    assert state["valid"] and state["entries"] == 0 and state["head_hash"] == GENESIS_HASH
    assert ledger.entries() == []


@pytest.mark.parametrize("victim", [1, 3, 5])
def test_edited_line_is_named_by_seq(ledger, victim):
    add(ledger, 5)
    lines = lines_of(ledger)
    entry = json.loads(lines[victim - 1])
    entry["decision"] = "promote"  # the edit
    lines[victim - 1] = canonical_json(entry)
    write_lines(ledger, lines)
    state = ledger.verify()
    assert not state["valid"]
    assert state["broken_seq"] == victim and state["broken_line"] == victim
    assert "edited" in state["problem"]


def _edit_and_recompute_hash(lines):
    entry = json.loads(lines[2])
    entry["evidence"]["observed"] = 0.001
    entry["hash"] = entry_hash(entry)  # a careful forger
    lines[2] = canonical_json(entry)


def _remove_line(lines):
    del lines[2]


def _swap_lines(lines):
    lines[1], lines[2] = lines[2], lines[1]


@pytest.mark.parametrize("tamper, broken_seq, problem", [
    (_edit_and_recompute_hash, 4, "prev_hash"),  # the edited entry is consistent; the next link breaks
    (_remove_line, 3, "seq is 4"),
    (_swap_lines, 2, ""),
], ids=["edit_with_recomputed_hash_breaks_the_next_link", "removed_line", "reordered_lines"])
def test_tampering_is_detected_at_the_first_broken_link(ledger, tamper, broken_seq, problem):
    add(ledger, 5)
    lines = lines_of(ledger)
    tamper(lines)
    write_lines(ledger, lines)
    state = ledger.verify()
    assert not state["valid"] and state["broken_seq"] == broken_seq and problem in state["problem"]


def test_garbage_line_detected(ledger):
    add(ledger, 3)
    lines = lines_of(ledger)
    lines.insert(1, b"not json")
    write_lines(ledger, lines)
    state = ledger.verify()
    assert not state["valid"] and state["broken_seq"] == 2 and state["broken_line"] == 2


def test_truncation_detected_with_expected_head(ledger):
    entries = add(ledger, 4)
    head = entries[-1]["hash"]
    assert ledger.verify(expected_head=head)["valid"]
    write_lines(ledger, lines_of(ledger)[:2])
    assert ledger.verify()["valid"]  # a shorter chain is a chain ...
    state = ledger.verify(expected_head=head)
    assert not state["valid"] and "removed from its end" in state["problem"]  # ... but not the anchored one


def test_append_refuses_a_broken_chain(ledger):
    add(ledger, 3)
    lines = lines_of(ledger)
    del lines[0]
    write_lines(ledger, lines)
    record = build_record("2.1.0", "canary", "gate")[0]
    with pytest.raises(LedgerError, match="broken chain at seq 1"):
        ledger.append(record)


def _worker(path, worker, count):
    ledger = Ledger(path)
    for i in range(count):
        record = build_record("2.1.0", "canary", "gate", step="w%d-%d" % (worker, i),
                              evidence={"worker": worker, "i": i, "pad": "x" * (i * 37 % 500)})[0]
        ledger.append(record)


def test_concurrent_appends_from_four_processes_keep_one_chain(ledger):
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_worker, args=(ledger.path, w, 60)) for w in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    state = ledger.verify()
    assert state["valid"], state["problem"]
    assert state["entries"] == 240
    entries = ledger.entries()
    assert [e["seq"] for e in entries] == list(range(1, 241))
    steps = sorted(e["step"] for e in entries)
    assert steps == sorted("w%d-%d" % (w, i) for w in range(4) for i in range(60))


def test_torn_tail_is_invalid_and_repaired_only_on_request(ledger):
    add(ledger, 2)
    torn = b'{"decision":null,"event":"ga'
    with open(ledger.path, "ab") as fh:
        fh.write(torn)  # crash in the middle of a write
    state = ledger.verify()
    assert not state["valid"] and state["torn_tail"] and state["torn_tail_bytes"] == len(torn)
    assert state["problem"].startswith("torn tail at line 3") and state["broken_line"] == 3
    assert state["entries"] == 2
    before = open(ledger.path, "rb").read()
    record = build_record("2.1.0", "canary", "promote")[0]
    with pytest.raises(LedgerError, match="torn tail at line 3"):
        ledger.append(record)
    assert open(ledger.path, "rb").read() == before  # a refused append cuts nothing
    entry, changed, info = ledger.append(record, repair_torn_tail=True)
    assert changed and entry["seq"] == 3 and info["torn_tail_repaired"] == len(torn)
    assert open(info["torn_tail_file"], "rb").read() == torn  # the torn bytes were kept aside
    state = ledger.verify()
    assert state["valid"] and not state["torn_tail"] and state["entries"] == 3


def test_complete_last_entry_without_newline_is_a_torn_tail(ledger):
    add(ledger, 2)
    with open(ledger.path, "rb") as fh:
        data = fh.read()
    with open(ledger.path, "wb") as fh:
        fh.write(data[:-1])
    state = ledger.verify()
    assert not state["valid"] and state["entries"] == 1 and state["torn_tail"]
    assert "torn tail at line 2" in state["problem"]
    with pytest.raises(LedgerError, match="torn tail at line 2"):
        ledger.append(build_record("2.1.0", "canary", "promote")[0])
    assert open(ledger.path, "rb").read() == data[:-1]
    entry, dummy, info = ledger.append(build_record("2.1.0", "canary", "promote")[0], repair_torn_tail=True)
    assert entry["seq"] == 2 and ledger.verify()["entries"] == 2
    assert open(info["torn_tail_file"], "rb").read() + b"\n" == data.split(b"\n", 1)[1]


def test_redaction_any_depth_case_insensitive(ledger):
    evidence = {
        "db_password": "hunter2-secret-value",
        "notify": {"slackWebhookUrl": "https://hooks.example.com/T000/B000/XXXXSECRET", "channel": "#rollouts"},
        "calls": [{"Authorization": "Bearer abc.def.ghi"}, {"status": 200}],
        "nats": {"creds": {"jwt": "eyJ0eXAi", "seed": "SUAM"}},
        "api_token": 12345678,
        "client_secret": None,
        "observed": 0.02,
    }
    record, found, secrets = build_record("2.1.0", "canary", "notify", evidence=evidence)
    assert sorted(found) == sorted(["evidence.db_password", "evidence.notify.slackWebhookUrl",
                                    "evidence.calls[0].Authorization", "evidence.nats.creds",
                                    "evidence.api_token", "evidence.client_secret"])
    assert record["evidence"]["notify"]["channel"] == "#rollouts"
    assert record["evidence"]["calls"][1] == {"status": 200}
    assert record["evidence"]["observed"] == 0.02
    assert record["evidence"]["nats"]["creds"] == REDACTED
    assert "hunter2-secret-value" in secrets and "eyJ0eXAi" in secrets and "12345678" in secrets
    ledger.append(record)
    with open(ledger.path, "rb") as fh:
        data = fh.read()
    for secret in (b"hunter2", b"XXXXSECRET", b"abc.def.ghi", b"eyJ0eXAi", b"12345678"):
        assert secret not in data
    assert evidence["db_password"] == "hunter2-secret-value"  # the caller's data is not modified


def test_check_mode_computes_without_writing(ledger):
    add(ledger, 2)
    before = open(ledger.path, "rb").read()
    record = build_record("2.1.0", "canary", "promote")[0]
    entry, changed, dummy = ledger.append(record, check_mode=True)
    assert changed and entry["seq"] == 3 and entry["prev_hash"] == json.loads(before.split(b"\n")[1])["hash"]
    assert open(ledger.path, "rb").read() == before
    missing = Ledger(ledger.path + ".new")
    entry, changed, dummy = missing.append(record, check_mode=True)
    assert changed and entry["seq"] == 1 and not os.path.exists(missing.path)


def test_once_does_not_duplicate_an_identical_entry(ledger):
    record = build_record("2.1.0", "staging", "phase_start", evidence={"fp": "abc"})[0]
    first, changed, dummy = ledger.append(record, once=True)
    assert changed
    again, changed, dummy = ledger.append(record, once=True)
    assert not changed and again == first
    other = build_record("2.1.0", "staging", "phase_start", evidence={"fp": "abd"})[0]
    assert ledger.append(other, once=True)[1]
    assert ledger.verify()["entries"] == 2


def test_read_entries_strict_and_lenient():
    assert read_entries(b"") == []
    with pytest.raises(LedgerError, match="line 1 is not JSON"):
        read_entries(b"nope\n")
    assert read_entries(b"nope\n", strict=False) == []


@pytest.mark.parametrize("kwargs, message", [
    (dict(release=None), "release is required"),
    (dict(phase=None), "phase is required"),
    (dict(event=None), "event is required"),
    (dict(release=""), "release must not be empty"),
    (dict(phase="   "), "phase must not be empty"),
    (dict(event=123), "event must be a string, got int"),
    (dict(release=2.1), "release must be a string, got float"),
    (dict(decision={"a": 1}), "decision must be a string, got dict"),
    (dict(step=True), "step must be a string, got bool"),
    (dict(reason="x" * 5000), "reason is 5000 characters long"),
    (dict(evidence=["a"]), "evidence must be a mapping, got list"),
    (dict(evidence={"observed": float("nan")}), r"evidence.observed: nan is not allowed"),
    (dict(evidence={"a": {1: "x"}}), r"evidence.a: key 1 must be a string"),
    (dict(evidence={"a": [1, object()]}), r"evidence.a\[1\]: .* is not JSON data"),
    (dict(evidence={"a": {"b": float("inf")}}), r"evidence.a.b: inf is not allowed"),
])
def test_bad_input_names_the_field(kwargs, message):
    args = dict(release="2.1.0", phase="canary", event="gate")
    args.update(kwargs)
    with pytest.raises(LedgerError, match=message):
        build_record(**args)


def test_bad_paths(tmp_path):
    with pytest.raises(LedgerError, match="path is required"):
        Ledger("")
    ledger = Ledger(str(tmp_path / "missing" / "ledger.jsonl"))
    with pytest.raises(LedgerError, match="directory .* does not exist"):
        ledger.append(build_record("1", "staging", "x")[0])


def test_verify_bytes_rejects_wrong_fields():
    entry = {"seq": 1, "ts": "t", "release": "1", "phase": "p", "step": None, "event": "e", "decision": None,
             "reason": None, "evidence": {}, "prev_hash": GENESIS_HASH, "extra": 1}
    entry["hash"] = entry_hash(entry)
    state = verify_bytes(canonical_json(entry) + b"\n")
    assert not state["valid"] and "unexpected fields extra" in state["problem"]
    del entry["extra"], entry["ts"]
    entry["hash"] = entry_hash(entry)
    state = verify_bytes(canonical_json(entry) + b"\n")
    assert not state["valid"] and "lacks ts" in state["problem"]


def _e(seq, release, phase, event):
    return {"seq": seq, "ts": "2026-12-01T00:00:%02dZ" % seq, "release": release, "phase": phase, "event": event}


def test_unfinished_attempts_are_starts_without_an_outcome():
    from ansible_collections.stagegate.rollout.plugins.module_utils.ledger import unfinished_attempts
    entries = [
        _e(1, "v2", "staging", "phase_start"), _e(2, "v2", "staging", "promote"),
        _e(3, "v2", "canary", "phase_start"), _e(4, "v2", "canary", "gate"),  # killed after its first gate
        _e(5, "v3", "staging", "phase_start"), _e(6, "v3", "staging", "rollback"),
        _e(7, "v4", "canary", "phase_start"), _e(8, "v4", "canary", "rollback_incomplete"),
        _e(9, "v5", "production", "phase_start"), _e(10, "v5", "production", "phase_start"),  # a second attempt
    ]
    assert unfinished_attempts(entries) == [
        {"release": "v2", "phase": "canary", "seq": 3, "ts": "2026-12-01T00:00:03Z"},
        {"release": "v5", "phase": "production", "seq": 10, "ts": "2026-12-01T00:00:10Z"}]
    entries += [_e(11, "v2", "canary", "aborted"), _e(12, "v5", "production", "promote")]
    assert unfinished_attempts(entries) == []
    assert unfinished_attempts([]) == []


def test_incomplete_rollbacks_until_a_later_rollback_completes():
    from ansible_collections.stagegate.rollout.plugins.module_utils.ledger import incomplete_rollbacks
    left = dict(_e(4, "v3", "canary", "rollback_incomplete"), evidence={"left": ["app1: stop the canary slot"]})
    entries = [_e(1, "v3", "canary", "phase_start"), _e(2, "v3", "canary", "gate"), _e(3, "v2", "canary", "promote"),
               left]
    assert incomplete_rollbacks(entries) == [{"release": "v3", "phase": "canary", "seq": 4,
                                              "ts": "2026-12-01T00:00:04Z", "left": ["app1: stop the canary slot"]}]
    assert incomplete_rollbacks(entries + [_e(5, "v3", "canary", "rollback")]) == []


def test_a_hold_ends_the_attempt_and_stays_until_a_person_decides():
    from ansible_collections.stagegate.rollout.plugins.module_utils.ledger import held_releases, unfinished_attempts
    hold = dict(_e(3, "v3", "canary", "hold"), reason="canary judge: fail")
    entries = [_e(1, "v3", "canary", "phase_start"), _e(2, "v3", "canary", "judge"), hold]
    assert unfinished_attempts(entries) == []  # a hold is an outcome: no later run treats it as interrupted
    assert held_releases(entries) == [{"release": "v3", "phase": "canary", "seq": 3, "ts": "2026-12-01T00:00:03Z",
                                       "reason": "canary judge: fail"}]
    # a later event that is no outcome leaves it held; a rollback or a roll forward ends it
    assert len(held_releases(entries + [_e(4, "v3", "canary", "approval")])) == 1
    assert held_releases(entries + [_e(4, "v3", "canary", "rollback")]) == []
    assert held_releases(entries + [_e(4, "v3", "canary", "roll_forward")]) == []
    # a hold of another phase of the same release is its own
    assert [h["phase"] for h in held_releases(entries + [_e(4, "v2", "production", "hold")])] == ["canary", "production"]
