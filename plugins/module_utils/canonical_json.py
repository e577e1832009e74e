# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Canonical JSON: the one byte form the ledger hashes and the config fingerprint digests.

:func:`canonical_json` - sorted keys, no whitespace, UTF-8 (not ``\\u`` escapes), no NaN or Infinity; the
same data gives the same bytes on every machine and Python. :func:`check_json` refuses, before anything is
hashed or written, what has no such form (NaN, Infinity, non-string keys, objects), naming the path of the
offending value. Plain Python, no I/O.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import math


def canonical_json(obj):
    """Canonical JSON bytes: sorted keys, no whitespace, UTF-8, no NaN/Infinity (ValueError)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def check_json(value, path, error=ValueError):
    """Raise ``error`` naming ``path`` (``data.x``, ``evidence.a[1]``) at the first value with no canonical JSON
    form: NaN or Infinity, a key that is not a string, anything but strings, numbers, booleans, null, lists
    and mappings."""
    if value is None or isinstance(value, (bool, str, int)):
        return
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise error("%s: %r is not allowed (NaN and Infinity have no canonical JSON form)" % (path, value))
        return
    if isinstance(value, dict):
        for key, sub in value.items():
            if not isinstance(key, str):
                raise error("%s: key %r must be a string (canonical JSON sorts string keys)" % (path, key))
            check_json(sub, "%s.%s" % (path, key), error)
        return
    if isinstance(value, (list, tuple)):
        for i, sub in enumerate(value):
            check_json(sub, "%s[%d]" % (path, i), error)
        return
    raise error("%s: %s %r is not JSON data (use strings, numbers, booleans, null, lists, mappings)"
                % (path, type(value).__name__, value))
