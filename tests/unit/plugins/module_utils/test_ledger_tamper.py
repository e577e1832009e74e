# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Keyed ledger against someone who can write the file: every tampering is detected or refused, and nothing
the module touches ever loses a byte (a refused append, a symlink, a torn tail)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import hmac
import json
import os
import stat

import pytest

from ansible_collections.stagegate.rollout.plugins.module_utils.ledger import (
    GENESIS_HASH, KEY_ENV, Ledger, LedgerError, build_record, canonical_json, entry_hash, verify_bytes)

KEY = "k3y-Ledger-S3cret-9f2e7a"
WRONG_KEY = "not-the-key-at-all"
SEEN = []  # every result and error text of this module, checked for the key at the end


@pytest.fixture(autouse=True)
def no_key_in_env(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)


def record(event="gate", decision="continue", step="1", **evidence):
    return build_record("2.1.0", "canary", event, step=step, decision=decision, evidence=evidence)[0]


def seen(value):
    SEEN.append(repr(value))
    return value


def verify(path, key=KEY, **kw):
    return seen(Ledger(path, key=key).verify(**kw))


def refused(path, match, key=KEY, rec=None, **kw):
    """The append is refused with ``match`` in the message."""
    with pytest.raises(LedgerError, match=match) as info:
        Ledger(path, key=key).append(rec or record("promote", "promote"), **kw)
    seen(str(info.value))
    return str(info.value)


def snapshot(directory):
    """Every file's bytes under ``directory`` (symlinks as their target path)."""
    out = {}
    for name in sorted(os.listdir(directory)):
        full = os.path.join(directory, name)
        if os.path.islink(full):
            out[name] = ("link", os.readlink(full))
        else:
            with open(full, "rb") as fh:
                out[name] = fh.read()
    return out


def lines_of(path):
    with open(path, "rb") as fh:
        return fh.read().split(b"\n")[:-1]


def write(path, data):
    with open(path, "wb") as fh:
        fh.write(data)


def join(lines):
    return b"".join(line + b"\n" for line in lines)


def mac_of(entry, key):
    body = dict((k, v) for k, v in entry.items() if k not in ("hash", "mac"))
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return hmac.new(key.encode("utf-8"), text, hashlib.sha256).hexdigest()


def rechain(entries, key=None):
    """What a forger does: renumber, relink and rehash every entry (with ``key``: re-MAC; without: drop the mac)."""
    out, prev = [], GENESIS_HASH
    for seq, entry in enumerate(entries, 1):
        entry = dict((k, v) for k, v in entry.items() if k not in ("hash", "mac"))
        entry["seq"], entry["prev_hash"] = seq, prev
        if key is not None:
            entry["mac"] = mac_of(entry, key)
        entry["hash"] = prev = entry_hash(entry)
        out.append(canonical_json(entry))
    return out


@pytest.fixture
def keyed(tmp_path):
    """A keyed ledger of 6 entries, its path, entries and bytes."""
    path = str(tmp_path / "ledger.jsonl")
    ledger = Ledger(path, key=KEY)
    entries = [ledger.append(record(step=str(i), observed=i / 100.0))[0] for i in range(1, 6)]
    entries.append(ledger.append(record("promote", "promote", step=None))[0])
    with open(path, "rb") as fh:
        data = fh.read()
    return path, entries, data


def assert_refused_and_kept(tmp_path, path, match, **kw):
    """An append is refused and no byte of any file in the directory changes."""
    before = snapshot(str(tmp_path))
    refused(path, match, **kw)
    assert snapshot(str(tmp_path)) == before


# --- what a keyed ledger is --------------------------------------------------------------------------------------

