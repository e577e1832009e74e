# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The flags of a slot's env file (``KEY=value`` lines, as ``feature_flags`` and deploy_hosts write them) read
back and changed: ``parse()`` the text, ``changed()`` it with some flags set and some taken out. Used by
deploy_hosts' ``reload`` action (a running slot's flags rewritten and the program told to re-read them) and by the
rollback (the stable slots' flags given back)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")


class EnvFlagsError(ValueError):
    pass


def parse(text):
    """``KEY=value`` lines -> {KEY: value (str)}; blank lines and ``#`` comments are skipped, the last of a key
    wins. A line that is neither is refused, naming its number."""
    out = {}
    for number, line in enumerate((text or "").splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not _KEY.match(key):
            raise EnvFlagsError("env file line %d: %r is not KEY=value (accepted: KEY=value lines, # comments, blank "
                                "lines)" % (number, line[:80]))
        out[key] = value
    return out


def changed(text, set_flags=None, unset=None):
    """The flags of ``text`` with ``set_flags`` (a mapping) set and the names in ``unset`` taken out (a flag of a
    schema then gets its default when written)."""
    set_flags = set_flags or {}
    unset = unset or []
    if not isinstance(set_flags, dict):
        raise EnvFlagsError("set: %r is not accepted (accepted: a mapping of flag name -> value)" % (set_flags,))
    if isinstance(unset, str) or not isinstance(unset, (list, tuple)):
        raise EnvFlagsError("unset: %r is not accepted (accepted: a list of flag names)" % (unset,))
    both = sorted(set(set_flags) & set(unset))
    if both:
        raise EnvFlagsError("set and unset both name %s (accepted: a flag in one of them)" % ", ".join(both))
    out = parse(text)
    for name in unset:
        out.pop(name, None)
    out.update(set_flags)
    return out
