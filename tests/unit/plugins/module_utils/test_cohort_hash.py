# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils.cohort: the one hash the cohort filter and a consumer's event split share."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib

from ansible_collections.stagegate.rollout.plugins.filter import cohort as cohort_filter
from ansible_collections.stagegate.rollout.plugins.module_utils.cohort import cohort_position, in_cohort

KEYS = ["org/repo-%04d" % i for i in range(3000)]


def test_position_is_the_documented_hash():
    digest = hashlib.sha256(b"s1:org/repo-0042").hexdigest()
    assert cohort_position("org/repo-0042", "s1") == int(digest[:16], 16) / 2.0 ** 64
    # non-ASCII keys hash their UTF-8 bytes
    digest = hashlib.sha256(u"s:org/r\u00e9po".encode("utf-8")).hexdigest()
    assert cohort_position(u"org/r\u00e9po", "s") == int(digest[:16], 16) / 2.0 ** 64


def test_the_filter_uses_this_function_not_a_copy():
    assert cohort_filter.cohort_position is cohort_position
    assert cohort_filter.in_cohort is in_cohort


def test_filter_selection_equals_per_key_decision():
    """What the inventory draws with the filter is exactly what a service decides key by key."""
    include, exclude = ["org/repo-2999", "elsewhere"], ["org/repo-0001"]
    for pct in (0, 3, 10, 25, 100):
        drawn = cohort_filter.cohort(KEYS, pct, seed="v2", include=include, exclude=exclude)
        assert drawn == [k for k in KEYS if in_cohort(k, pct, "v2", include=set(include), exclude=set(exclude))]


def test_bounds_monotone_include_exclude_and_integer_keys():
    assert not any(in_cohort(k, 0, "v2") for k in KEYS)
    assert all(in_cohort(k, 100, "v2") for k in KEYS)
    for k in KEYS[:500]:
        assert in_cohort(k, 10, "v2") <= in_cohort(k, 25, "v2")
    outside = next(k for k in KEYS if not in_cohort(k, 10, "v2"))
    inside = next(k for k in KEYS if in_cohort(k, 10, "v2"))
    assert in_cohort(outside, 10, "v2", include={outside})
    assert not in_cohort(inside, 10, "v2", exclude={inside})
    assert not in_cohort(inside, 10, "v2", include={inside}, exclude={inside})  # exclude wins
    assert in_cohort(7, 50, "s") == in_cohort("7", 50, "s")
    share = sum(in_cohort(k, 30, "x") for k in KEYS) / float(len(KEYS))
    assert 0.27 < share < 0.33
