# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stable hashed cohorts: the one place that decides whether a key (a repository, a user) is in a cohort.

The ``stagegate.rollout.cohort`` filter selects IDs with it in the inventory; a service that splits its
work between two versions (a queue consumer's canary takes the events of its cohort, the stable version the
rest; docs/phases.md, "Queue-consumer canaries") evaluates the same function on each event's key, so the
cohort the inventory draws and the events a version takes are the same set. Stdlib only: a service can load
this file without Ansible.

A key's position is ``int(sha256(seed + ":" + key)[:16], 16) / 2**64``, a number in [0, 1) that depends only
on the seed and the key: deterministic on every machine and Python version, and monotone (every key in the
cohort at 10 % is in it at 25 %). Keys in ``include`` are always in, keys in ``exclude`` never are (exclude
wins).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib


def cohort_position(key, seed=""):
    """The key's stable position in [0, 1) for this seed (``key`` and ``seed`` as text)."""
    text = u"%s:%s" % (seed, key)
    digest = hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()
    return int(digest[:16], 16) / float(2 ** 64)


def in_cohort(key, percent, seed="", include=(), exclude=()):
    """Whether ``key`` is in the cohort of ``percent`` % (0 to 100) drawn with ``seed``.

    ``include`` and ``exclude`` are collections of keys as text; the caller validates ``percent``.
    """
    key = str(key)
    if key in exclude:
        return False
    if key in include:
        return True
    return cohort_position(key, seed) < float(percent) / 100.0
