# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a phase's plan asks of its target, checked before any change: the strategy (progressive or blue-green)
and what the phases run on kind hosts only. Each problem names the field, what is wrong and what is accepted.

``problems()`` returns every problem found (an empty list: the plan is fine); the phase skeleton asserts that list
is empty through the ``phase_plan_problems`` filter (roles/rollout_phase/tasks/check_target.yml). The plan's
shape (steps, weights, batches) is checked by ``rollout_target.plan()``; this module checks the choices between
the phase, the strategy and the target kind, and a queue consumer's canary (``split: events``: one step whose
weight is the cohort's share of the events, the judge's queries and the names of the consumer's split flags from
the inventory, kind hosts only; ``split: both``: the steps' HTTP share and a cohort of the events together, the
events arm's share and judge queries in ``events``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

from ansible_collections.stagegate.rollout.plugins.module_utils.judge_inputs import (
    JUDGE_DEFAULTS, JudgeError, validate_options)

STRATEGIES = ("progressive", "blue-green")
SPLITS = ("http", "events", "both")
# rollout_canary.events keys of split both only (with split events: the step's weight and rollout_canary.judge_queries)
BOTH_EVENT_FIELDS = ("share", "judge_queries")
# rollout_canary.events: the names of the consumer's split flags (the inventory's; no service is special)
EVENT_FLAG_FIELDS = ("side_flag", "after_flag", "until_flag", "consume_flag")
EVENT_SECONDS_DEFAULTS = {"settle_seconds": 2, "drain_seconds": 60}
PHASES = ("staging", "canary", "production", "advanced")
TRAFFIC_PHASES = ("canary", "production", "advanced")
_WHOLE_SECONDS = re.compile(r"^[1-9][0-9]*\Z")
# rollout_canary.judge: the canary_judge options the canary phase passes on (roles/phase_canary/tasks/step.yml)
JUDGE_NUMBER_KEYS = ("alpha", "error_margin", "error_abs_margin", "latency_margin", "min_requests")
JUDGE_KEYS = JUDGE_NUMBER_KEYS + ("interval", "carry_evidence")


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


def split(given):
    """How the canary splits the work (``http`` when left out or empty)."""
    return (given or {}).get("split") or "http"


def _judge_arm_missing(queries, arm):
    return not isinstance(queries, dict) or not isinstance(queries.get(arm), dict) \
        or not queries[arm].get("requests")


def _event_config_problems(field, events, flags, schema):
    """``rollout_canary.events``: the canary's durable, the split flags' names and the cohort flags."""
    out = []
    if not isinstance(events, dict):
        return ["%s.events: %s is not accepted (accepted: a mapping with durable, %s and cohort_flags)"
                % (field, _json(events), ", ".join(EVENT_FLAG_FIELDS))]
    if not isinstance(events.get("durable"), str) or not events.get("durable"):
        out.append("%s.events.durable: %s is not accepted (accepted: the name of the canary slots' own JetStream "
                   "durable, e.g. orders-worker-canary)" % (field, _json(events.get("durable"))))
    names = []
    for key in EVENT_FLAG_FIELDS:
        name = events.get(key)
        if not isinstance(name, str) or not name:
            out.append("%s.events.%s: %s is not accepted (accepted: the name of the consumer's flag, e.g. %s)"
                       % (field, key, _json(name), _FLAG_EXAMPLES[key]))
        else:
            names.append(name)
    if len(set(names)) != len(names):
        out.append("%s.events: the split flags %s are not distinct (accepted: four different flag names)"
                   % (field, _json(names)))
    cohort = events.get("cohort_flags")
    if not isinstance(cohort, list) or not cohort or not all(isinstance(n, str) and n for n in cohort):
        out.append("%s.events.cohort_flags: %s is not accepted (accepted: a non-empty list of the flags that draw the "
                   "cohort, given in %s.flags, e.g. [COHORT_PERCENT, COHORT_SEED])"
                   % (field, _json(cohort), field))
        cohort = []
    for name in cohort:
        if name not in flags:
            out.append("%s.events.cohort_flags: %s is not in %s.flags (accepted: flags the phase gives both sides, "
                       "given in %s.flags)" % (field, _json(name), field, field))
    for name in [events.get(k) for k in EVENT_FLAG_FIELDS[:3]]:
        if isinstance(name, str) and name in flags:
            out.append("%s.flags.%s: the phase sets this split flag itself (accepted: leave it out of %s.flags)"
                       % (field, name, field))
    if schema is not None:
        for key, name in zip(EVENT_FLAG_FIELDS, [events.get(k) for k in EVENT_FLAG_FIELDS]):
            if isinstance(name, str) and name and name not in schema:
                out.append("%s.events.%s: %s is not a flag of rollout_flag_schema (accepted: a declared flag; "
                           "declared: %s)" % (field, key, _json(name), ", ".join(sorted(schema)) or "none"))
        out += _consume_flag_required(field, events.get("consume_flag"), schema)
    for key in EVENT_SECONDS_DEFAULTS:
        if key in events and not _WHOLE_SECONDS.match(str(events[key])):
            out.append("%s.events.%s: %s is not accepted (accepted: whole seconds > 0)"
                       % (field, key, _json(events[key])))
    return out


