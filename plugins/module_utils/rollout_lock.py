# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One rollout per target at a time: a lock file on a host every controller reaches (the load-balancer host).

The file holds its holder (release, phase, controller, user), a token that only the run holding it knows, when it
was taken and when it expires. A run takes it before its first change and gives it back at its end; a run killed
on the way leaves it behind until it expires (``ttl`` after it was last taken or refreshed) or a person breaks
it. A lock held by another, unexpired run refuses the second rollout, naming the holder. What to do is decided by
:func:`decide` (pure); :func:`acquire` and :func:`release` do the file I/O (``O_EXCL`` create, ``O_NOFOLLOW``,
mode 0600, atomic replace, re-read to confirm).
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import json
import os
import time

from ansible_collections.stagegate.rollout.plugins.module_utils.atomic_file import atomic_write


class LockError(Exception):
    """The lock cannot be taken (held by another run) or read; the message names the holder or the problem."""


def _iso(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)) if isinstance(ts, (int, float)) else "?"


def describe(lock, now):
    """One line about a lock's holder, for messages."""
    if not isinstance(lock, dict):
        return "an unreadable lock"
    h = lock.get("holder") or {}
    left = (lock.get("expires_at") or 0) - now
    return "%s of %s from %s (user %s) since %s, expires %s (%s)" % (
        h.get("phase", "?"), h.get("release", "?"), h.get("controller", "?"), h.get("user", "?"),
        _iso(lock.get("acquired_at")), _iso(lock.get("expires_at")),
        "in %d s" % left if left > 0 else "expired %d s ago" % -left)


def decide(existing, token, now, break_lock=False):
    """What acquiring means given the lock there (None: no lock; a non-dict: unreadable):
    ``acquire`` (free), ``refresh`` (ours), ``take_over`` (expired), ``break`` (``break_lock``) or ``held``."""
    if existing is None:
        return "acquire"
    if isinstance(existing, dict) and token and existing.get("token") == token:
        return "refresh"
    if break_lock:
        return "break"
    if isinstance(existing, dict) and isinstance(existing.get("expires_at"), (int, float)) \
            and existing["expires_at"] <= now:
        return "take_over"
    return "held"


def read(path):
    """The lock at ``path``: None when there is none, its dict, or the raw text when it is not a lock."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        if exc.errno == errno.ELOOP:
            raise LockError("%s is a symbolic link; a lock file must be a plain file" % path)
        raise LockError("cannot read the lock %s: %s" % (path, exc))
    with os.fdopen(fd, "rb") as fh:
        raw = fh.read().decode("utf-8", "replace")
    try:
        lock = json.loads(raw)
    except ValueError:
        return raw
    return lock if isinstance(lock, dict) else raw


def _create(path, content):
    """Create the lock only when there is none (O_EXCL); False when one appeared meanwhile."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except OSError as exc:
        if exc.errno == errno.EEXIST:
            return False
        raise LockError("cannot create the lock %s: %s" % (path, exc))
    with os.fdopen(fd, "wb") as fh:
        fh.write(content)
        fh.flush()
        os.fsync(fh.fileno())
    return True


def _replace(path, content):
    atomic_write(path, content, 0o600)


def acquire(path, token, holder, ttl, now=None, break_lock=False, check_mode=False):
    """Take the lock for ``token``; returns ``{"result": acquire|refresh|take_over|break, "previous": lock or
    None, "lock": the lock now}``. Raises LockError when another unexpired run holds it."""
    if not token:
        raise LockError("token: an empty token cannot hold a lock")
    if not isinstance(ttl, int) or ttl <= 0:
        raise LockError("ttl: %r is not a number of seconds above 0" % (ttl,))
    now = time.time() if now is None else now
    directory = os.path.dirname(path)
    if directory and not os.path.isdir(directory) and not check_mode:
        os.makedirs(directory, 0o700)
    existing = read(path)
    result = decide(existing, token, now, break_lock)
    if result == "held":
        raise LockError("one rollout per target at a time: the lock %s is held by %s. Wait for that run to end; if it "
                        "is gone (killed), the lock expires on its own, or break it with rollout_lock_break=true"
                        % (path, describe(existing, now)))
    lock = {"token": token, "holder": holder, "acquired_at": now, "expires_at": now + ttl}
    if result == "refresh" and isinstance(existing, dict):
        lock["acquired_at"] = existing.get("acquired_at", now)
    if check_mode:
        return {"result": result, "previous": existing, "lock": lock}
    content = (json.dumps(lock, sort_keys=True) + "\n").encode("utf-8")
    if result == "acquire":
        if not _create(path, content):  # another run created it between our read and our create
            raise LockError("one rollout per target at a time: the lock %s was taken meanwhile by %s"
                            % (path, describe(read(path), now)))
    else:
        _replace(path, content)
        mine = read(path)  # two runs taking over an expired lock at once: the last rename wins, the other fails
        if not isinstance(mine, dict) or mine.get("token") != token:
            raise LockError("one rollout per target at a time: the lock %s was taken meanwhile by %s"
                            % (path, describe(mine, now)))
    return {"result": result, "previous": existing if result != "acquire" else None, "lock": lock}


def release(path, token, check_mode=False):
    """Give the lock back when ``token`` holds it; returns True when it did (False: no lock, or another's)."""
    existing = read(path)
    if not isinstance(existing, dict) or existing.get("token") != token:
        return False
    if not check_mode:
        os.unlink(path)
    return True
