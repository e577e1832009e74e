# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollout ledger's format: entries, their hash chain and macs, checking a ledger given as bytes.

No file I/O here: :mod:`ledger` (the :class:`~ledger.Ledger` file: locking, appending, torn-tail repair) and
readers of a ledger's bytes build on it.

One line per entry::

    {"decision":..., "event":..., "evidence":{...}, "hash":"<sha256>", "mac":"<hmac-sha256>", "phase":...,
     "prev_hash":"<sha256 of the previous entry or 64 zeros>", "reason":...,
     "release":..., "seq":1, "step":..., "ts":"2025-01-01T00:00:00.000000Z"}

``hash`` is the SHA-256 of the canonical JSON (sorted keys, no whitespace,
UTF-8) of the entry without ``hash``.  Each entry carries the previous entry's
hash, so editing, removing or reordering any entry breaks the chain at that
point; :func:`verify_bytes` recomputes every link and names the first broken
line.  A hash chain alone proves nothing against someone who can write the
file: they can append (or rewrite everything) with recomputed hashes.

Keyed ledgers (``key``, or the environment variable ``STAGEGATE_LEDGER_KEY``
for :class:`~ledger.Ledger`): every entry also carries ``mac``, the HMAC-SHA256 with
the key of the canonical JSON of the entry without ``hash`` and ``mac`` (so it
covers ``seq`` and ``prev_hash``: the chain itself is authenticated); ``hash``
then covers ``mac`` too.  With a key, an entry without a valid ``mac`` makes
the ledger invalid.  Once an entry has a ``mac`` every later one must have one,
key or not.  A ledger whose entries have no ``mac`` can be continued with a
key only by adopting them (``adopt_unkeyed``): the first keyed entry then
carries ``adopted: {"entries": N, "head": "<hash of entry N>"}``.

Deleting entries from the *end* leaves a shorter valid chain (keyed or not):
anchor the head outside the file and pass it as ``expected_head``.

The last line must be complete: one without its newline (or that is not
complete JSON) is a *torn tail* (a write interrupted by a crash, or a
truncation) and makes the ledger invalid.

Evidence keys matching ``password|token|secret|webhook|creds|authorization``
(case-insensitive, at any depth) are redacted by :func:`build_record`, before anything is written, and so is the
userinfo (``user:password@``) of any URL in an evidence value or in ``reason``.
The key never appears in an entry, a result or an error message.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import hashlib
import hmac
import json
import re

from ansible_collections.stagegate.rollout.plugins.module_utils.canonical_json import canonical_json, check_json
from ansible_collections.stagegate.rollout.plugins.module_utils.redact import REDACTED, URL_USERINFO, scrub, url_secrets

GENESIS_HASH = "0" * 64
SECRET_KEY_RE = re.compile(r"(password|token|secret|webhook|creds|authorization)", re.IGNORECASE)
FIELDS = ("seq", "ts", "release", "phase", "step", "event", "decision", "reason", "evidence", "prev_hash", "hash")
OPTIONAL_FIELDS = ("mac", "adopted")
KEY_ENV = "STAGEGATE_LEDGER_KEY"
TEXT_FIELDS = ("release", "phase", "step", "event", "decision", "reason")
REQUIRED_FIELDS = ("release", "phase", "event")
MAX_TEXT = 4096
HASH_RE = re.compile(r"^[0-9a-f]{64}\Z")


class LedgerError(ValueError):
    """Bad input or an unusable ledger file; the message names the field or the line."""


def entry_hash(entry):
    """SHA-256 (hex) of the canonical JSON of ``entry`` without its ``hash`` key."""
    body = dict((k, v) for k, v in entry.items() if k != "hash")
    return hashlib.sha256(canonical_json(body)).hexdigest()


def key_bytes(key):
    """The key as bytes (None without a key); an empty key is refused (never echoed)."""
    if key is None:
        return None
    if isinstance(key, bytes):
        raw = key
    elif isinstance(key, str):
        raw = key.encode("utf-8")
    else:
        raise LedgerError("key must be a string, got %s" % type(key).__name__)
    if not raw:
        raise LedgerError("key is empty: give a secret (or leave both key and %s unset for an unkeyed ledger)"
                          % KEY_ENV)
    return raw


