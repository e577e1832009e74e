# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Canonical fingerprint of a release definition (data and files).

Each item gets its own SHA-256:

* ``data.<key>`` for every top-level key of the data mapping: SHA-256 of the
  canonical JSON (sorted keys, no whitespace, UTF-8, no NaN) of its value;
* ``file:<name>`` for every file: SHA-256 of its bytes.  A directory stands for
  every regular file under it (sorted, names relative to the directory given).
  ``<name>`` is the path relative to ``base_dir`` when one is given, else the
  path as given: use relative paths or ``base_dir`` for fingerprints that are
  equal across checkouts.

The fingerprint is the SHA-256 of the canonical JSON of
``{"version": 1, "items": {name: digest}}``, so it depends only on the
content, never on dict order, file order, timestamps or the machine.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os

from ansible_collections.stagegate.rollout.plugins.module_utils.canonical_json import canonical_json, check_json

FORMAT_VERSION = 1
CHUNK = 1 << 20


class FingerprintError(ValueError):
    """Bad input; the message names the item."""


def digest_data(value, path="data"):
    check_json(value, path, FingerprintError)
    return hashlib.sha256(canonical_json(value)).hexdigest()


def digest_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(CHUNK)
            if not chunk:
                break
            h.update(chunk)
    return h.hexdigest()


def _name(path, base_dir):
    if base_dir:
        rel = os.path.relpath(os.path.abspath(path), os.path.abspath(base_dir))
        if rel == os.pardir or rel.startswith(os.pardir + os.sep):
            raise FingerprintError("files: %s is outside base_dir %s" % (path, base_dir))
        return rel.replace(os.sep, "/")
    return os.path.normpath(path).replace(os.sep, "/")


def expand_files(paths, base_dir=None):
    """[(name, real path)] sorted by name; directories expanded to their regular files."""
    out = {}
    for path in paths:
        if not isinstance(path, str) or not path:
            raise FingerprintError("files: %r is not a path" % (path,))
        full = path
        if base_dir and not os.path.isabs(path):
            full = os.path.join(base_dir, path)
        if os.path.isdir(full):
            for root, dirs, files in os.walk(full):
                dirs.sort()
                for fname in sorted(files):
                    fpath = os.path.join(root, fname)
                    if os.path.isfile(fpath):
                        out[_name(fpath, base_dir) if base_dir else
                            _name(os.path.join(path, os.path.relpath(fpath, full)), None)] = fpath
        elif os.path.isfile(full):
            out[_name(full, base_dir) if base_dir else _name(path, None)] = full
        elif os.path.exists(full):
            raise FingerprintError("files: %s is neither a regular file nor a directory" % path)
        else:
            raise FingerprintError("files: %s does not exist" % path)
    return sorted(out.items())


def fingerprint(data=None, files=None, base_dir=None):
    """-> dict(fingerprint, items={name: digest}, count)."""
    if data is None and not files:
        raise FingerprintError("give data and/or files to fingerprint")
    items = {}
    if data is not None:
        if not isinstance(data, dict):
            items["data"] = digest_data(data)
        else:
            for key in sorted(data):
                if not isinstance(key, str):
                    raise FingerprintError("data: key %r must be a string" % (key,))
                items["data.%s" % key] = digest_data(data[key], "data.%s" % key)
    if files:
        if base_dir and not os.path.isdir(base_dir):
            raise FingerprintError("base_dir %s is not a directory" % base_dir)
        for name, path in expand_files(files, base_dir):
            try:
                items["file:%s" % name] = digest_file(path)
            except (IOError, OSError) as exc:
                raise FingerprintError("files: cannot read %s: %s" % (path, exc))
    fp = hashlib.sha256(canonical_json({"version": FORMAT_VERSION, "items": items})).hexdigest()
    return {"fingerprint": fp, "items": items, "count": len(items)}


def compare(items, expected_items):
    """Names of the items added, removed or changed between two item maps."""
    names = sorted(set(items) | set(expected_items))
    out = []
    for name in names:
        if name not in expected_items:
            out.append({"item": name, "change": "added"})
        elif name not in items:
            out.append({"item": name, "change": "removed"})
        elif items[name] != expected_items[name]:
            out.append({"item": name, "change": "changed"})
    return out
