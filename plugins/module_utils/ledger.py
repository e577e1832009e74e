# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Append-only, hash-chained and optionally keyed (HMAC) rollout ledger in JSON Lines: the file.

The entries' format, their chain and macs, and checking a ledger's bytes live in :mod:`ledger_chain`; its
public names are also this module's (``__all__``), so callers import them from here as before.  This module
holds the :class:`Ledger` file (reading under a lock, appending) and the queries over its entries' outcomes.

Appends never destroy data:

* the file is opened with ``O_NOFOLLOW`` (a symlink at the path is refused)
  and ``O_APPEND``, created ``0600``, and locked with an exclusive
  ``fcntl.flock``; the whole chain is verified before anything is written, and
  a refused append leaves every byte as it was;
* a torn tail is only repaired on request (``repair_torn_tail``) and only when
  the rest of the chain verifies: its bytes are first copied to
  ``<path>.torn-<timestamp>`` (0600, fsynced), then cut off;
* the new line is written, the file ``fsync``ed (and the directory when the
  file was created) before the lock is released.

The key never appears in an entry, a result or an error message.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import errno
import os
import stat

from ansible.module_utils.common.parameters import env_fallback

from ansible_collections.stagegate.rollout.plugins.module_utils.atomic_file import fsync_dir
from ansible_collections.stagegate.rollout.plugins.module_utils.canonical_json import canonical_json
# the format and its checks, also this module's API (__all__): callers import them from here as before
from ansible_collections.stagegate.rollout.plugins.module_utils.ledger_chain import (
    FIELDS, GENESIS_HASH, HASH_RE, KEY_ENV, MAX_TEXT, OPTIONAL_FIELDS, REDACTED, REQUIRED_FIELDS, SECRET_KEY_RE,
    TEXT_FIELDS, LedgerError, build_record, entry_hash, entry_mac, key_bytes, normalize_head, read_entries,
    redact, scan_chain, utc_now, verify_bytes)

try:
    import fcntl
    HAS_FCNTL = True
except ImportError:  # pragma: no cover - not on POSIX
    HAS_FCNTL = False


# The events that end an attempt of a phase (a ``phase_start``); an attempt without one after its start was
# interrupted (the controller killed, the connection lost) or is running now. ``hold`` ends an attempt without
# undoing it (a person decides next); ``roll_forward`` is that person's decision to keep what runs.
OUTCOMES = ("promote", "rollback", "rollback_incomplete", "aborted", "hold", "roll_forward")


def unfinished_attempts(entries):
    """The attempts that started and have no outcome: for each (release, phase) whose last ``phase_start`` is not
    followed by one of :data:`OUTCOMES` of the same release and phase, ``{release, phase, seq, ts}`` of that start,
    in ledger order. A later attempt of the same release and phase supersedes an earlier one."""
    open_starts = {}
    for entry in entries:
        key = (entry.get("release"), entry.get("phase"))
        if entry.get("event") == "phase_start":
            open_starts[key] = entry
        elif entry.get("event") in OUTCOMES:
            open_starts.pop(key, None)
    return [dict(release=e.get("release"), phase=e.get("phase"), seq=e.get("seq"), ts=e.get("ts"))
            for e in sorted(open_starts.values(), key=lambda e: e.get("seq") or 0)]


def _last_outcomes(entries, event):
    """The last outcome of each (release, phase) where it is ``event``, in ledger order."""
    last = {}
    for entry in entries:
        if entry.get("event") in OUTCOMES:
            last[(entry.get("release"), entry.get("phase"))] = entry
    return [e for e in sorted(last.values(), key=lambda e: e.get("seq") or 0) if e.get("event") == event]


def incomplete_rollbacks(entries):
    """The (release, phase) whose last outcome is ``rollback_incomplete`` (something is left to undo: run the
    rollback playbook again), each ``{release, phase, seq, ts, left}``, in ledger order."""
    return [dict(release=e.get("release"), phase=e.get("phase"), seq=e.get("seq"), ts=e.get("ts"),
                 left=(e.get("evidence") or {}).get("left", []))
            for e in _last_outcomes(entries, "rollback_incomplete")]


def held_releases(entries):
    """The (release, phase) whose last outcome is ``hold``: a failure stopped it there and nothing undid it; a
    person decides (a rollback, or ``roll_forward``). Each ``{release, phase, seq, ts, reason}``, in ledger order."""
    return [dict(release=e.get("release"), phase=e.get("phase"), seq=e.get("seq"), ts=e.get("ts"),
                 reason=e.get("reason"))
            for e in _last_outcomes(entries, "hold")]


def _read_all(fd):
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _write_all(fd, data):
    written = 0
    while written < len(data):
        written += os.write(fd, data[written:])


def _same_content(entry, record):
    return all(entry.get(k) == record.get(k) for k in TEXT_FIELDS + ("evidence",))


