# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Append-only, hash-chained rollout ledger in JSON Lines.

One line per entry::

    {"decision":..., "event":..., "evidence":{...}, "hash":"<sha256>", "phase":...,
     "prev_hash":"<sha256 of the previous entry or 64 zeros>", "reason":...,
     "release":..., "seq":1, "step":..., "ts":"2025-01-01T00:00:00.000000Z"}

``hash`` is the SHA-256 of the canonical JSON (sorted keys, no whitespace,
UTF-8) of the entry without ``hash``.  Each entry carries the previous entry's
hash, so editing, removing or reordering any entry breaks the chain at that
point; :func:`verify` recomputes every link and names the first broken seq.
Deleting entries from the *end* leaves a shorter valid chain: anchor it by
keeping a head hash elsewhere and passing it as ``expected_head``.

Concurrency and crashes:

* ``append`` takes an exclusive ``fcntl.flock`` on the ledger file, reads the
  tail, writes the new line with one ``write()`` and ``fsync``s before the lock
  is released, so concurrent writers serialise and the chain never forks.
* A crash in the middle of a write can only leave a final line without its
  newline.  If that line is a complete, correctly hashed entry the next append
  just adds the newline; otherwise it is a torn write of an entry that was
  never acknowledged: :func:`verify` reports it (``torn_tail``) without
  calling the ledger invalid, and the next append truncates it first.

Evidence keys matching ``password|token|secret|webhook|creds|authorization``
(case-insensitive, at any depth) are redacted before anything is written.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import errno
import hashlib
import json
import math
import os
import re

try:
    import fcntl
    HAS_FCNTL = True
except ImportError:  # pragma: no cover - not on POSIX
    HAS_FCNTL = False

GENESIS_HASH = "0" * 64
REDACTED = "********"
SECRET_KEY_RE = re.compile(r"(password|token|secret|webhook|creds|authorization)", re.IGNORECASE)
FIELDS = ("seq", "ts", "release", "phase", "step", "event", "decision", "reason", "evidence", "prev_hash", "hash")
TEXT_FIELDS = ("release", "phase", "step", "event", "decision", "reason")
REQUIRED_FIELDS = ("release", "phase", "event")
MAX_TEXT = 4096
HASH_RE = re.compile(r"^[0-9a-f]{64}$")


class LedgerError(ValueError):
    """Bad input or an unusable ledger file; the message names the field or the line."""


