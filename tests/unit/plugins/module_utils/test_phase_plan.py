# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
import pytest

from ansible_collections.stagegate.rollout.plugins.filter.phase_plan_problems import phase_plan_problems
from ansible_collections.stagegate.rollout.plugins.module_utils.phase_plan import problems, strategy

CANARY_BG = {"steps": [{"weight": 100, "analysis_seconds": 60, "judge": False}]}
BATCH_BG = {"batches": ["100%"], "analysis_seconds": 60}


def test_progressive_and_a_good_blue_green_have_no_problem():
    assert strategy({}) == strategy({"strategy": None}) == strategy(None) == "progressive"
    assert problems("canary", {}, {"steps": [{"weight": 10, "analysis_seconds": 5}]}) == []
    assert problems("canary", {"strategy": "blue-green"}, CANARY_BG) == []
    assert problems("canary", {"strategy": "blue-green", "analysis_seconds": 6}, CANARY_BG) == []
    for phase in ("production", "advanced"):
        assert problems(phase, {"strategy": "blue-green"}, BATCH_BG) == []
        assert problems(phase, {"strategy": "progressive", "batches": [1, "100%"]}, BATCH_BG) == []


@pytest.mark.parametrize("phase, given, plan, expected", [
    ("canary", {"strategy": "big-bang"}, {}, 'rollout_canary.strategy: "big-bang" is not accepted (accepted: '
                                             'progressive, blue-green)'),
    ("staging", {"strategy": "blue-green"}, {}, "rollout_staging.strategy: blue-green flips traffic, and staging "
                                                "moves none (accepted: progressive)"),
    ("install", {"strategy": "blue-green"}, {}, "rollout_install.strategy: blue-green flips traffic, and install"),
    ("canary", {"strategy": "blue-green", "steps": [{"weight": 50}]}, CANARY_BG,
     "rollout_canary.steps: blue-green flips the whole backend at once, it has no steps"),
    ("canary", {"strategy": "blue-green", "steps": None}, CANARY_BG, "rollout_canary.steps: blue-green"),
    ("production", {"strategy": "blue-green", "batches": [1, "100%"]}, BATCH_BG,
     "rollout_production.batches: blue-green flips every host at once, it has no batches"),
    ("canary", {"strategy": "blue-green", "analysis_seconds": 0},
     {"steps": [{"weight": 100, "analysis_seconds": 0}]}, "rollout_canary.analysis_seconds: 0 is not accepted "
                                                          "(accepted: whole seconds > 0"),
    ("advanced", {"strategy": "blue-green", "analysis_seconds": "soon"}, {"analysis_seconds": "soon"},
     'rollout_advanced.analysis_seconds: "soon" is not accepted'),
    ("production", {"strategy": "blue-green", "analysis_seconds": 1.5}, {"analysis_seconds": 1.5},
     "rollout_production.analysis_seconds: 1.5 is not accepted"),
    ("production", {"strategy": "blue-green", "analysis_seconds": True}, {"analysis_seconds": True},
     "rollout_production.analysis_seconds: true is not accepted"),
])
def test_a_bad_strategy_names_its_field(phase, given, plan, expected):
    found = problems(phase, given, plan)
    assert len(found) == 1 and found[0].startswith(expected), found


def test_blue_green_on_kubernetes_is_refused_with_its_other_problems():
    found = problems("production", {"strategy": "blue-green", "batches": [1]}, BATCH_BG, kind="kubernetes",
                     router="gateway-api")
    assert [p.split(":")[0] for p in found] == ["rollout_production.batches", "rollout_production.strategy"], found
    assert "blue-green is run on kind hosts only" in found[1]