def entry_mac(entry, key):
    """HMAC-SHA256 (hex) with ``key`` of the canonical JSON of ``entry`` without ``hash`` and ``mac``."""
    body = dict((k, v) for k, v in entry.items() if k not in ("hash", "mac"))
    return hmac.new(key_bytes(key), canonical_json(body), hashlib.sha256).hexdigest()


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def redact(value, path="evidence", found=None, secrets=None):
    """Copy of ``value`` with every value under a secret-looking key replaced by ``REDACTED``.

    ``found`` collects the dotted paths that were redacted, ``secrets`` the
    string values that were removed (so a caller can also mask them elsewhere).
    """
    if found is None:
        found = []
    if secrets is None:
        secrets = []
    if isinstance(value, dict):
        out = {}
        for key in value:
            sub = "%s.%s" % (path, key)
            if SECRET_KEY_RE.search(str(key)):
                found.append(sub)
                _collect_strings(value[key], secrets)
                out[key] = REDACTED
            else:
                out[key] = redact(value[key], sub, found, secrets)
        return out
    if isinstance(value, (list, tuple)):
        return [redact(v, "%s[%d]" % (path, i), found, secrets) for i, v in enumerate(value)]
    return _without_userinfo(value, path, found, secrets)


def _without_userinfo(value, path, found, secrets):
    """``value`` with the userinfo of every URL in it redacted (a string), else as it is; records what it did."""
    if isinstance(value, str) and URL_USERINFO.search(value):
        found.append(path)
        secrets.extend(url_secrets(value))
        return scrub(value)
    return value


def _collect_strings(value, secrets):
    if isinstance(value, dict):
        for v in value.values():
            _collect_strings(v, secrets)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _collect_strings(v, secrets)
    elif value is not None and not isinstance(value, bool):
        text = str(value)
        if text:
            secrets.append(text)


def build_record(release, phase, event, step=None, decision=None, reason=None, evidence=None):
    """Validate the content fields and redact evidence.

    Returns ``(record, redacted_paths, secret_values)``; ``record`` has no
    seq/ts/prev_hash/hash yet.
    """
    values = dict(release=release, phase=phase, step=step, event=event, decision=decision, reason=reason)
    for name in TEXT_FIELDS:
        v = values[name]
        if v is None:
            if name in REQUIRED_FIELDS:
                raise LedgerError("%s is required to append an entry" % name)
            continue
        if name == "step" and isinstance(v, int) and not isinstance(v, bool):
            v = str(v)
        if not isinstance(v, str):
            raise LedgerError("%s must be a string, got %s %r" % (name, type(v).__name__, v))
        if name in REQUIRED_FIELDS and not v.strip():
            raise LedgerError("%s must not be empty" % name)
        if len(v) > MAX_TEXT:
            raise LedgerError("%s is %d characters long; at most %d are accepted (put detail in evidence)"
                              % (name, len(v), MAX_TEXT))
        values[name] = v
    if evidence is None:
        evidence = {}
    if not isinstance(evidence, dict):
        raise LedgerError("evidence must be a mapping, got %s %r" % (type(evidence).__name__, evidence))
    check_json(evidence, "evidence", LedgerError)
    found, secrets = [], []
    clean = redact(evidence, "evidence", found, secrets)
    values["evidence"] = clean
    values["reason"] = _without_userinfo(values["reason"], "reason", found, secrets)
    return values, found, secrets


def _parse_line(raw, lineno):
    """Decode one ledger line -> (entry, problem)."""
    try:
        text = raw.decode("utf-8")
        entry = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        return None, "line %d is not JSON: %s" % (lineno, exc)
    if not isinstance(entry, dict):
        return None, "line %d is not a JSON object" % lineno
    missing = [f for f in FIELDS if f not in entry]
    if missing:
        return entry, "line %d lacks %s" % (lineno, ", ".join(missing))
    extra = sorted(set(entry) - set(FIELDS) - set(OPTIONAL_FIELDS))
    if extra:
        return entry, "line %d has unexpected fields %s" % (lineno, ", ".join(extra))
    if "mac" in entry and not (isinstance(entry["mac"], str) and HASH_RE.match(entry["mac"])):
        return entry, "line %d: mac is not a 64-character hex HMAC-SHA256" % lineno
    if "adopted" in entry:
        adopted = entry["adopted"]
        if not (isinstance(adopted, dict) and sorted(adopted) == ["entries", "head"]
                and isinstance(adopted["entries"], int) and not isinstance(adopted["entries"], bool)
                and adopted["entries"] > 0 and isinstance(adopted["head"], str) and HASH_RE.match(adopted["head"])):
            return entry, "line %d: adopted must be {\"entries\": N > 0, \"head\": <sha256>}" % lineno
    return entry, None