class Ledger(object):
    """A ledger file.  All methods take the lock they need.

    ``key`` (str or bytes) makes it a keyed ledger; without one the environment variable
    ``STAGEGATE_LEDGER_KEY`` is used when it is set.  The key is kept out of every result and message.
    """

    def __init__(self, path, key=None):
        if not path:
            raise LedgerError("path is required")
        self.path = path
        if key is None:
            key = os.environ.get(KEY_ENV)
        self._key = key_bytes(key)

    def __repr__(self):
        return "Ledger(%r, keyed=%s)" % (self.path, self.keyed)

    @property
    def keyed(self):
        return self._key is not None

    def _check_dir(self):
        d = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(d):
            raise LedgerError("path %s: directory %s does not exist" % (self.path, d))

    def _error(self, exc, what):
        if exc.errno in (errno.ELOOP, errno.EMLINK) or os.path.islink(self.path):
            return LedgerError("path %s is a symbolic link: refusing to follow it (give the path of the real file)"
                               % self.path)
        return LedgerError("path %s: cannot %s: %s" % (self.path, what, exc))

    def _open(self, flags, mode=0o600):
        """Open without following a symlink; only a regular file is accepted (raises OSError as is)."""
        flags |= os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(self.path, flags, mode)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise LedgerError("path %s is not a regular file" % self.path)
            if HAS_FCNTL:
                fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def read_bytes(self):
        """Ledger content under a shared lock (b'' when the file does not exist)."""
        try:
            fd = self._open(os.O_RDONLY)
        except OSError as exc:
            if exc.errno == errno.ENOENT and not os.path.islink(self.path):
                return b""
            raise self._error(exc, "read")
        try:
            if HAS_FCNTL:
                fcntl.flock(fd, fcntl.LOCK_SH)
            return _read_all(fd)
        except OSError as exc:
            raise self._error(exc, "read")
        finally:
            os.close(fd)

    def verify(self, expected_head=None):
        return self.verify_data(self.read_bytes(), expected_head=expected_head)

    def verify_data(self, data, expected_head=None):
        """:func:`verify_bytes` of ``data`` with this ledger's key."""
        return verify_bytes(data, expected_head=expected_head, key=self._key)

    def entries(self):
        return read_entries(self.read_bytes())

    def plan(self, data, record, ts=None):
        """The entry that appending ``record`` to ``data`` would write (no I/O), and the chain's state."""
        entry = self._decide(data, record, False, ts, None, False, False)[0]
        return entry, verify_bytes(data, key=self._key)

    def append(self, record, once=False, check_mode=False, ts=None, expected_head=None, adopt_unkeyed=False,
               repair_torn_tail=False):
        """Append one validated record (from :func:`build_record`) after verifying the whole chain.

        Returns ``(entry, changed, info)``: with ``once`` an identical earlier
        entry (same release, phase, step, event, decision, reason and evidence)
        is returned instead and nothing is written; in check mode the entry is
        computed but not written.  ``info``: torn_tail_repaired (bytes),
        torn_tail_file, adopted, head, count, authenticated.

        Refused (LedgerError, nothing written) when the chain does not verify,
        ends with a torn tail (unless ``repair_torn_tail``), its head is not
        ``expected_head``, it is keyed and no key was given, or it has entries
        without a mac and a key was given (unless ``adopt_unkeyed``).
        """
        self._check_dir()
        opts = (once, ts, normalize_head(expected_head), bool(adopt_unkeyed), bool(repair_torn_tail))
        if adopt_unkeyed and self._key is None:
            raise LedgerError("adopt_unkeyed needs a key (key, or the environment variable %s)" % KEY_ENV)
        if check_mode:
            entry, changed, info = self._decide(self.read_bytes(), record, *opts)[:3]
            return entry, changed, info
        if not HAS_FCNTL:  # pragma: no cover
            raise LedgerError("append needs fcntl (POSIX) for its exclusive lock")
        fd, created = self._open_for_append(record, opts)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                data = _read_all(fd)
            except OSError as exc:
                raise self._error(exc, "read before appending")
            # refusals raise here, before a single byte is written
            entry, changed, info, keep, write = self._decide(data, record, *opts)
            size = len(data)
            try:
                if info["torn_tail_repaired"]:
                    info["torn_tail_file"] = self._save_torn(data[keep:])
                    os.ftruncate(fd, keep)
                    size = keep
                if write:
                    try:
                        _write_all(fd, canonical_json(entry) + b"\n")
                    except OSError:
                        os.ftruncate(fd, size)  # only the bytes of this partial write
                        raise
                os.fsync(fd)
            except OSError as exc:
                raise self._error(exc, "append")
        finally:
            os.close(fd)  # releases the lock
        if created:
            fsync_dir(os.path.dirname(os.path.abspath(self.path)))
        return entry, changed, info

    def _open_for_append(self, record, opts):
        """-> (fd, created).  A missing file is only created when appending to an empty ledger is allowed."""
        flags = os.O_RDWR | os.O_APPEND
        for dummy in range(10):
            try:
                return self._open(flags), False
            except OSError as exc:
                if exc.errno != errno.ENOENT or os.path.islink(self.path):
                    raise self._error(exc, "open for append")
            self._decide(b"", record, *opts)  # would an append to an empty ledger be refused?
            try:
                return self._open(flags | os.O_CREAT | os.O_EXCL, 0o600), True
            except OSError as exc:
                if exc.errno != errno.EEXIST:
                    raise self._error(exc, "create")
        raise LedgerError("path %s: the file kept appearing and disappearing while opening it" % self.path)

    def _save_torn(self, torn):
        """Copy torn-tail bytes to ``<path>.torn-<timestamp>`` (0600, fsynced) -> its path."""
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        base = "%s.torn-%s" % (self.path, stamp)
        for n in range(100):
            name = base if n == 0 else "%s-%d" % (base, n)
            try:
                tfd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                              | getattr(os, "O_CLOEXEC", 0), 0o600)
            except OSError as exc:
                if exc.errno == errno.EEXIST:
                    continue
                raise LedgerError("path %s: cannot save the torn tail to %s (nothing was cut): %s"
                                  % (self.path, name, exc))
            try:
                _write_all(tfd, torn)
                os.fsync(tfd)
            except OSError as exc:
                raise LedgerError("path %s: cannot save the torn tail to %s (nothing was cut): %s"
                                  % (self.path, name, exc))
            finally:
                os.close(tfd)
            fsync_dir(os.path.dirname(os.path.abspath(name)))
            return name
        raise LedgerError("path %s: cannot find a free name for %s (nothing was cut)" % (self.path, base))

    def _decide(self, data, record, once, ts, expected_head, adopt_unkeyed, repair_torn_tail):
        """-> (entry, changed, info, bytes to keep, write?) or LedgerError when the append must be refused."""
        st = scan_chain(data, self._key)
        if not st["_lines_ok"]:
            raise LedgerError("path %s: refusing to append to a broken chain at seq %s: %s"
                              % (self.path, st["broken_seq"], st["problem"]))
        info = dict(torn_tail_repaired=0, torn_tail_file=None, adopted=0, authenticated=self.keyed)
        if st["torn_tail"]:
            if not repair_torn_tail:
                raise LedgerError("path %s: refusing to append: torn tail at line %s (%s bytes, left by an interrupted "
                                  "write or a cut file): nothing was written. repair_torn_tail=true copies those bytes to "
                                  "%s.torn-<timestamp> and cuts them off before appending"
                                  % (self.path, st["torn_tail_line"], st["torn_tail_bytes"], self.path))
            info["torn_tail_repaired"] = st["torn_tail_bytes"]
        if self._key is None and st["keyed_entries"]:
            raise LedgerError("path %s: refusing to append without a key: the ledger's entries carry a mac (give "
                              "key, or set the environment variable %s)" % (self.path, KEY_ENV))
        adopted = None
        if self._key is not None and st["_unkeyed"]:
            if not adopt_unkeyed:
                raise LedgerError(
                    "path %s: refusing to append with a key: its %d entries have no mac (written without a key). "
                    "Start a new keyed ledger at another path (keep this one as it is), or set adopt_unkeyed=true to "
                    "continue this one: the first keyed entry then records that it adopted those %d entries and "
                    "their head hash" % (self.path, st["_unkeyed"], st["_unkeyed"]))
            adopted = {"entries": st["_unkeyed"], "head": st["_chain_head"]}
        verified, head = st["_verified"], st["_chain_head"]
        if expected_head is not None and expected_head != head:
            found = expected_head == GENESIS_HASH or any(e["hash"] == expected_head for e in verified)
            raise LedgerError("path %s: refusing to append: the head is seq %d (%s), not expected_head %s (%s)"
                              % (self.path, len(verified), head, expected_head,
                                 "entries were appended after it" if found else
                                 "not in the ledger: entries were removed from its end, or it is another ledger"))
        keep = st["_keep"]
        info.update(head=head, count=len(verified))
        if once:
            for entry in verified:
                if _same_content(entry, record):
                    return entry, bool(info["torn_tail_repaired"]), info, keep, False
        entry = dict(record)
        entry["seq"] = len(verified) + 1
        entry["ts"] = ts or utc_now()
        entry["prev_hash"] = head
        if adopted:
            entry["adopted"] = adopted
            info["adopted"] = adopted["entries"]
        if self._key is not None:
            entry["mac"] = entry_mac(entry, self._key)
        entry["hash"] = entry_hash(entry)
        info.update(head=entry["hash"], count=entry["seq"])
        return entry, True, info, keep, True