@pytest.mark.parametrize("phase, plan, kwargs, expected", [
    ("canary", {}, {"router": "blue-green"}, "rollout_target.kubernetes.router.type: blue-green is not run"),
    ("staging", {"probes": [{"url": "/healthz"}]}, {}, "rollout_staging.probes: probes reach a slot"),
    ("advanced", {"chaos": {"drills": [{"kind": "kill_slot"}]}}, {}, "rollout_advanced.chaos.drills: chaos drills"),
    ("advanced", {}, {"sentinels": 2}, "rollout_sentinels: sentinels probe the stable slot"),
    ("canary", {}, {"failure_policy": "hold"}, "rollout_on_fail / rollout_irreversible: hold is run on kind hosts"),
])
def test_what_runs_on_hosts_only_is_refused_on_kubernetes(phase, plan, kwargs, expected):
    found = problems(phase, {}, plan, kind="kubernetes", **kwargs)
    assert len(found) == 1 and found[0].startswith(expected), found
    assert problems(phase, {}, plan, kind="hosts", **kwargs) == []  # the same plan on hosts is fine


def test_kubernetes_allows_what_it_runs():
    assert problems("canary", {}, {"probes": [], "chaos": {}}, kind="kubernetes", router="gateway-api") == []
    assert problems("production", {}, {}, kind="kubernetes", router="ingress-nginx", sentinels=3) == []  # not advanced
    assert problems("install", {}, {"probes": [{"url": "/"}]}, kind="kubernetes", router="blue-green") == []


def test_the_filter_returns_every_problem():
    found = phase_plan_problems("advanced", {}, {"probes": [1], "chaos": {"drills": [1]}}, kind="kubernetes",
                                router="blue-green", failure_policy="hold", sentinels="1")
    assert len(found) == 5, found
    assert phase_plan_problems("canary", None, None) == []


def _events_plan(**changes):
    """A queue consumer's canary as an inventory declares it (docs/phases.md), with ``changes``."""
    arm = {"requests": "sum(x)", "errors": "sum(y)", "latency_buckets": "sum by (le) (z)"}
    given = {"split": "events", "steps": [{"weight": 30, "analysis_seconds": 40}], "thresholds": {},
             "flags": {"CODEX_EVENT_COHORT_PERCENT": 30, "CODEX_EVENT_COHORT_SEED": "v2"},
             "judge_queries": {"baseline": dict(arm), "canary": dict(arm)},
             "events": {"durable": "org-brain-canary", "side_flag": "CODEX_EVENTS",
                        "after_flag": "CODEX_EVENT_SPLIT_AFTER_SEQ", "until_flag": "CODEX_EVENT_SPLIT_UNTIL_SEQ",
                        "consume_flag": "CODEX_PUBLISH_ENABLED",
                        "cohort_flags": ["CODEX_EVENT_COHORT_PERCENT", "CODEX_EVENT_COHORT_SEED"]}}
    for key, value in changes.items():
        if value is None:
            given.pop(key, None)
        else:
            given[key] = value
    return given


SCHEMA = ["CODEX_EVENTS", "CODEX_EVENT_SPLIT_AFTER_SEQ", "CODEX_EVENT_SPLIT_UNTIL_SEQ", "CODEX_PUBLISH_ENABLED",
          "CODEX_EVENT_COHORT_PERCENT", "CODEX_EVENT_COHORT_SEED"]
NATS = {"stream": "REPO_EVENTS", "durable": "org-brain"}


def test_an_event_split_as_the_docs_declare_it_has_no_problem():
    given = _events_plan()
    assert problems("canary", given, given, schema=SCHEMA, nats=NATS) == []
    assert phase_plan_problems("canary", given, given, schema=SCHEMA, nats=NATS) == []
    # the HTTP split (the default) asks for none of it
    assert problems("canary", {"split": "http"}, {"steps": [{"weight": 10}]}, schema=[], nats={}) == []