def _consume_flag_required(field, name, schema):
    """The consume flag pauses a side by going false: a flag that ``requires`` it (rollout_flag_schema) would make
    that reload refused while it is on - e.g. on a stable slot that runs a later phase's flags."""
    if not isinstance(schema, dict) or not isinstance(name, str):
        return []
    needing = sorted(flag for flag, spec in schema.items()
                     if isinstance(spec, dict) and name in (spec.get("requires") or []))
    if not needing:
        return []
    return ["%s.events.consume_flag: %s is required by %s in rollout_flag_schema: pausing a slot by turning it off "
            "is refused while %s on (accepted: a consume flag no flag requires)"
            % (field, _json(name), ", ".join(needing), ", ".join(needing) + (" is" if len(needing) == 1 else " are"))]


_FLAG_EXAMPLES = {"side_flag": "EVENTS_SIDE (all | cohort | rest)",
                  "after_flag": "EVENTS_AFTER_SEQ", "until_flag": "EVENTS_UNTIL_SEQ",
                  "consume_flag": "CONSUMER_ENABLED (false pauses the consumer)"}


def _events_only_problems(field, given, plan):
    """``split: events``: the one step is the cohort's share, the judge's queries are the event counters."""
    out = []
    queries = given.get("judge_queries")
    missing = [arm for arm in ("baseline", "canary") if _judge_arm_missing(queries, arm)]
    if missing:
        out.append("%s.judge_queries: %s (accepted with split events: baseline and canary queries of the two arms' "
                   "event counters, each with requests, errors and latency_buckets; the target's defaults count HTTP "
                   "requests)" % (field, "no " + " and no ".join("%s.requests" % a for a in missing)))
    steps = given.get("steps")
    if not isinstance(steps, list) or len(steps) != 1:
        out.append("%s.steps: %s is not accepted with split events (accepted: one step whose weight is the cohort's "
                   "share of the events in percent, below 100; the cohort does not change during the phase)"
                   % (field, "left out (the defaults are HTTP weights)" if steps is None else _json(steps)))
    else:
        weight = (steps[0] or {}).get("weight") if isinstance(steps[0], dict) else None
        if not _percent(weight):
            out.append("%s.steps[0].weight: %s is not accepted with split events (accepted: the cohort's share of "
                       "the events in percent, 1..99)" % (field, _json(weight)))
        elif isinstance(steps[0], dict) and steps[0].get("judge") is False:
            out.append("%s.steps[0].judge: false is not accepted with split events (accepted: true; the judge "
                       "decides on the events)" % field)
    if not plan.get("gates") and plan.get("thresholds"):
        out.append("%s.gates: none given, so the default gates would look at the canary slots' HTTP requests, which "
                   "take no traffic with split events (no data fails them) (accepted: gates on the event metrics, or "
                   "thresholds: {} for none)" % field)
    events = given.get("events") if isinstance(given.get("events"), dict) else {}
    for key in BOTH_EVENT_FIELDS:
        if key in events:
            out.append("%s.events.%s: given with split events (accepted with split both only; with split events the "
                       "step's weight is the cohort's share and %s.judge_queries the event counters)"
                       % (field, key, field))
    return out


def _both_problems(field, given):
    """``split: both``: the steps are HTTP weights; the events arm has its own share and judge queries."""
    events = given.get("events") if isinstance(given.get("events"), dict) else {}
    out = []
    if not _percent(events.get("share")):
        out.append("%s.events.share: %s is not accepted with split both (accepted: the cohort's share of the events "
                   "in percent, 1..99; the events judge's expected canary share)" % (field, _json(events.get("share"))))
    queries = events.get("judge_queries")
    missing = [arm for arm in ("baseline", "canary") if _judge_arm_missing(queries, arm)]
    if missing:
        out.append("%s.events.judge_queries: %s (accepted with split both: baseline and canary queries of the two "
                   "arms' event counters, each with requests, errors and latency_buckets)"
                   % (field, "no " + " and no ".join("%s.requests" % a for a in missing)))
    steps = given.get("steps")
    if isinstance(steps, list) and not any(isinstance(s, dict) and s.get("judge", True) is not False for s in steps):
        out.append("%s.steps: no judged step (accepted with split both: at least one step with judge true; the "
                   "judge decides on the requests and the events together)" % field)
    return out


def _percent(value):
    return not isinstance(value, bool) and bool(_WHOLE_SECONDS.match(str(value))) and 1 <= int(value) <= 99