__all__ = ["Ledger", "OUTCOMES", "unfinished_attempts", "incomplete_rollbacks", "held_releases", "HAS_FCNTL",
           "FIELDS", "GENESIS_HASH", "HASH_RE", "KEY_ENV", "MAX_TEXT", "OPTIONAL_FIELDS", "REDACTED",
           "REQUIRED_FIELDS", "SECRET_KEY_RE", "TEXT_FIELDS", "LedgerError", "build_record", "canonical_json",
           "entry_hash", "entry_mac", "key_bytes", "normalize_head", "read_entries", "redact", "scan_chain",
           "utc_now", "verify_bytes"]


# The options of stagegate.rollout.rollout_ledger: the module and its action (which runs this in the controller's
# process when the task's connection is local) validate the same spec and call run_ledger().
ARGUMENT_SPEC = dict(
    path=dict(type="path", required=True),
    action=dict(type="str", default="append", choices=["append", "verify", "read", "show"]),
    key=dict(type="str", no_log=True, fallback=(env_fallback, [KEY_ENV])),
    adopt_unkeyed=dict(type="bool", default=False),
    repair_torn_tail=dict(type="bool", default=False),
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
)
REQUIRED_IF = [("action", "append", ("release", "phase", "event"))]


class LedgerRunError(LedgerError):
    """A refused call of rollout_ledger: ``str()`` is the message, ``result`` what the failed result also returns."""

    def __init__(self, msg, result=None):
        super(LedgerRunError, self).__init__(msg)
        self.result = result or {}