@pytest.mark.parametrize("changes, expected", [
    ({"split": "queue"}, 'rollout_canary.split: "queue" is not accepted (accepted: http, events, both)'),
    ({"judge_queries": None}, "rollout_canary.judge_queries: no baseline.requests and no canary.requests (accepted "
                              "with split events: baseline and canary queries"),
    ({"judge_queries": {"baseline": {"requests": "a"}}}, "rollout_canary.judge_queries: no canary.requests"),
    ({"steps": None}, "rollout_canary.steps: left out (the defaults are HTTP weights) is not accepted with split "
                      "events (accepted: one step"),
    ({"steps": [{"weight": 10}, {"weight": 20}]}, "rollout_canary.steps: [{"),
    ({"steps": [{"weight": 100, "analysis_seconds": 5}]},
     "rollout_canary.steps[0].weight: 100 is not accepted with split events (accepted: the cohort's share"),
    ({"steps": [{"weight": 30, "judge": False}]}, "rollout_canary.steps[0].judge: false is not accepted"),
    ({"thresholds": {"error_rate": 0.05}},
     "rollout_canary.gates: none given, so the default gates would look at the canary slots' HTTP requests"),
    ({"events": None}, "rollout_canary.events: null is not accepted (accepted: a mapping with durable, side_flag, "
                       "after_flag, until_flag, consume_flag and cohort_flags)"),
    ({"events": {"durable": "c", "after_flag": "A", "until_flag": "U", "consume_flag": "C", "cohort_flags": ["P"]}},
     "rollout_canary.events.side_flag: null is not accepted (accepted: the name of the consumer's flag, e.g. "
     "EVENTS_SIDE (all | cohort | rest))"),
    ({"events": {"durable": "c", "side_flag": "A", "after_flag": "A", "until_flag": "U", "consume_flag": "C",
                 "cohort_flags": ["CODEX_EVENT_COHORT_SEED"]}},
     'rollout_canary.events: the split flags ["A", "A", "U", "C"] are not distinct'),
    ({"events": {"durable": "c", "side_flag": "S", "after_flag": "A", "until_flag": "U", "consume_flag": "C",
                 "cohort_flags": ["CODEX_EVENT_COHORT_INCLUDE"]}},
     'rollout_canary.events.cohort_flags: "CODEX_EVENT_COHORT_INCLUDE" is not in rollout_canary.flags'),
    ({"flags": {"CODEX_EVENT_COHORT_PERCENT": 30, "CODEX_EVENT_COHORT_SEED": "v2", "CODEX_EVENTS": "cohort"}},
     "rollout_canary.flags.CODEX_EVENTS: the phase sets this split flag itself (accepted: leave it out"),
    ({"events": dict(_events_plan()["events"], settle_seconds="soon")},
     'rollout_canary.events.settle_seconds: "soon" is not accepted (accepted: whole seconds > 0)'),
    ({"events": dict(_events_plan()["events"], side_flag="CODEX_SIDE")},
     'rollout_canary.events.side_flag: "CODEX_SIDE" is not a flag of rollout_flag_schema (accepted: a declared flag'),
    ({"events": dict(_events_plan()["events"], durable="org-brain")},
     'rollout_canary.events.durable: "org-brain" is the stable slots\' durable (rollout_target.nats.durable)'),
    ({"strategy": "blue-green"}, "rollout_canary.split: events splits the events between the stable and the canary "
                                 "slots; blue-green gives the canary everything"),
])
def test_a_bad_event_split_is_refused_naming_the_field_value_and_what_is_accepted(changes, expected):
    given = _events_plan(**changes)
    found = problems("canary", given, given, schema=SCHEMA, nats=NATS)
    assert any(p.startswith(expected) for p in found), found


def test_an_event_split_is_a_canary_on_kind_hosts_only():
    given = _events_plan()
    found = problems("canary", given, given, kind="kubernetes")
    assert found == ["rollout_canary.split: events is run on kind hosts only (the fences reload the slots' flags; "
                     "accepted on kind kubernetes: http)"]
    assert problems("production", {"split": "events"}, {}) == [
        "rollout_production.split: events splits the canary's events, and production has no canary share "
        "(accepted: http, or no split)"]
    assert problems("canary", given, given, nats={}) == [
        "rollout_target.nats: split events needs the target's stream and stable durable (accepted: nats with stream "
        "and durable)"]