def test_keyed_entries_carry_a_mac_over_the_chain(keyed, tmp_path):
    path, entries, data = keyed
    for raw, entry in zip(lines_of(path), entries):
        parsed = json.loads(raw)
        assert parsed == entry and raw == canonical_json(parsed)
        assert parsed["mac"] == mac_of(parsed, KEY)  # the documented definition, independently
        body = dict((k, v) for k, v in parsed.items() if k != "hash")
        assert parsed["hash"] == hashlib.sha256(canonical_json(body)).hexdigest()  # hash covers the mac
    state = verify(path)
    assert state["valid"] and state["authenticated"] and state["count"] == 6 and state["keyed_entries"] == 6
    assert state["head"] == state["head_hash"] == entries[-1]["hash"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert KEY.encode() not in data


def test_without_key_a_keyed_ledger_is_only_hash_checked(keyed):
    path, entries, data = keyed
    state = verify(path, key=None)
    assert state["valid"] and not state["authenticated"] and state["keyed_entries"] == 6
    assert state["head"] == entries[-1]["hash"]


def test_key_from_the_environment(keyed, monkeypatch):
    path, entries, data = keyed
    monkeypatch.setenv(KEY_ENV, KEY)
    assert verify(path, key=None)["authenticated"]
    monkeypatch.setenv(KEY_ENV, WRONG_KEY)
    assert not verify(path, key=None)["valid"]
    monkeypatch.setenv(KEY_ENV, "")
    with pytest.raises(LedgerError, match="key is empty"):
        Ledger(path)


# --- tampering: detected by verify, refused by append, no byte lost ------------------------------------------------

def edit_field(lines, entries):
    entry = json.loads(lines[2])
    entry["decision"] = "promote"
    lines[2] = canonical_json(entry)
    return join(lines)


def edit_field_rehash_line(lines, entries):
    entry = json.loads(lines[2])
    entry["evidence"]["observed"] = 0.0
    entry["hash"] = entry_hash(entry)
    lines[2] = canonical_json(entry)
    return join(lines)


def delete_middle(lines, entries):
    del lines[2]
    return join(lines)


def reorder(lines, entries):
    lines[1], lines[2] = lines[2], lines[1]
    return join(lines)


def truncate_last(lines, entries):
    return join(lines)[:-25]


def forged_append_no_key(lines, entries):
    forged = {"seq": 7, "ts": "2030-01-01T00:00:00.000000Z", "release": "2.1.0", "phase": "production",
              "step": None, "event": "promote", "decision": "promote", "reason": "forged", "evidence": {},
              "prev_hash": entries[-1]["hash"]}
    forged["hash"] = entry_hash(forged)
    return join(lines + [canonical_json(forged)])


def forged_append_wrong_key(lines, entries):
    forged = {"seq": 7, "ts": "2030-01-01T00:00:00.000000Z", "release": "2.1.0", "phase": "production",
              "step": None, "event": "promote", "decision": "promote", "reason": "forged", "evidence": {},
              "prev_hash": entries[-1]["hash"]}
    forged["mac"] = mac_of(forged, WRONG_KEY)
    forged["hash"] = entry_hash(forged)
    return join(lines + [canonical_json(forged)])


def rewrite_without_key(lines, entries):
    doctored = [dict(e) for e in entries]
    doctored[3]["decision"] = "promote"
    return join(rechain(doctored))


def rewrite_with_wrong_key(lines, entries):
    doctored = [dict(e) for e in entries]
    doctored[3]["decision"] = "promote"
    return join(rechain(doctored, key=WRONG_KEY))


def rewrite_keeping_old_macs(lines, entries):
    doctored = [dict(e) for e in entries]
    del doctored[1]
    out, prev = [], GENESIS_HASH
    for seq, entry in enumerate(doctored, 1):  # renumber and relink, keep each (now stale) mac
        entry["seq"], entry["prev_hash"] = seq, prev
        entry["hash"] = prev = entry_hash(entry)
        out.append(canonical_json(entry))
    return join(out)


def mac_stripped_from_last(lines, entries):
    entry = json.loads(lines[-1])
    del entry["mac"]
    entry["hash"] = entry_hash(entry)
    return join(lines[:-1] + [canonical_json(entry)])


def duplicate_key(lines, entries):
    # hashed as "promote" (json.loads keeps the last "decision"), shown as "continue" by tools keeping the first
    entry = dict(json.loads(lines[4]), decision="promote")
    entry["hash"] = entry_hash(entry)
    lines[4] = b'{"decision":"continue",' + canonical_json(entry)[1:]
    return join(lines)


def whitespace(lines, entries):
    lines[4] = lines[4].replace(b'":', b'": ', 1)
    return join(lines)


TAMPERING = [
    (edit_field, 3, "the entry was edited"),
    (edit_field_rehash_line, 3, "mac does not match"),
    (delete_middle, 3, "seq is 4, expected 3"),
    (reorder, 2, "seq is 3, expected 2"),
    (truncate_last, 6, "torn tail at line 6"),
    (forged_append_no_key, 7, "has no mac although the entries before it have one"),
    (forged_append_wrong_key, 7, "mac does not match"),
    (rewrite_without_key, 1, "line 1 \\(seq 1\\) has no mac"),
    (rewrite_with_wrong_key, 1, "mac does not match"),
    (rewrite_keeping_old_macs, 2, "mac does not match"),
    (mac_stripped_from_last, 6, "has no mac although"),
    (duplicate_key, 5, "not in canonical JSON form"),
    (whitespace, 5, "not in canonical JSON form"),
]


@pytest.mark.parametrize("tamper, line, message", TAMPERING, ids=[t[0].__name__ for t in TAMPERING])
def test_tampering_is_detected_and_append_refused(keyed, tmp_path, tamper, line, message):
    path, entries, data = keyed
    doctored = tamper(data.split(b"\n")[:-1], entries)
    write(path, doctored)
    before = snapshot(str(tmp_path))

    state = verify(path)
    assert not state["valid"] and not state["authenticated"], state
    assert state["broken_line"] == line, state
    assert __import__("re").search(message, state["problem"]), state["problem"]
    assert ("line %d" % line) in state["problem"]

    # a read reports it too
    state = verify(path, expected_head=None)
    assert not state["valid"]

    # every append is refused, even the repairing one, and no file changes
    refused(path, "refusing to append")
    refused(path, "refusing to append", repair_torn_tail=tamper is not truncate_last)
    if tamper is not rewrite_with_wrong_key:  # (that forger's key verifies its own chain)
        refused(path, "refusing to append", key=WRONG_KEY)
    refused(path, "refusing to append", once=True, rec=record(step="1", observed=0.01))  # same as entry 1
    assert snapshot(str(tmp_path)) == before
    with open(path, "rb") as fh:
        assert fh.read() == doctored


def test_a_rewrite_without_key_passes_only_when_nobody_checks_the_key(keyed):
    """The limit of a hash chain, and why the key is needed: without it a full rewrite looks fine."""
    path, entries, data = keyed
    write(path, join(rechain(entries)))
    state = verify(path, key=None)
    assert state["valid"] and not state["authenticated"] and state["keyed_entries"] == 0
    assert not verify(path)["valid"]


def test_torn_tail_repair_keeps_the_bytes_and_only_on_request(keyed, tmp_path):
    path, entries, data = keyed
    cut = data[:-25]
    write(path, cut)
    assert_refused_and_kept(tmp_path, path, "torn tail at line 6 .*repair_torn_tail=true")
    entry, changed, info = Ledger(path, key=KEY).append(record("promote", "promote"), repair_torn_tail=True)
    seen((entry, info))
    assert changed and entry["seq"] == 6 and entry["prev_hash"] == entries[4]["hash"]
    torn_file = info["torn_tail_file"]
    assert os.path.basename(torn_file).startswith("ledger.jsonl.torn-")
    assert stat.S_IMODE(os.stat(torn_file).st_mode) == 0o600
    with open(torn_file, "rb") as fh:
        torn = fh.read()
    assert cut == data.rsplit(b"\n", 2)[0] + b"\n" + torn  # every cut byte is kept aside
    with open(path, "rb") as fh:
        assert fh.read().startswith(cut[:len(cut) - len(torn)])
    assert verify(path)["valid"]


def test_torn_tail_is_not_repaired_when_the_rest_is_broken(keyed, tmp_path):
    path, entries, data = keyed
    lines = data.split(b"\n")[:-1]
    del lines[1]
    write(path, join(lines)[:-10])
    assert_refused_and_kept(tmp_path, path, "broken chain at seq 2", repair_torn_tail=True)


def test_symlink_at_the_ledger_path_is_refused(keyed, tmp_path):
    path, entries, data = keyed
    other = tmp_path / "other.txt"
    other.write_bytes(b"someone else's file\nwithout a newline at the end")
    os.unlink(path)
    os.symlink(str(other), path)
    before = snapshot(str(tmp_path))
    message = refused(path, "is a symbolic link")
    assert path in message
    refused(path, "is a symbolic link", repair_torn_tail=True)
    with pytest.raises(LedgerError, match="is a symbolic link"):
        Ledger(path, key=KEY).verify()
    with pytest.raises(LedgerError, match="is a symbolic link"):
        Ledger(path, key=KEY).append(record(), check_mode=True)
    # a dangling symlink is not followed to create its target either
    os.unlink(str(other))
    refused(path, "is a symbolic link")
    assert not other.exists()
    del before["other.txt"]
    assert snapshot(str(tmp_path)) == before


def test_symlink_to_a_valid_ledger_is_refused_too(keyed, tmp_path):
    path, entries, data = keyed
    link = str(tmp_path / "link.jsonl")
    os.symlink(path, link)
    assert_refused_and_kept(tmp_path, link, "symbolic link")


def test_expected_head(keyed, tmp_path):
    path, entries, data = keyed
    assert verify(path, expected_head=entries[-1]["hash"])["valid"]
    state = verify(path, expected_head=entries[3]["hash"])
    assert not state["valid"] and state["head_found"] and "2 entries were appended after it" in state["problem"]
    state = verify(path, expected_head="ab" * 32)
    assert not state["valid"] and not state["head_found"] and "removed from its end" in state["problem"]
    assert_refused_and_kept(tmp_path, path, "not expected_head", expected_head=entries[3]["hash"])
    assert_refused_and_kept(tmp_path, path, "removed from its end", expected_head="ab" * 32)
    with pytest.raises(LedgerError, match="expected_head must be a 64-character hex"):
        Ledger(path, key=KEY).verify(expected_head="nope")
    # cut entries from the end: a shorter chain, valid, but not the anchored head
    write(path, join(data.split(b"\n")[:4]))
    assert verify(path)["valid"]
    assert not verify(path, expected_head=entries[-1]["hash"])["valid"]
    # the right head lets the append through
    entry = Ledger(path, key=KEY).append(record(), expected_head=entries[3]["hash"])[0]
    assert entry["seq"] == 5
    # a new ledger has the genesis head
    fresh = str(tmp_path / "fresh.jsonl")
    assert_refused_and_kept(tmp_path, fresh, "not expected_head", expected_head=entries[0]["hash"])
    assert not os.path.exists(fresh)
    assert Ledger(fresh, key=KEY).append(record(), expected_head=GENESIS_HASH)[0]["seq"] == 1


# --- keyed and unkeyed -------------------------------------------------------------------------------------------

def test_keyed_append_to_unkeyed_ledger_needs_adopt_unkeyed(tmp_path):
    path = str(tmp_path / "ledger.jsonl")
    plain = Ledger(path, key=None)
    old = [plain.append(record(step=str(i)))[0] for i in range(3)]
    state = verify(path)
    assert not state["valid"] and "line 1 (seq 1) has no mac" in state["problem"]
    message = refused(path, "its 3 entries have no mac")
    assert "new keyed ledger at another path" in message and "adopt_unkeyed=true" in message
    with pytest.raises(LedgerError, match="adopt_unkeyed needs a key"):
        Ledger(path, key=None).append(record(), adopt_unkeyed=True)

    entry, changed, info = Ledger(path, key=KEY).append(record("promote", "promote"), adopt_unkeyed=True)
    seen((entry, info))
    assert entry["adopted"] == {"entries": 3, "head": old[-1]["hash"]} and info["adopted"] == 3
    assert entry["mac"] == mac_of(entry, KEY)
    state = verify(path)
    assert state["valid"] and state["authenticated"] and state["adopted"] == 3 and state["keyed_entries"] == 1
    # later keyed appends need no adopt_unkeyed, and carry no adopted
    later = Ledger(path, key=KEY).append(record())[0]
    assert "adopted" not in later and verify(path)["count"] == 5
    # an unkeyed append after keyed entries is refused, and a forged one is detected
    refused(path, "refusing to append without a key", key=None)


def test_adopted_cannot_be_forged_onto_a_later_entry(tmp_path):
    path = str(tmp_path / "ledger.jsonl")
    Ledger(path, key=None).append(record())
    Ledger(path, key=KEY).append(record(), adopt_unkeyed=True)
    entries = [json.loads(line) for line in lines_of(path)]
    entries[1]["adopted"]["entries"] = 0 + 2
    entries[1]["mac"] = mac_of(entries[1], WRONG_KEY)
    entries[1]["hash"] = entry_hash(entries[1])
    write(path, join([canonical_json(e) for e in entries]))
    state = verify(path)
    assert not state["valid"] and state["broken_line"] == 2


def test_unkeyed_ledger_still_works_without_key(tmp_path):
    path = str(tmp_path / "ledger.jsonl")
    entry, changed, info = Ledger(path, key=None).append(record())
    assert "mac" not in entry and not info["authenticated"] and info["count"] == 1 and info["head"] == entry["hash"]
    state = verify_bytes(open(path, "rb").read())
    assert state["valid"] and not state["authenticated"] and state["head"] == entry["hash"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_check_mode_writes_nothing_and_creates_nothing(keyed, tmp_path):
    path, entries, data = keyed
    before = snapshot(str(tmp_path))
    entry, changed, info = Ledger(path, key=KEY).append(record(), check_mode=True)
    assert changed and entry["seq"] == 7 and entry["mac"] == mac_of(entry, KEY)
    write(path, data[:-3])
    before = snapshot(str(tmp_path))
    refused(path, "torn tail", check_mode=True)
    entry, changed, info = Ledger(path, key=KEY).append(record(), check_mode=True, repair_torn_tail=True)
    assert info["torn_tail_repaired"] and info["torn_tail_file"] is None and entry["seq"] == 6
    assert snapshot(str(tmp_path)) == before


# --- the key stays secret ----------------------------------------------------------------------------------------

def test_bad_keys_are_refused_without_echo():
    with pytest.raises(LedgerError, match="key is empty"):
        Ledger("/tmp/x", key="")
    with pytest.raises(LedgerError, match="key must be a string, got int") as info:
        Ledger("/tmp/x", key=123456789)
    assert "123456789" not in str(info.value)


def test_the_key_never_appears_in_results_or_errors(keyed, tmp_path):
    """Runs last in this module (pytest keeps file order): checks what every test above returned or raised."""
    path, entries, data = keyed
    seen(Ledger(path, key=KEY))
    seen(Ledger(path, key=KEY).append(record()))
    write(path, data[:-3])
    refused(path, "torn tail")
    write(path, forged_append_wrong_key(data.split(b"\n")[:-1], entries))
    seen(verify(path))
    refused(path, "mac does not match")
    for name, content in snapshot(str(tmp_path)).items():
        assert KEY.encode() not in (content if isinstance(content, bytes) else content[1].encode())
    assert SEEN
    for text in SEEN:
        assert KEY not in text and KEY.encode().hex() not in text