def _split(data):
    """Ledger bytes -> (newline-terminated lines without their newline, unterminated tail bytes or b'')."""
    if not data:
        return [], b""
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    return lines, tail


def _safe_hash(entry):
    try:
        return entry_hash(entry)
    except (TypeError, ValueError):
        return None


def _is_json(raw):
    try:
        json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return False
    return True


def _walk(lines, key):
    """Check every complete line -> (verified entries, (seq, line, problem) or None, unkeyed, keyed).

    ``unkeyed`` counts the entries without a mac before the first keyed one.
    """
    verified = []
    prev_hash, seq = GENESIS_HASH, 1
    unkeyed = keyed = 0
    for index, raw in enumerate(lines):
        lineno = index + 1
        where = "line %d (seq %d)" % (lineno, seq)
        if not raw.strip():
            return verified, (seq, lineno, "line %d is empty" % lineno), unkeyed, keyed
        entry, problem = _parse_line(raw, lineno)
        if problem:
            return verified, (seq, lineno, problem), unkeyed, keyed
        if entry["seq"] != seq or isinstance(entry["seq"], bool):
            return verified, (seq, lineno, "line %d: seq is %r, expected %d (entry removed, inserted or reordered)"
                              % (lineno, entry["seq"], seq)), unkeyed, keyed
        if entry["prev_hash"] != prev_hash:
            return verified, (seq, lineno, "%s: prev_hash %r does not match the hash of the entry before it %r"
                              % (where, entry["prev_hash"], prev_hash)), unkeyed, keyed
        actual = _safe_hash(entry)
        if actual is None or entry["hash"] != actual:
            return verified, (seq, lineno, "%s: hash %r does not match its content (recomputed %r): the entry was "
                              "edited" % (where, entry["hash"], actual)), unkeyed, keyed
        if raw != canonical_json(entry):
            return verified, (seq, lineno, "%s is not in canonical JSON form (spacing, key order, escapes or "
                              "duplicate keys differ): the line was edited" % where), unkeyed, keyed
        if "mac" not in entry:
            if keyed:
                return verified, (seq, lineno, "%s has no mac although the entries before it have one: it was not "
                                  "written with the ledger's key (a forged or unkeyed append)" % where), unkeyed, keyed
            unkeyed += 1
        else:
            adopted = entry.get("adopted")
            if adopted is not None:
                if keyed:
                    return verified, (seq, lineno, "%s: only the first entry with a mac may adopt unkeyed entries"
                                      % where), unkeyed, keyed
                if adopted != {"entries": unkeyed, "head": prev_hash}:
                    return verified, (seq, lineno, "%s: adopted %r does not describe the %d entries without a mac "
                                      "before it (head %s)" % (where, adopted, unkeyed, prev_hash)), unkeyed, keyed
            elif unkeyed and not keyed:
                return [], (1, 1, "line 1 (seq 1) has no mac, and line %d (seq %d), the first entry with one, does "
                            "not adopt the %d entries before it: they were not written with the ledger's key"
                            % (lineno, seq, unkeyed)), unkeyed, keyed
            if key is not None and not hmac.compare_digest(entry["mac"], entry_mac(entry, key)):
                return verified, (seq, lineno, "%s: mac does not match (written with another key, or forged or "
                                  "rewritten without the key)" % where), unkeyed, keyed
            keyed += 1
        verified.append(entry)
        prev_hash = entry["hash"]
        seq += 1
    return verified, None, unkeyed, keyed