def test_an_event_split_is_not_held():
    given = _events_plan()
    assert problems("canary", given, given, failure_policy="hold") == [
        "rollout_on_fail / rollout_irreversible: hold is not run with rollout_canary.split events (a held split would "
        "keep the stable slots off the cohort's events; accepted: rollback)"]


def _both_plan(**changes):
    """A canary of a service that serves HTTP and consumes events (docs/phases.md, split both), with ``changes``
    to its ``events``; the steps are the default HTTP weights."""
    events_plan = _events_plan()
    given = {"split": "both", "flags": events_plan["flags"],
             "events": dict(events_plan["events"], share=30, judge_queries=events_plan["judge_queries"])}
    for key, value in changes.items():
        if value is None:
            given["events"].pop(key, None)
        else:
            given["events"][key] = value
    return given


def test_a_split_of_both_as_the_docs_declare_it_has_no_problem():
    given = _both_plan()
    assert problems("canary", given, dict(given, thresholds={"error_rate": 0.05}), schema=SCHEMA, nats=NATS) == []
    given["steps"] = [{"weight": 10, "analysis_seconds": 60}, {"weight": 50, "analysis_seconds": 60}]
    assert problems("canary", given, given, schema=SCHEMA, nats=NATS) == []


@pytest.mark.parametrize("changes, expected", [
    ({"share": None}, "rollout_canary.events.share: null is not accepted with split both (accepted: the cohort's "
                      "share of the events in percent, 1..99"),
    ({"share": 100}, "rollout_canary.events.share: 100 is not accepted with split both"),
    ({"share": True}, "rollout_canary.events.share: true is not accepted with split both"),
    ({"judge_queries": None}, "rollout_canary.events.judge_queries: no baseline.requests and no canary.requests "
                              "(accepted with split both: baseline and canary queries of the two arms' event"),
    ({"judge_queries": {"baseline": {"requests": "a"}, "canary": {}}},
     "rollout_canary.events.judge_queries: no canary.requests"),
    ({"durable": "org-brain"}, 'rollout_canary.events.durable: "org-brain" is the stable slots\' durable'),
])
def test_a_bad_split_of_both_is_refused_naming_the_field_value_and_what_is_accepted(changes, expected):
    given = _both_plan(**changes)
    found = problems("canary", given, given, schema=SCHEMA, nats=NATS)
    assert any(p.startswith(expected) for p in found), found


def test_a_split_of_both_needs_a_judged_step_hosts_progressive_and_rollback():
    given = dict(_both_plan(), steps=[{"weight": 10, "judge": False}])
    assert problems("canary", given, given, schema=SCHEMA, nats=NATS) == [
        "rollout_canary.steps: no judged step (accepted with split both: at least one step with judge true; the "
        "judge decides on the requests and the events together)"]
    given = _both_plan()
    assert problems("canary", given, given, kind="kubernetes") == [
        "rollout_canary.split: both is run on kind hosts only (the fences reload the slots' flags; accepted on "
        "kind kubernetes: http)"]
    assert problems("canary", given, given, failure_policy="hold") == [
        "rollout_on_fail / rollout_irreversible: hold is not run with rollout_canary.split both (a held split would "
        "keep the stable slots off the cohort's events; accepted: rollback)"]
    assert problems("production", {"split": "both"}, {}) == [
        "rollout_production.split: both splits the canary's events, and production has no canary share "
        "(accepted: http, or no split)"]


