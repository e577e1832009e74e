# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Atomic file replacement: the one way the collection rewrites a file it owns (flags, fingerprints,
supervisord programs, locks, state files, the rollout metrics file).

:func:`atomic_write` writes a temporary file next to the target, ``fsync``s it, renames it over the target
and ``fsync``s the directory, so a reader sees the old content or the new, never part of it, and the new
content survives a crash once the call returns. It keeps what the replaced file had: its mode (unless a mode
is given), its owner and group (as far as the process may set them), and - when an ``AnsibleModule`` is
passed - its SELinux context, through ``module.atomic_move`` (which also honours ``unsafe_writes``).
:func:`write_json_state` is the state file of the judge and the drift monitor written that way.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import json
import os
import stat
import tempfile


class AtomicWriteError(ValueError):
    """The file cannot be written where asked (its directory does not exist); the message names the path."""


def fsync_dir(path):
    """``fsync`` the directory ``path`` (so a rename or a new file in it survives a crash); errors ignored -
    some file systems cannot sync a directory."""
    try:
        dfd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def _same_owner(tmp, st):
    """Give ``tmp`` the owner and group of ``st`` where the process may (root, or the owner itself)."""
    if (os.geteuid(), os.getegid()) == (st.st_uid, st.st_gid):
        return
    try:
        os.chown(tmp, st.st_uid, st.st_gid)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EACCES):
            raise


def atomic_write(path, data, mode=None, new_mode=0o644, module=None):
    """Replace ``path`` with ``data`` (text is written as UTF-8) all at once.

    ``mode``: the mode of the result; None keeps the replaced file's mode, or gives ``new_mode`` to a new
    file. The replaced file's owner and group are kept. ``module`` (an ``AnsibleModule``): the rename is
    ``module.atomic_move``, which keeps the SELinux context (a new file gets the default one) and fails the
    module itself when the rename fails.

    Raises :class:`AtomicWriteError` when the directory does not exist, OSError when the system refuses;
    the temporary file never stays behind.
    """
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise AtomicWriteError("path %s: directory %s does not exist" % (path, directory))
    try:
        before = os.stat(path)
    except OSError:
        before = None
    if mode is None:
        mode = stat.S_IMODE(before.st_mode) if before is not None else new_mode
    if not isinstance(data, bytes):
        data = data.encode("utf-8")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".%s." % os.path.basename(path), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        if before is not None:
            _same_owner(tmp, before)
        if module is not None:
            module.atomic_move(tmp, path)
            # atomic_move gives the replaced file's mode (or the umask's to a new file): set the one asked for
            os.chmod(path, mode)
        else:
            os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(directory)


def write_json_state(path, state, module, field="state_file"):
    """Write ``state`` as JSON (sorted keys; a new file gets mode 0600) to ``path`` unless it already holds
    exactly that; returns whether the content changed. Nothing is written in check mode.

    Raises :class:`AtomicWriteError` naming ``field`` and the path when the file cannot be written.
    """
    text = json.dumps(state, sort_keys=True, indent=1)
    try:
        with open(path) as fh:
            if fh.read() == text:
                return False
    except OSError:
        pass
    if module.check_mode:
        return True
    try:
        atomic_write(path, text, new_mode=0o600, module=module)
    except AtomicWriteError as exc:
        raise AtomicWriteError(str(exc).replace("path ", "%s " % field, 1))
    except OSError as exc:
        raise AtomicWriteError("%s %s: cannot write: %s" % (field, path, exc))
    return True
