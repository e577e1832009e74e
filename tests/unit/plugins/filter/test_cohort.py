# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cohort filter: stable, monotone, proportional, include/exclude, bad input."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.stagegate.rollout.plugins.filter.cohort import FilterModule, cohort, cohort_position

REPOS = ["org/repo-%04d" % i for i in range(5000)]


def test_registered_as_cohort():
    assert FilterModule().filters()["cohort"] is cohort


def test_position_definition():
    digest = hashlib.sha256(b"v2:org/repo-0001").hexdigest()
    assert cohort_position("org/repo-0001", "v2") == int(digest[:16], 16) / 2.0 ** 64


def test_deterministic_and_order_kept():
    a = cohort(REPOS, 10, seed="v2")
    assert a == cohort(list(REPOS), 10.0, seed="v2")
    assert a == [r for r in REPOS if r in set(a)]
    # the selection of an ID does not depend on the other IDs
    assert cohort(list(reversed(REPOS)), 10, seed="v2") == list(reversed(a))
    assert set(cohort(REPOS[:100], 10, seed="v2")) == set(a) & set(REPOS[:100])


def test_proportion_close_to_percent():
    for pct in (1, 5, 10, 25, 50):
        n = len(cohort(REPOS, pct, seed="v2"))
        expected = len(REPOS) * pct / 100.0
        sd = (len(REPOS) * pct / 100.0 * (1 - pct / 100.0)) ** 0.5
        assert abs(n - expected) < 4 * sd, (pct, n)


def test_monotone_as_percentage_grows():
    previous = set()
    for pct in [0, 0.5, 1, 5, 10, 25, 33.3, 50, 75, 99, 100]:
        current = set(cohort(REPOS, pct, seed="v2"))
        assert previous <= current, pct
        previous = current
    assert previous == set(REPOS)
    assert cohort(REPOS, 0, seed="v2") == []


def test_seed_reshuffles():
    a, b = set(cohort(REPOS, 10, seed="v2")), set(cohort(REPOS, 10, seed="v3"))
    assert a != b and len(a & b) < len(a) * 0.3


def test_include_exclude():
    base = cohort(REPOS, 10, seed="v2")
    outside = [r for r in REPOS if r not in base][:2]
    inside = base[:2]
    got = cohort(REPOS, 10, seed="v2", include=outside, exclude=[inside[0], outside[1]])
    assert outside[0] in got and outside[1] not in got and inside[0] not in got and inside[1] in got
    assert cohort(REPOS, 0, seed="v2", include=["org/repo-0007", "not-in-input"]) == ["org/repo-0007"]


def test_mappings_with_attribute_and_integer_ids():
    users = [{"login": "u%d" % i, "id": i} for i in range(200)]
    by_login = cohort(users, 20, seed="beta", attribute="login")
    assert by_login == [u for u in users if u["login"] in set(cohort(["u%d" % i for i in range(200)], 20, "beta"))]
    as_text = set(cohort([str(i) for i in range(200)], 20, "s"))
    assert cohort(list(range(200)), 20, "s") == [i for i in range(200) if str(i) in as_text]


@pytest.mark.parametrize("args, kwargs, message", [
    ((REPOS, 101), {}, "percent must be from 0 to 100, got 101"),
    ((REPOS, -1), {}, "percent must be from 0 to 100, got -1"),
    ((REPOS, "ten"), {}, "percent must be a number from 0 to 100, got 'ten'"),
    ((REPOS, True), {}, "percent must be a number"),
    ((REPOS, None), {}, "percent must be a number"),
    (("org/a,org/b", 10), {}, "the input must be a list of IDs, got str"),
    (([{"login": "a"}], 10), {}, r"item 0 is dict .*use attribute= for mappings"),
    (([{"login": "a"}], 10), {"attribute": "name"}, "item 0 has no attribute 'name'"),
    ((["a", None], 10), {}, "item 1 is null"),
    ((REPOS, 10), {"exclude": "org/repo-0001"}, "exclude must be a list of IDs, got str"),
    ((REPOS, 10), {"include": {"a": 1}}, "include must be a list of IDs, got dict"),
    ((REPOS, 10), {"seed": None}, "seed must be a string"),
])
def test_bad_input(args, kwargs, message):
    with pytest.raises(AnsibleFilterError, match=message):
        cohort(*args, **kwargs)