def test_a_consume_flag_another_flag_requires_is_refused_with_the_schema():
    # pausing a side turns the consume flag off: refused on a slot where a flag requiring it is on (e.g. a stable
    # slot running the advanced phase's flags)
    schema = dict((name, {"type": "str"}) for name in SCHEMA)
    schema["GRAPH_API_ENABLED"] = {"type": "bool", "requires": ["CODEX_PUBLISH_ENABLED"]}
    given = _both_plan()
    assert problems("canary", given, given, schema=schema, nats=NATS) == [
        'rollout_canary.events.consume_flag: "CODEX_PUBLISH_ENABLED" is required by GRAPH_API_ENABLED in '
        "rollout_flag_schema: pausing a slot by turning it off is refused while GRAPH_API_ENABLED is on (accepted: "
        "a consume flag no flag requires)"]
    assert phase_plan_problems("canary", given, given, schema=schema, nats=NATS) == problems(
        "canary", given, given, schema=schema, nats=NATS)
    del schema["GRAPH_API_ENABLED"]
    assert problems("canary", given, given, schema=schema, nats=NATS) == []


def test_the_events_arm_fields_of_split_both_are_refused_with_split_events():
    given = _events_plan(events=dict(_events_plan()["events"], share=30))
    assert problems("canary", given, given, schema=SCHEMA, nats=NATS) == [
        "rollout_canary.events.share: given with split events (accepted with split both only; with split events the "
        "step's weight is the cohort's share and rollout_canary.judge_queries the event counters)"]


def test_the_judge_options_the_inventories_declare_have_no_problem():
    for judge in ({"alpha": 0.01, "interval": 2}, {"alpha": 0.01, "interval": 2, "error_abs_margin": 0.01,
                                                   "latency_margin": 0.25},
                  {"error_margin": "1.4", "min_requests": 200, "carry_evidence": False, "interval": 0.5}):
        assert problems("canary", {"judge": judge}, {}) == [], judge
    # the other phases have no judge: the key is theirs to ignore (rollout_phase does not read it)
    assert problems("production", {"judge": {"alpha": 7}}, {}) == []


@pytest.mark.parametrize("judge, expected", [
    ([0.01], "rollout_canary.judge: [0.01] is not accepted (accepted: a mapping of alpha, error_margin, "
             "error_abs_margin, latency_margin, min_requests, interval, carry_evidence)"),
    ({"alhpa": 0.01}, "rollout_canary.judge.alhpa: not an option of the judge (accepted: alpha, error_margin,"),
    ({"alpha": 1.5}, "rollout_canary.judge.alpha: 1.5 is not accepted (alpha must be a number strictly between 0 "
                     "and 1, got 1.5)"),
    ({"error_margin": 1.0}, "rollout_canary.judge.error_margin: 1.0 is not accepted (error_margin must be a ratio > 1"),
    ({"error_abs_margin": 1}, "rollout_canary.judge.error_abs_margin: 1 is not accepted (error_abs_margin must be an "
                              "error rate in [0, 1)"),
    ({"latency_margin": "wide"}, 'rollout_canary.judge.latency_margin: "wide" is not accepted (latency_margin must be '
                                 "a number)"),
    ({"latency_margin": True}, "rollout_canary.judge.latency_margin: true is not accepted (latency_margin must be a "
                               "relative margin > 0"),
    ({"min_requests": 2.5}, "rollout_canary.judge.min_requests: 2.5 is not accepted (min_requests must be a whole "
                            "number of canary requests >= 0"),
    ({"interval": 0}, "rollout_canary.judge.interval: 0 is not accepted (accepted: seconds > 0 between the judge's "
                      "looks)"),
    ({"carry_evidence": "maybe"}, 'rollout_canary.judge.carry_evidence: "maybe" is not accepted (accepted: true or '
                                  "false)"),
])
def test_a_bad_judge_option_is_refused_before_any_change_naming_the_field_value_and_what_is_accepted(judge, expected):
    found = problems("canary", {"judge": judge}, {})
    assert any(p.startswith(expected) for p in found), found
    assert len(found) == 1, found