def run_ledger(p, check_mode=False, secrets=None, warn=None):
    """One call of rollout_ledger with the validated options ``p``: the result (a dict), or LedgerRunError.

    ``secrets`` (a set, optional) receives the raw values an appended record's evidence had redacted, for the
    caller to keep out of its output; ``warn`` (a callable) receives the warnings.
    """
    warn = warn or (lambda msg: None)
    try:
        ledger = Ledger(p["path"], key=p["key"])  # an empty key is refused, not taken for "no key"
        if p["action"] == "append":
            return _append(ledger, p, check_mode, secrets, warn)
        data = ledger.read_bytes()
        state = ledger.verify_data(data, expected_head=p["expected_head"])
    except LedgerRunError:
        raise
    except LedgerError as exc:
        raise LedgerRunError(str(exc))
    if state["keyed_entries"] and not ledger.keyed:
        warn("ledger %s has entries with a mac but no key was given: they were only hash-checked "
             "(authenticated=false)" % p["path"])
    if p["action"] == "verify":
        result = dict(changed=False, path=p["path"], **state)
        if not state["valid"] and p["fail_on_invalid"]:
            raise LedgerRunError("ledger %s is broken at seq %s: %s" % (p["path"], state["broken_seq"], state["problem"]),
                                 result)
        return result
    # read / show
    if p["last"] is not None and p["last"] < 0:
        raise LedgerRunError("last must be 0 or more, got %d" % p["last"])
    entries = read_entries(data, strict=False)
    state["unfinished"] = unfinished_attempts(entries)
    state["incomplete"] = incomplete_rollbacks(entries)
    state["held"] = held_releases(entries)
    if p["release_filter"] is not None:
        entries = [e for e in entries if e.get("release") == p["release_filter"]]
    if p["phase_filter"] is not None:
        entries = [e for e in entries if e.get("phase") == p["phase_filter"]]
    if p["last"] is not None:
        entries = entries[len(entries) - p["last"]:] if p["last"] else []
    state["entries"] = entries
    return dict(changed=False, path=p["path"], **state)


def _append(ledger, p, check_mode, secrets, warn):
    record, redacted, found = build_record(p["release"], p["phase"], p["event"], step=p["step"],
                                           decision=p["decision"], reason=p["reason"], evidence=p["evidence"])
    # the raw values stay out of every result, including the -vvv invocation
    if secrets is not None:
        secrets.update(v for v in found if len(v) >= 3)
    entry, changed, info = ledger.append(record, once=p["once"], check_mode=check_mode,
                                         expected_head=p["expected_head"], adopt_unkeyed=p["adopt_unkeyed"],
                                         repair_torn_tail=p["repair_torn_tail"])
    if info["torn_tail_repaired"]:
        warn("ledger %s ends with a torn tail of %d bytes; %s" % (
            p["path"], info["torn_tail_repaired"],
            "moved to %s and cut off" % info["torn_tail_file"] if info["torn_tail_file"]
            else "it would be moved to %s.torn-<timestamp> and cut off" % p["path"]))
    return dict(changed=changed, entry=entry, seq=entry["seq"], hash=entry["hash"], redacted=redacted,
                path=p["path"], **info)