def canonical_json(obj):
    """Canonical JSON bytes: sorted keys, no whitespace, UTF-8, no NaN/Infinity."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def entry_hash(entry):
    """SHA-256 (hex) of the canonical JSON of ``entry`` without its ``hash`` key."""
    body = dict((k, v) for k, v in entry.items() if k != "hash")
    return hashlib.sha256(canonical_json(body)).hexdigest()


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


def _check_json(value, path):
    """Reject what canonical JSON cannot represent stably (non-string keys, NaN, objects)."""
    if value is None or isinstance(value, (bool, str)):
        return
    if isinstance(value, int):
        return
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise LedgerError("%s: %r is not allowed (NaN/Infinity have no JSON form)" % (path, value))
        return
    if isinstance(value, dict):
        for key, sub in value.items():
            if not isinstance(key, str):
                raise LedgerError("%s: key %r must be a string" % (path, key))
            _check_json(sub, "%s.%s" % (path, key))
        return
    if isinstance(value, (list, tuple)):
        for i, sub in enumerate(value):
            _check_json(sub, "%s[%d]" % (path, i))
        return
    raise LedgerError("%s: %r (%s) is not JSON data (use strings, numbers, booleans, null, lists, mappings)"
                      % (path, value, type(value).__name__))


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
    _check_json(evidence, "evidence")
    found, secrets = [], []
    clean = redact(evidence, "evidence", found, secrets)
    values["evidence"] = clean
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
    extra = sorted(set(entry) - set(FIELDS))
    if extra:
        return entry, "line %d has unexpected fields %s" % (lineno, ", ".join(extra))
    return entry, None


def _split(data):
    """Ledger bytes -> (complete lines, torn tail bytes or b'')."""
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


def verify_bytes(data, expected_head=None):
    """Check every link of a ledger given as bytes.

    Returns a dict: valid, entries, head_seq, head_hash, broken_seq, broken_line,
    problem, torn_tail, torn_tail_bytes, head_found (with ``expected_head``).
    """
    lines, tail = _split(data)
    result = dict(valid=True, entries=0, head_seq=0, head_hash=GENESIS_HASH, broken_seq=None,
                  broken_line=None, problem=None, torn_tail=False, torn_tail_bytes=0,
                  terminated=True)
    prev_hash, expected_seq = GENESIS_HASH, 1
    hashes = set()
    terminated = True
    if tail:
        if _complete_tail(tail, lines):
            lines.append(tail)
            terminated = False
        else:
            result["torn_tail"] = True
            result["torn_tail_bytes"] = len(tail)
    for index, raw in enumerate(lines):
        lineno = index + 1
        if not raw.strip():
            return _broken(result, expected_seq, lineno, "line %d is empty" % lineno)
        entry, problem = _parse_line(raw, lineno)
        if problem:
            return _broken(result, expected_seq, lineno, problem)
        if entry["seq"] != expected_seq or isinstance(entry["seq"], bool):
            return _broken(result, expected_seq, lineno, "line %d: seq is %r, expected %d (entry removed, inserted or "
                                                         "reordered)" % (lineno, entry["seq"], expected_seq))
        if entry["prev_hash"] != prev_hash:
            problem = "line %d (seq %d): prev_hash %r does not match the hash of the entry before it %r" % (
                lineno, expected_seq, entry["prev_hash"], prev_hash)
            return _broken(result, expected_seq, lineno, problem)
        actual = _safe_hash(entry)
        if actual is None or entry["hash"] != actual:
            return _broken(result, expected_seq, lineno, "line %d (seq %d): hash %r does not match its content "
                                                         "(recomputed %r): the entry was edited"
                                                         % (lineno, expected_seq, entry["hash"], actual))
        prev_hash = entry["hash"]
        hashes.add(prev_hash)
        result["entries"] = lineno
        result["head_seq"] = expected_seq
        result["head_hash"] = prev_hash
        expected_seq += 1
    result["terminated"] = terminated and not result["torn_tail"]
    if expected_head is not None:
        result["head_found"] = expected_head in hashes or expected_head == GENESIS_HASH
        if not result["head_found"]:
            result["valid"] = False
            result["problem"] = ("expected_head %s is not in the ledger: entries were removed from its end "
                                 "(or it is another ledger)" % expected_head)
            result["broken_seq"] = result["head_seq"] + 1
    return result


def _complete_tail(tail, lines):
    """An unterminated final line that parses as a whole entry is kept (only the newline is missing)."""
    entry, problem = _parse_line(tail, len(lines) + 1)
    return problem is None and entry.get("hash") == _safe_hash(entry)


def _broken(result, seq, lineno, problem):
    result.update(valid=False, broken_seq=seq, broken_line=lineno, problem=problem)
    return result


def read_entries(data, strict=True):
    """All complete entries (dicts) of a ledger, without checking the chain (torn tail skipped).

    ``strict=False`` skips lines that are not entries instead of raising.
    """
    lines, tail = _split(data)
    if tail and _complete_tail(tail, lines):
        lines.append(tail)
    out = []
    for index, raw in enumerate(lines):
        entry, problem = _parse_line(raw, index + 1)
        if problem:
            if strict:
                raise LedgerError(problem)
            continue
        out.append(entry)
    return out


def _read_all(fd):
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _fsync_dir(path):
    d = os.path.dirname(os.path.abspath(path))
    try:
        dfd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def _same_content(entry, record):
    return all(entry.get(k) == record.get(k) for k in TEXT_FIELDS + ("evidence",))


class Ledger(object):
    """A ledger file.  All methods take the lock they need."""

    def __init__(self, path):
        if not path:
            raise LedgerError("path is required")
        self.path = path

    def _check_dir(self):
        d = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(d):
            raise LedgerError("path %s: directory %s does not exist" % (self.path, d))

    def read_bytes(self):
        """Ledger content under a shared lock (b'' when the file does not exist)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return b""
            raise LedgerError("path %s: cannot read: %s" % (self.path, exc))
        try:
            if HAS_FCNTL:
                fcntl.flock(fd, fcntl.LOCK_SH)
            return _read_all(fd)
        finally:
            os.close(fd)

    def verify(self, expected_head=None):
        return verify_bytes(self.read_bytes(), expected_head=expected_head)

    def entries(self):
        return read_entries(self.read_bytes())

    def plan(self, data, record, ts=None):
        """The entry that appending ``record`` to ``data`` would write (no I/O)."""
        state = verify_bytes(data)
        if not state["valid"]:
            raise LedgerError("path %s: refusing to append to a broken chain at seq %s: %s"
                              % (self.path, state["broken_seq"], state["problem"]))
        entry = dict(record)
        entry["seq"] = state["head_seq"] + 1
        entry["ts"] = ts or utc_now()
        entry["prev_hash"] = state["head_hash"]
        entry["hash"] = entry_hash(entry)
        return entry, state

    def append(self, record, once=False, check_mode=False, ts=None):
        """Append one validated record (from :func:`build_record`).

        Returns ``(entry, changed, info)``: with ``once`` an identical earlier
        entry (same release, phase, step, event, decision, reason and evidence)
        is returned instead and nothing is written; in check mode the entry is
        computed but not written.
        """
        self._check_dir()
        if check_mode:
            return self._finish_check(self.read_bytes(), record, once, ts)
        if not HAS_FCNTL:  # pragma: no cover
            raise LedgerError("append needs fcntl (POSIX) for its exclusive lock")
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as exc:
            raise LedgerError("path %s: cannot open for append: %s" % (self.path, exc))
        created = False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            data = _read_all(fd)
            created = not data
            info = {"torn_tail_repaired": 0}
            lines, tail = _split(data)
            if tail:
                if _complete_tail(tail, lines):
                    os.write(fd, b"\n")
                    data += b"\n"
                else:
                    # torn write of an entry that was never acknowledged
                    os.ftruncate(fd, len(data) - len(tail))
                    data = data[:len(data) - len(tail)]
                    info["torn_tail_repaired"] = len(tail)
            entry, changed = self._decide(data, record, once, ts)
            if changed:
                line = canonical_json(entry) + b"\n"
                written = os.write(fd, line)
                while written < len(line):
                    written += os.write(fd, line[written:])
            os.fsync(fd)
        except OSError as exc:
            raise LedgerError("path %s: cannot append: %s" % (self.path, exc))
        finally:
            os.close(fd)  # releases the lock
        if created:
            _fsync_dir(self.path)
        return entry, changed, info

    def _finish_check(self, data, record, once, ts):
        lines, tail = _split(data)
        info = {"torn_tail_repaired": 0}
        if tail and not _complete_tail(tail, lines):
            info["torn_tail_repaired"] = len(tail)
        entry, changed = self._decide(data, record, once, ts)
        return entry, changed, info

    def _decide(self, data, record, once, ts):
        if once:
            for entry in read_entries(data):
                if _same_content(entry, record):
                    # the chain must still be intact for a no-op to be trusted
                    self.plan(data, record, ts)
                    return entry, False
        entry, dummy = self.plan(data, record, ts)
        return entry, True