def scan_chain(data, key):
    """Full check of ledger bytes with ``key`` (bytes or None) -> the state :func:`verify_bytes` returns plus
    private fields (starting with ``_``) an appender needs: ``_lines_ok``, ``_verified``, ``_chain_head``,
    ``_unkeyed``, ``_keep`` (the bytes before a torn tail)."""
    lines, tail = _split(data)
    st = dict(valid=True, entries=0, count=0, head_seq=0, head_hash=GENESIS_HASH, head=GENESIS_HASH,
              broken_seq=None, broken_line=None, problem=None, torn_tail=False, torn_tail_bytes=0,
              torn_tail_line=None, terminated=True, authenticated=key is not None, keyed_entries=0, adopted=0)
    torn = None
    if tail:
        torn = (len(lines) + 1, len(tail), "the line has no newline")
    elif lines and lines[-1].strip() and not _is_json(lines[-1]):
        torn = (len(lines), len(lines[-1]) + 1, "the line is not complete JSON")
        lines.pop()
    verified, broken, unkeyed, keyed = _walk(lines, key)
    head = verified[-1]["hash"] if verified else GENESIS_HASH
    st.update(entries=len(verified), count=len(verified), head_seq=len(verified), head_hash=head, head=head,
              keyed_entries=keyed, adopted=unkeyed if keyed else 0)
    st["_lines_ok"] = broken is None
    st["_verified"] = verified
    st["_chain_head"] = head
    st["_unkeyed"] = unkeyed if broken is None and not keyed else 0
    st["_keep"] = len(data) - (torn[1] if torn else 0)
    if torn:
        st.update(torn_tail=True, torn_tail_line=torn[0], torn_tail_bytes=torn[1], terminated=False)
    if broken:
        _broken(st, *broken)
    elif torn:
        _broken(st, len(verified) + 1, torn[0], "torn tail at line %d (%d bytes; %s): a write was interrupted or "
                "the file was cut" % torn)
    elif key is not None and unkeyed and not keyed:
        _broken(st, 1, 1, "line 1 (seq 1) has no mac: the %d entries of this ledger were written without a key, "
                "so none of them is authenticated" % unkeyed)
        st.update(entries=0, count=0, head_seq=0, head_hash=GENESIS_HASH, head=GENESIS_HASH)
    if not st["valid"]:
        st["authenticated"] = False
    return st


def _broken(result, seq, lineno, problem):
    result.update(valid=False, broken_seq=seq, broken_line=lineno, problem=problem)
    return result


def normalize_head(expected_head):
    """``expected_head`` as lower-case hex (None stays None); anything but a SHA-256 is refused."""
    if expected_head is None:
        return None
    text = str(expected_head).strip().lower()
    if not HASH_RE.match(text):
        raise LedgerError("expected_head must be a 64-character hex SHA-256 (a head from an earlier run), got %r"
                          % str(expected_head)[:80])
    return text


def _check_head(st, expected_head):
    """Fail ``st`` when the chain's head is not ``expected_head``."""
    if expected_head is None:
        return
    hashes = [e["hash"] for e in st["_verified"]]
    st["head_found"] = expected_head in hashes or expected_head == GENESIS_HASH
    if not st["valid"] or expected_head == st["head_hash"]:
        return
    if st["head_found"]:
        at = hashes.index(expected_head) + 1 if expected_head in hashes else 0
        problem = ("expected_head %s is the hash of seq %d, but the head is seq %d (%s): %d entries were appended "
                   "after it" % (expected_head, at, st["head_seq"], st["head_hash"], st["head_seq"] - at))
        _broken(st, at + 1, at + 1, problem)
    else:
        problem = ("expected_head %s is not in the ledger: entries were removed from its end (or it is another "
                   "ledger)" % expected_head)
        _broken(st, st["head_seq"] + 1, None, problem)
    st["authenticated"] = False


def _public(st):
    return dict((k, v) for k, v in st.items() if not k.startswith("_"))


def verify_bytes(data, expected_head=None, key=None):
    """Check every link (and with ``key`` every mac) of a ledger given as bytes.

    Returns a dict: valid, entries and count (verified entries), head_seq, head_hash and head (hash of the last
    verified entry, 64 zeros for none), broken_seq, broken_line, problem, torn_tail, torn_tail_bytes,
    torn_tail_line, terminated, authenticated (a key was given and every entry's mac checked), keyed_entries,
    adopted (unkeyed entries adopted by the first keyed one), head_found (with ``expected_head``).
    """
    st = scan_chain(data, key_bytes(key))
    _check_head(st, normalize_head(expected_head))
    return _public(st)


def read_entries(data, strict=True):
    """All complete (newline-terminated) entries of a ledger, without checking the chain; a torn tail is skipped.

    ``strict=False`` skips lines that are not entries instead of raising.
    """
    lines, dummy = _split(data)
    out = []
    for index, raw in enumerate(lines):
        entry, problem = _parse_line(raw, index + 1)
        if problem:
            if strict:
                raise LedgerError(problem)
            continue
        out.append(entry)
    return out
