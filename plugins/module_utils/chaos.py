# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Chaos drills of the advanced phase: the plan (checked before any change), what a drill measured, the score.

A drill breaks one real thing on the user's target and checks the recovery (``roles/rollout_phase/tasks/chaos*.yml``
runs them; nothing here does I/O):

* ``kill_slot`` - SIGKILL the process of one host's slot (``deploy_hosts`` action ``kill``): its supervisor must run
  it again healthy within ``recovery_seconds``, HAProxy must see it running again, and the clients must not see
  more than ``max_error_ratio`` of 5xx answers from the backend meanwhile (HAProxy's show-stat counters of every
  server, before and after: retries and redispatch hide a dead server from clients; no second server hides
  nothing).
* ``freeze_consumer`` - SIGSTOP the process of one host's slot for ``seconds`` while events flow, then SIGCONT:
  JetStream redelivers what it did not acknowledge, and within ``recovery_seconds`` the durable consumer must have
  nothing waiting for an acknowledgement and no more pending events than ``max_pending``. Needs the target's NATS.
* ``metrics_unreachable`` - the phase's first gate evaluated against a metrics provider that does not answer
  (``url``, default a closed loopback port; the user's provider is never touched): the gate must fail closed
  (never ``pass``).

A drill on a ``canary`` slot (``kill_slot``, ``freeze_consumer``) borrows that slot for the drill, so it runs on a
settled target too (one host with a stopped canary slot, as after the advanced phase's deploy): when HAProxy does not
see the slot running, the drill starts it with the phase's release and flags (what the stable slots run by then),
gives it ``share`` % of its host's traffic (a weight beside the host's stable weight; ``kill_slot`` default 10,
``freeze_consumer`` default 0), and afterwards - also when the drill failed - puts the slot's weight back and stops
the slot again if it started it. A drill whose slot did not start, got no weight, or was not put back fails. A
``stable`` slot is drilled as it runs (no ``share``): on a single host, killing it leaves no server to redispatch to.

Each drill is a ``chaos`` ledger entry; the phase promotes only when the share of drills that recovered is at
least ``min_success`` (the seed: more than 95 %).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

KINDS = ("kill_slot", "freeze_consumer", "metrics_unreachable")
SLOTS = ("stable", "canary")
# where the drills are declared (error messages name the field)
FIELD = "rollout_advanced.chaos"
UNREACHABLE_URL = "http://127.0.0.1:1"
# a borrowed canary slot's share of its host's traffic, in percent: default per kind, the highest accepted
SHARE_DEFAULT = {"kill_slot": 10, "freeze_consumer": 0}
SHARE_MAX = 50


class ChaosError(ValueError):
    """A drill plan that cannot run; the message names the field, the value and what is accepted."""


def _number(where, value, low, high, integer=False):
    if isinstance(value, bool):
        raise ChaosError("%s: %r is not accepted (accepted: a number from %s to %s)" % (where, value, low, high))
    try:
        num = int(value) if integer else float(value)
    except (TypeError, ValueError):
        num = None
    if num is None or (integer and str(value).strip() != str(num)) or not low <= num <= high:
        raise ChaosError("%s: %r is not accepted (accepted: a %s from %s to %s)"
                         % (where, value, "whole number" if integer else "number", low, high))
    return num


def plan(chaos, app_hosts, has_nats=False):
    """``rollout_advanced.chaos`` -> ``{min_success, drills: [drill with every default filled in]}``.

    ``chaos`` is ``{min_success, drills: [{name, kind, ...}]}`` (None or {} - no drills); ``app_hosts`` the
    target's app hosts in order (a drill's ``host`` defaults to the last one). Raises ChaosError.
    """
    chaos = chaos or {}
    if not isinstance(chaos, dict):
        raise ChaosError("%s: %r is not accepted (accepted: a mapping with drills and min_success)" % (FIELD, chaos))
    unknown = sorted(set(chaos) - {"drills", "min_success"})
    if unknown:
        raise ChaosError("%s: unknown key(s) %s (accepted: drills, min_success)" % (FIELD, ", ".join(unknown)))
    hosts = list(app_hosts or [])
    drills = chaos.get("drills") or []
    if not isinstance(drills, list):
        raise ChaosError("%s.drills: %r is not a list of drills" % (FIELD, drills))
    out = {"min_success": _number(FIELD + ".min_success", chaos.get("min_success", 0.95), 0, 1), "drills": []}
    names = set()
    for i, drill in enumerate(drills):
        out["drills"].append(_drill("%s.drills[%d]" % (FIELD, i), drill, hosts, has_nats, names))
    return out


def _drill(where, drill, hosts, has_nats, names):
    if not isinstance(drill, dict):
        raise ChaosError("%s: %r is not a drill (a mapping with name and kind)" % (where, drill))
    kind = drill.get("kind")
    if kind not in KINDS:
        raise ChaosError("%s.kind: %r is not accepted (accepted: %s)" % (where, kind, ", ".join(KINDS)))
    accepted = {"name", "kind", "recovery_seconds"} | {
        "kill_slot": {"host", "slot", "max_error_ratio", "share"},
        "freeze_consumer": {"host", "slot", "seconds", "max_pending", "share"},
        "metrics_unreachable": {"url"}}[kind]
    unknown = sorted(set(drill) - accepted)
    if unknown:
        raise ChaosError("%s: unknown key(s) %s for kind %s (accepted: %s)"
                         % (where, ", ".join(unknown), kind, ", ".join(sorted(accepted))))
    name = drill.get("name")
    if not isinstance(name, str) or not name.strip() or name in names:
        raise ChaosError("%s.name: %r is not accepted (accepted: a name of its own, not empty)" % (where, name))
    names.add(name)
    out = {"name": name, "kind": kind,
           "recovery_seconds": _number(where + ".recovery_seconds", drill.get("recovery_seconds", 30), 1, 3600, True)}
    if kind in ("kill_slot", "freeze_consumer"):
        if not hosts:
            raise ChaosError("%s: the target has no app hosts to run the drill on" % where)
        host = drill.get("host", hosts[-1])
        if host not in hosts:
            raise ChaosError("%s.host: %r is not an app host of the target (app hosts: %s)"
                             % (where, host, ", ".join(hosts)))
        slot = drill.get("slot", "stable")
        if slot not in SLOTS:
            raise ChaosError("%s.slot: %r is not accepted (accepted: %s)" % (where, slot, ", ".join(SLOTS)))
        out.update(host=host, slot=slot)
        if slot == "canary":
            out["share"] = _number(where + ".share", drill.get("share", SHARE_DEFAULT[kind]), 0, SHARE_MAX, True)
        elif "share" in drill:
            raise ChaosError("%s.share: %r is not accepted with slot stable (accepted: share only with slot canary, "
                             "a whole number of percent from 0 to %d; a stable slot is drilled with the weight it has)"
                             % (where, drill["share"], SHARE_MAX))
    if kind == "kill_slot":
        out["max_error_ratio"] = _number(where + ".max_error_ratio", drill.get("max_error_ratio", 0.01), 0, 1)
    elif kind == "freeze_consumer":
        if not has_nats:
            raise ChaosError("%s: kind freeze_consumer needs the target's nats (rollout_target.nats)" % where)
        out["seconds"] = _number(where + ".seconds", drill.get("seconds", 5), 1, 600, True)
        out["max_pending"] = _number(where + ".max_pending", drill.get("max_pending", 0), 0, 10 ** 9, True)
    else:
        url = drill.get("url", UNREACHABLE_URL)
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ChaosError("%s.url: %r is not accepted (accepted: an http:// or https:// URL that does not answer)"
                             % (where, url))
        out["url"] = url
    return out


def share_weight(stable_weight, share):
    """The HAProxy weight that gives a borrowed canary slot ``share`` % of its host's traffic beside the host's stable
    server of weight ``stable_weight`` (which keeps its weight) -> int (0: no share, or a stable server with no
    traffic to share; HAProxy weights go up to 256, and a share of at most 50 % never asks for more)."""
    try:
        stable_weight, share = int(stable_weight), int(share)
    except (TypeError, ValueError):
        return 0
    if share <= 0 or stable_weight <= 0:
        return 0
    return max(1, min(256, int(stable_weight * share / float(100 - share) + 0.5)))


def error_ratio(before, after):
    """Clients' 5xx answers per request between two reads of a backend's servers (``haproxy_traffic``'s
    ``before``: {server: {counters: {sessions, responses_5xx, ...}}}) -> (ratio or None, requests, 5xx).

    None when HAProxy gave no counters, or when no request came in between (nothing was measured)."""
    requests = errors = 0
    for server, view in (after or {}).items():
        now, then = (view or {}).get("counters") or {}, ((before or {}).get(server) or {}).get("counters") or {}
        if now.get("sessions") is None or then.get("sessions") is None or now.get("responses_5xx") is None \
                or then.get("responses_5xx") is None:
            return None, requests, errors
        # a counter that went down means HAProxy restarted: count from zero
        requests += now["sessions"] - then["sessions"] if now["sessions"] >= then["sessions"] else now["sessions"]
        errors += (now["responses_5xx"] - then["responses_5xx"] if now["responses_5xx"] >= then["responses_5xx"]
                   else now["responses_5xx"])
    if requests <= 0:
        return None, requests, errors
    return errors / float(requests), requests, errors


def _or(value, missing="?"):
    return missing if value is None else value


def borrow_result(drill, borrow):
    """Whether a borrowed canary slot (``drill["share"]`` set) was there for the drill and put back -> (ok, words).

    ``borrow``: ``running_before`` (HAProxy saw the slot running before the drill), ``started`` (the drill started it,
    or took it over from ``from_drill``, the drill before on the same slot, which kept it up), ``start_error`` (why it
    did not start), ``weight_before``, ``stable_weight``, ``weight`` (the slot's weight during the drill, as HAProxy
    answered), ``weight_after`` (after the drill), ``stopped`` (stopped again, when the drill started it),
    ``stop_error``, ``kept_for`` (the next drill on the slot, which the slot was kept up for instead of stopped). A
    missing measure is not ok."""
    borrow = borrow or {}
    share = drill.get("share", 0)
    there = bool(borrow.get("running_before")) or (bool(borrow.get("started")) and not borrow.get("start_error"))
    if not there:
        return False, "the %s slot was NOT started for the drill (%s)" % (
            drill["slot"], borrow.get("start_error") or "no start recorded")
    weight, before, after = borrow.get("weight"), borrow.get("weight_before"), borrow.get("weight_after")
    shared = share == 0 or (weight is not None and int(weight) > 0)
    put_back = before is not None and after is not None and int(after) == int(before)
    kept_for = "" if borrow.get("running_before") else borrow.get("kept_for") or ""
    stopped = bool(borrow.get("running_before")) or bool(kept_for) or (
        bool(borrow.get("stopped")) and not borrow.get("stop_error"))
    words = "%s for the drill; %s; %s" % (
        "already running" if borrow.get("running_before")
        else "up since the drill %s" % borrow["from_drill"] if borrow.get("from_drill")
        else "started with the phase's release and flags",
        ("weight %s beside the stable weight %s (%s %% of the host's traffic)" % (
            _or(weight), _or(borrow.get("stable_weight")), share)) if shared and share
        else "no traffic share" if shared
        else "NO weight beside the stable weight %s (%s %% asked)" % (_or(borrow.get("stable_weight")), share),
        "put back to weight %s%s" % (_or(after), "" if borrow.get("running_before")
                                     else " and kept up for the next drill, %s" % kept_for if kept_for
                                     else " and stopped")
        if put_back and stopped
        else "NOT put back: weight %s (was %s)%s" % (
            _or(after), _or(before), "" if stopped else ", NOT stopped (%s)" % (borrow.get("stop_error") or "?")))
    return shared and put_back and stopped, "the %s slot %s" % (drill["slot"], words)


def drill_result(drill, kill=None, server=None, lb_before=None, lb_after=None, consumer=None, gate_verdict=None,
                 durable=None, borrow=None, error=None):
    """What one drill measured -> its result {name, kind, host, slot, passed, seconds, clients, detail}.

    ``drill``: one drill of :func:`plan`; ``kill``: ``deploy_hosts_kill`` of the drill's host (recovered, seconds,
    program, pid_killed, pid_after); ``server``: the killed slot's HAProxy server; ``lb_before``/``lb_after``:
    ``haproxy_traffic``'s ``before`` around a kill_slot; ``consumer``: ``jetstream_info``'s consumer after a
    freeze_consumer; ``gate_verdict``: the metrics_unreachable gate's verdict (None: it did not run); ``borrow``: the
    borrowed canary slot of a drill with ``share`` (:func:`borrow_result`); ``error``: the message of a drill task
    that failed (the drill fails). A measure that is missing fails the drill."""
    kill, consumer = kill or {}, consumer or {}
    kind, clients, recovered = drill["kind"], {}, bool(kill.get("recovered"))
    if kind == "kill_slot":
        ratio, requests, errors = error_ratio(lb_before, lb_after)
        clients = {"ratio": ratio, "requests": requests, "errors_5xx": errors}
        lb_back = ((lb_after or {}).get(server or "") or {}).get("op_state") == "running"
        seconds = kill.get("seconds")
        passed = (recovered and seconds is not None and float(seconds) <= drill["recovery_seconds"] and lb_back
                  and (ratio is None or ratio <= drill["max_error_ratio"]))
        detail = ("%s %s on %s SIGKILLed (pid %s): %s after %s s, HAProxy %s; clients: %s of %s answers 5xx "
                  "(at most %s %%)") % (
            drill["slot"], _or(kill.get("program")), drill["host"], _or(kill.get("pid_killed")),
            ("running again as pid %s" % kill.get("pid_after")) if recovered else "NOT running again healthy",
            _or(seconds), "sees it running" if lb_back else "does NOT see it running",
            errors, requests, round(drill["max_error_ratio"] * 100, 2))
    elif kind == "freeze_consumer":
        ack, pending = consumer.get("num_ack_pending"), consumer.get("num_pending")
        drained = ack is not None and int(ack) == 0 and pending is not None and int(pending) <= drill["max_pending"]
        passed = recovered and drained
        detail = "%s %s on %s frozen %s s: %s; JetStream consumer %s %s (pending %s, ack pending %s, redelivered %s)" % (
            drill["slot"], _or(kill.get("program")), drill["host"], drill["seconds"],
            "answering again" if recovered else "NOT answering again", _or(durable),
            "drained" if drained else "NOT drained within %s s" % drill["recovery_seconds"],
            _or(pending), _or(ack), _or(consumer.get("num_redelivered")))
    else:
        verdict = gate_verdict or "error"
        passed = verdict != "pass"
        detail = "the stable error rate gate against %s: %s" % (
            drill.get("url"), ("failed closed (%s)" % verdict) if passed else "PASSED although nothing answered")
    out = {"name": drill["name"], "kind": kind, "host": drill.get("host"), "slot": drill.get("slot"),
           "passed": bool(passed), "seconds": kill.get("seconds"), "clients": clients, "detail": detail}
    if "share" in drill:
        ok, words = borrow_result(drill, borrow)
        out.update(passed=out["passed"] and ok, share=drill["share"], borrow=dict(borrow or {}),
                   detail="%s; %s" % (detail, words))
    if error:
        out.update(passed=False, error=str(error), detail="%s; the drill stopped: %s" % (out["detail"], error))
    return out
