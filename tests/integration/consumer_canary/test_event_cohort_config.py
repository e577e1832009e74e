"""The demo service's event cohorts (CODEX_EVENTS): which events a slot takes, refused values. No network."""
import pytest

from demo.repos import REPOSITORIES
from demo.service import Config, ConfigError
from ansible_collections.stagegate.rollout.plugins.filter.cohort import cohort as cohort_filter

COHORT = {"CODEX_EVENT_COHORT_PERCENT": "30", "CODEX_EVENT_COHORT_SEED": "s1"}


def test_cohort_and_rest_split_every_repository_exactly_once_as_the_filter_draws_it():
    canary = Config(dict(COHORT, CODEX_EVENTS="cohort"), "v2")
    stable = Config(dict(COHORT, CODEX_EVENTS="rest"), "v1")
    drawn = cohort_filter(REPOSITORIES, 30, seed="s1")
    assert 0 < len(drawn) < len(REPOSITORIES)
    assert [r for r in REPOSITORIES if canary.takes(r, 1)] == drawn
    assert [r for r in REPOSITORIES if stable.takes(r, 1)] == [r for r in REPOSITORIES if r not in drawn]
    assert all(Config({}, "v1").takes(r, 1) for r in REPOSITORIES)  # default: every event
    assert Config(dict(COHORT, CODEX_EVENTS="all"), "v1").takes(drawn[0], 1)


def test_include_list_with_or_without_a_hashed_share():
    outside = next(r for r in REPOSITORIES if r not in cohort_filter(REPOSITORIES, 30, seed="s1"))
    only_list = Config({"CODEX_EVENTS": "cohort", "CODEX_EVENT_COHORT_INCLUDE": " %s , %s " % (
        REPOSITORIES[0], REPOSITORIES[1])}, "v2")
    assert [r for r in REPOSITORIES if only_list.takes(r, 1)] == list(REPOSITORIES[:2])
    both = Config(dict(COHORT, CODEX_EVENTS="cohort", CODEX_EVENT_COHORT_INCLUDE=outside), "v2")
    assert [r for r in REPOSITORIES if both.takes(r, 1)] == cohort_filter(REPOSITORIES, 30, seed="s1", include=[outside])
    assert not Config(dict(COHORT, CODEX_EVENTS="rest", CODEX_EVENT_COHORT_INCLUDE=outside), "v1").takes(outside, 1)
    # a version-suffixed key applies to that version only, as every other knob
    assert Config({"CODEX_EVENTS__V2": "cohort", "CODEX_EVENT_COHORT_PERCENT": "100"}, "v2").event_side == "cohort"
    assert Config({"CODEX_EVENTS__V2": "cohort", "CODEX_EVENT_COHORT_PERCENT": "100"}, "v1").event_side == "all"


def test_the_split_holds_between_its_fences_only():
    drawn = cohort_filter(REPOSITORIES, 30, seed="s1")
    inside, outside = drawn[0], next(r for r in REPOSITORIES if r not in drawn)
    fences = dict(COHORT, CODEX_EVENT_SPLIT_AFTER_SEQ="100", CODEX_EVENT_SPLIT_UNTIL_SEQ="200")
    canary = Config(dict(fences, CODEX_EVENTS="cohort"), "v2")
    stable = Config(dict(fences, CODEX_EVENTS="rest"), "v1")
    for seq, canary_takes in ((1, False), (100, False), (101, True), (200, True), (201, False)):
        assert canary.takes(inside, seq) is canary_takes, seq
        assert stable.takes(inside, seq) is not canary_takes, seq  # one of the two, never both, never neither
        assert not canary.takes(outside, seq) and stable.takes(outside, seq)
    open_end = Config(dict(COHORT, CODEX_EVENTS="cohort", CODEX_EVENT_SPLIT_AFTER_SEQ="100"), "v2")
    assert open_end.takes(inside, 10 ** 9) and not open_end.takes(inside, 100)
    assert open_end.events()["until_seq"] is None and canary.events()["until_seq"] == 200


@pytest.mark.parametrize("values, message", [
    ({"CODEX_EVENT_SPLIT_AFTER_SEQ": "-1"}, r"CODEX_EVENT_SPLIT_AFTER_SEQ='-1' is not a stream sequence \(accepted: a whole"),
    ({"CODEX_EVENT_SPLIT_UNTIL_SEQ": "x"}, "CODEX_EVENT_SPLIT_UNTIL_SEQ='x' is not a stream sequence"),
    ({"CODEX_EVENT_SPLIT_AFTER_SEQ": "5", "CODEX_EVENT_SPLIT_UNTIL_SEQ": "5"},
     "CODEX_EVENT_SPLIT_UNTIL_SEQ=5 must be above CODEX_EVENT_SPLIT_AFTER_SEQ=5"),
    ({"CODEX_EVENTS": "canary"}, r"CODEX_EVENTS='canary' is not accepted \(accepted: all, cohort, rest\)"),
    ({"CODEX_EVENTS": "cohort"}, "CODEX_EVENTS=cohort needs a cohort: CODEX_EVENT_COHORT_PERCENT above 0"),
    ({"CODEX_EVENTS": "rest", "CODEX_EVENT_COHORT_PERCENT": "0"}, "CODEX_EVENTS=rest needs a cohort"),
    ({"CODEX_EVENTS": "cohort", "CODEX_EVENT_COHORT_PERCENT": "101"},
     r"CODEX_EVENT_COHORT_PERCENT='101' is out of range \(accepted: 0..100\)"),
    ({"CODEX_EVENT_COHORT_PERCENT": "ten"}, "CODEX_EVENT_COHORT_PERCENT='ten' is not a number"),
])
def test_bad_values_refused_naming_the_key_the_value_and_what_is_accepted(values, message):
    with pytest.raises(ConfigError, match=message):
        Config(values, "v2")
