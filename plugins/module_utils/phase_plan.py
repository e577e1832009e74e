# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a phase's plan asks of its target, checked before any change: the strategy (progressive or blue-green)
and what the phases run on kind hosts only. Each problem names the field, what is wrong and what is accepted.

``problems()`` returns every problem found (an empty list: the plan is fine); the phase skeleton asserts that list
is empty through the ``phase_plan_problems`` filter (roles/rollout_phase/tasks/check_target.yml). The plan's
shape (steps, weights, batches) is checked by ``rollout_target.plan()``; this module checks the choices between
the phase, the strategy and the target kind.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

STRATEGIES = ("progressive", "blue-green")
PHASES = ("staging", "canary", "production", "advanced")
TRAFFIC_PHASES = ("canary", "production", "advanced")
_WHOLE_SECONDS = re.compile(r"^[1-9][0-9]*\Z")


def _json(value):
    return json.dumps(value, sort_keys=True)


def strategy(given):
    """The phase's strategy as declared (``progressive`` when left out or empty)."""
    return (given or {}).get("strategy") or "progressive"


def strategy_problems(phase, given, plan, kind):
    """``given``: the inventory's ``rollout_<phase>``; ``plan``: it merged with the phase's defaults (the
    blue-green plan already derived: canary one step of 100 %, the others one batch)."""
    field = "rollout_%s" % phase
    chosen = strategy(given)
    if chosen not in STRATEGIES:
        return ["%s.strategy: %s is not accepted (accepted: %s)" % (field, _json(chosen), ", ".join(STRATEGIES))]
    if chosen != "blue-green":
        return []
    out = []
    if phase not in TRAFFIC_PHASES:
        out.append("%s.strategy: blue-green flips traffic, and %s moves none (accepted: progressive)" % (field, phase))
    elif phase == "canary" and "steps" in given:
        out.append("%s.steps: blue-green flips the whole backend at once, it has no steps (accepted: no steps; "
                   "%s.analysis_seconds says how long the canary slots take all the traffic)" % (field, field))
    elif phase != "canary" and "batches" in given:
        out.append("%s.batches: blue-green flips every host at once, it has no batches (accepted: no batches, or "
                   "strategy: progressive)" % field)
    else:
        seconds = ((plan.get("steps") or [{}])[0] if phase == "canary" else plan).get("analysis_seconds")
        if not _WHOLE_SECONDS.match(str(seconds)):
            out.append("%s.analysis_seconds: %s is not accepted (accepted: whole seconds > 0, how long the canary "
                       "slots take all the traffic before the gates)" % (field, _json(given.get("analysis_seconds", ""))))
    if kind == "kubernetes":
        out.append("%s.strategy: blue-green is run on kind hosts only (accepted on kind kubernetes: progressive; a "
                   "blue-green flip: the deploy_kubernetes role)" % field)
    return out


def kubernetes_problems(phase, plan, router=None, failure_policy="rollback", sentinels=0):
    """What the phases run on kind hosts only, refused on a kubernetes target."""
    field = "rollout_%s" % phase
    out = []
    if router == "blue-green":
        out.append("rollout_target.kubernetes.router.type: blue-green is not run by the phases yet (accepted: "
                   "gateway-api, ingress-nginx; a blue-green flip: the deploy_kubernetes role)")
    if plan.get("probes"):
        out.append("%s.probes: probes reach a slot on a host port (kind hosts); on kind kubernetes a slot is healthy "
                   "when its Deployment reports ready (accepted: no probes)" % field)
    if ((plan.get("chaos") or {}).get("drills")):
        out.append("%s.chaos.drills: chaos drills run on app hosts (kind hosts) (accepted on kind kubernetes: none)"
                   % field)
    if phase == "advanced" and sentinels:
        out.append("rollout_sentinels: sentinels probe the stable slot of each app host (kind hosts) (accepted on "
                   "kind kubernetes: none)")
    if failure_policy == "hold":
        out.append("rollout_on_fail / rollout_irreversible: hold is run on kind hosts only (accepted on kind "
                   "kubernetes: rollback)")
    return out


def problems(phase, given, plan, kind="hosts", router=None, failure_policy="rollback", sentinels=0):
    """Every problem of the phase's plan on a target of ``kind`` (``router``: the kubernetes router's type;
    ``failure_policy``: rollback or hold; ``sentinels``: how many sentinels the inventory declares)."""
    given = given or {}
    plan = plan or {}
    out = strategy_problems(phase, given, plan, kind)
    if kind == "kubernetes" and phase in PHASES:
        out += kubernetes_problems(phase, plan, router, failure_policy, sentinels)
    return out