def split_problems(phase, given, plan, kind="hosts", schema=None, nats=None, failure_policy="rollback"):
    """``rollout_<phase>.split``: ``http`` (the canary slots' share of the HTTP traffic), ``events`` (a queue
    consumer's canary: HTTP weight 0, the canary slots take a cohort of the events) or ``both`` (the steps' HTTP
    share and a cohort of the events, judged together). ``schema``: ``rollout_flag_schema`` or its flag names
    (None: not checked; the schema itself: the flags that require the consume flag checked too); ``nats``: the target's ``nats`` section (None: not checked)."""
    field = "rollout_%s" % phase
    chosen = split(given)
    if chosen not in SPLITS:
        return ["%s.split: %s is not accepted (accepted: %s)" % (field, _json(chosen), ", ".join(SPLITS))]
    if chosen == "http":
        return []
    if phase != "canary":
        return ["%s.split: %s splits the canary's events, and %s has no canary share (accepted: http, or no "
                "split)" % (field, chosen, phase)]
    out = []
    if kind == "kubernetes":
        out.append("%s.split: %s is run on kind hosts only (the fences reload the slots' flags; accepted on "
                   "kind kubernetes: http)" % (field, chosen))
    if failure_policy == "hold":
        out.append("rollout_on_fail / rollout_irreversible: hold is not run with %s.split %s (a held split "
                   "would keep the stable slots off the cohort's events; accepted: rollback)" % (field, chosen))
    if strategy(given) == "blue-green":
        out.append("%s.split: %s splits the events between the stable and the canary slots; blue-green gives "
                   "the canary everything (accepted with split %s: strategy progressive)" % (field, chosen, chosen))
    out += _events_only_problems(field, given, plan) if chosen == "events" else _both_problems(field, given)
    out += _event_config_problems(field, given.get("events"), plan.get("flags") or {}, schema)
    if nats is not None:
        if not (nats or {}).get("stream") or not (nats or {}).get("durable"):
            out.append("rollout_target.nats: split %s needs the target's stream and stable durable (accepted: "
                       "nats with stream and durable)" % chosen)
        elif isinstance(given.get("events"), dict) and given["events"].get("durable") == nats.get("durable"):
            out.append("%s.events.durable: %s is the stable slots' durable (rollout_target.nats.durable) (accepted: "
                       "another durable, the canary slots' own)" % (field, _json(nats.get("durable"))))
    return out


def _positive_number(value):
    try:
        return not isinstance(value, bool) and 0 < float(value) < float("inf")
    except (TypeError, ValueError):
        return False


def judge_problems(phase, given):
    """``rollout_canary.judge``: a mapping of the canary_judge options the phase passes on, each value one the judge
    accepts (``judge_inputs.validate_options``); checked here so a bad value is refused before any change, not at the
    first judged step."""
    judge = (given or {}).get("judge")
    if phase != "canary" or judge is None:
        return []
    field = "rollout_%s.judge" % phase
    if not isinstance(judge, dict):
        return ["%s: %s is not accepted (accepted: a mapping of %s)" % (field, _json(judge), ", ".join(JUDGE_KEYS))]
    out = ["%s.%s: not an option of the judge (accepted: %s)" % (field, key, ", ".join(JUDGE_KEYS))
           for key in sorted(set(judge) - set(JUDGE_KEYS))]
    for key in JUDGE_NUMBER_KEYS:
        if key not in judge:
            continue
        try:
            value = judge[key] if isinstance(judge[key], bool) else float(judge[key])
            if key == "min_requests" and (value != int(value) or value < 0):
                raise JudgeError("min_requests must be a whole number of canary requests >= 0, got %r" % (judge[key],))
            validate_options(dict(JUDGE_DEFAULTS, **{key: value}))
        except (TypeError, ValueError) as exc:  # JudgeError is a ValueError
            reason = str(exc) if isinstance(exc, JudgeError) else "%s must be a number" % key
            out.append("%s.%s: %s is not accepted (%s)" % (field, key, _json(judge[key]), reason))
    if "interval" in judge and not _positive_number(judge["interval"]):
        out.append("%s.interval: %s is not accepted (accepted: seconds > 0 between the judge's looks)"
                   % (field, _json(judge["interval"])))
    if "carry_evidence" in judge and str(judge["carry_evidence"]).lower() not in ("true", "false", "yes", "no"):
        out.append("%s.carry_evidence: %s is not accepted (accepted: true or false)"
                   % (field, _json(judge["carry_evidence"])))
    return out


def problems(phase, given, plan, kind="hosts", router=None, failure_policy="rollback", sentinels=0, schema=None,
             nats=None):
    """Every problem of the phase's plan on a target of ``kind`` (``router``: the kubernetes router's type;
    ``failure_policy``: rollback or hold; ``sentinels``: how many sentinels the inventory declares; ``schema``: the
    names of rollout_flag_schema and ``nats``: the target's nats section, for the event split, None: not checked)."""
    given = given or {}
    plan = plan or {}
    out = strategy_problems(phase, given, plan, kind)
    out += split_problems(phase, given, plan, kind, schema, nats, failure_policy)
    out += judge_problems(phase, given)
    if kind == "kubernetes" and phase in PHASES:
        out += kubernetes_problems(phase, plan, router, failure_policy, sentinels)
    return out
