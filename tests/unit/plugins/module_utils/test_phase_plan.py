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
