# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""HAProxy runtime API changes: validate a request, plan its commands, apply them in one session, restore.

Plain Python, stdlib only. Used by the ``haproxy_traffic`` module and the fast abort (``fast_abort``); the
client and the parsers are in ``haproxy_client``.

Sessions
--------
Every exchange is one connection in HAProxy's non-interactive mode: the client
writes ONE line of ``;``-separated commands and reads until HAProxy closes the
connection.  HAProxy executes the commands of that line one after the other in
its CLI applet, with nothing between them but other threads' traffic, so all
commands of a change reach HAProxy together: either the line arrives (and all
of it runs) or it does not (and nothing runs).  A change is

1. read session: ``show cli level;show servers state <be>;show stat <be> 4 -1``
   (admin level, current weights, admin and operational states, check status);
2. validation of the request against that state (unknown servers, weights out
   of range, splits that do not add up to 100, a change that would leave no
   server serving): any error stops here, nothing has been sent;
3. apply session: ``set server <be>/<s> weight <w>;set server <be>/<s> state
   <ready|drain|maint>;...;show servers state <be>`` -- the commands that ADD
   serving capacity come first and the ones that REMOVE it last, so a
   blue-green flip (green 0 -> 100, blue 100 -> 0) never passes through a
   moment where neither side serves; the state read at the end of the same
   line verifies the result;
4. on an error answer or a verification mismatch: the servers that did change
   are put back to their state from step 1 (one more session), and the error
   says which servers had changed and whether the restore worked;
5. if the connection dies after the line was sent: the state is read again in
   a new session and compared with step 1 and the target, so the error names
   the servers that changed (and partial changes are restored).  If HAProxy
   cannot be reached again the error says so and lists what may have changed.

Split rounding
--------------
``compute_split_weights`` turns ``groups`` ({stable: [s1, s2], canary: [c1]})
and ``split`` ({stable: 90, canary: 10}) into per-server weights.  HAProxy
sends a server the share w_i / sum(w) of new requests, so a group g of n_g
servers gets its p_g percent when each of its servers has weight
proportional to p_g / n_g.  All servers of a group get the same weight

    w_g = round_half_up(p_g * m / n_g)     (at least 1 when p_g > 0, 0 when p_g = 0)

where the multiplier m (1 <= m, every w_g <= 256) is the one whose weights give
the smallest largest deviation between a group's resulting share and its
requested percentage; ties go to the smallest m, so the weights stay readable
(90/10 over 2+1 servers is 45, 45, 10: m = 1, exact).  The resulting shares are
returned as ``effective_split``.  Every whole-percent split between two groups
of one or two servers each is exact.  Larger groups can miss small shares,
because each of their servers needs weight >= 1 while a server's weight stops
at 256: 1 % over four canary servers against one stable server becomes 1.98 %
(weights 1, 1, 1, 1 and 198), the worst case for groups of up to four servers.
The module warns when a group's share is off by more than 0.5 points.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re
import time

# the client and its parsers, also this module's API (__all__): callers import them from here as before
from ansible_collections.stagegate.rollout.plugins.module_utils.haproxy_client import (
    ADMF_CMAINT, ADMF_FDRAIN, ADMF_FMAINT, ADMF_HMAINT, ADMF_IDRAIN, ADMF_IMAINT, ADMF_RMAINT, ApplyError,
    ConnectionLost, DRAIN_MASK, HAProxyError, MAINT_MASK, MAX_WEIGHT, NAME_RE, OP_STATES, RuntimeClient,
    STATES, SocketUnavailable, ValidationError, admin_state_name, describe_address, is_serving, list_backends,
    merge_stat, parse_address, parse_servers_state, parse_show_stat, parse_state_and_stat, read_backend,
    read_level, read_servers, server_view, split_responses, state_commands)


# --------------------------------------------------------------------------- validation and weights

def _round_half_up(x):
    return int(x + 0.5)


def _check_name(value, field):
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise ValidationError("%s: %r is not accepted; names are letters, digits and . _ - :" % (field, value),
                              field=field)
    return value


def _int_weight(value, field):
    if isinstance(value, bool):
        raise ValidationError("%s: %r is not accepted; weights are integers from 0 to %d" % (field, value, MAX_WEIGHT),
                              field=field)
    if isinstance(value, str) and re.match(r"^\s*-?\d+\s*$", value):
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or not 0 <= value <= MAX_WEIGHT:
        raise ValidationError("%s: %r is not accepted; weights are integers from 0 to %d" % (field, value, MAX_WEIGHT),
                              field=field)
    return value


def _percent(value, field):
    if isinstance(value, bool):
        raise ValidationError("%s: %r is not accepted; percentages are numbers from 0 to 100" % (field, value),
                              field=field)
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValidationError("%s: %r is not accepted; percentages are numbers from 0 to 100" % (field, value),
                              field=field)
    if not 0 <= v <= 100:
        raise ValidationError("%s: %r is not accepted; percentages are numbers from 0 to 100" % (field, value),
                              field=field)
    return v


def validate_request(backend, weights=None, groups=None, split=None, states=None, addresses=None):
    """Static checks (no HAProxy needed).  Returns the normalised request; raises ValidationError.

    All problems found are reported together, each naming the field, the value and what is accepted.
    """
    errors = []

    def guard(fn, *args):
        try:
            return fn(*args)
        except ValidationError as exc:
            errors.append(exc.msg)
            return None

    def server_values(mapping, field, check):
        """``mapping`` (server name -> value) with every name and value checked; the bad ones left out."""
        out = {}
        for name, value in (mapping or {}).items():
            if guard(_check_name, name, "%s key" % field) is not None:
                v = guard(check, value, "%s.%s" % (field, name))
                if v is not None:
                    out[name] = v
        return out

    guard(_check_name, backend, "backend")
    norm_weights = server_values(weights, "weights", _int_weight)
    norm_groups = {}
    owner = {}
    if groups is not None and not isinstance(groups, dict):
        errors.append("groups: %r is not accepted; give a mapping of group name to a list of servers" % (groups,))
        groups = {}
    for gname, members in (groups or {}).items():
        if isinstance(members, str):
            members = [members]
        if not isinstance(members, (list, tuple)) or not members:
            errors.append("groups.%s: %r is not accepted; give a non-empty list of server names" % (gname, members))
            continue
        norm = []
        for s in members:
            if guard(_check_name, s, "groups.%s" % gname) is None:
                continue
            if s in owner:
                errors.append("groups.%s: server %r is already in group %r; a server belongs to one group only"
                              % (gname, s, owner[s]))
                continue
            owner[s] = gname
            norm.append(s)
        norm_groups[gname] = norm
    norm_split = None
    if split is not None:
        if not isinstance(split, dict) or not split:
            errors.append("split: %r is not accepted; give a mapping of group name to percent, e.g. "
                          "{stable: 90, canary: 10}" % (split,))
        elif not groups:
            errors.append("split: needs groups (which servers make up %s)" % ", ".join(sorted(map(str, split))))
        else:
            norm_split = {}
            for gname, pct in split.items():
                if gname not in norm_groups and gname not in (groups or {}):
                    errors.append("split.%s: %r is not a group; groups are: %s"
                                  % (gname, gname, ", ".join(sorted(groups))))
                    continue
                v = guard(_percent, pct, "split.%s" % gname)
                if v is not None:
                    norm_split[gname] = v
            missing = [g for g in (groups or {}) if g not in split]
            if missing:
                errors.append("split: no percentage for group(s) %s; give every group a share (0 is allowed)"
                              % ", ".join(sorted(missing)))
            total = sum(norm_split.values())
            if len(norm_split) == len(split) and abs(total - 100.0) > 1e-6:
                errors.append("split: the shares must add up to 100, got %s (%s)"
                              % (_fmt_pct(total), ", ".join("%s=%s" % (g, _fmt_pct(norm_split[g]))
                                                            for g in split if g in norm_split)))
        for name in norm_weights:
            if name in owner and norm_split is not None:
                errors.append("weights.%s: server %r also gets its weight from split group %r; give it in one place "
                              "only" % (name, name, owner[name]))
    norm_states = {}
    for key, st in (states or {}).items():
        if not isinstance(st, str) or st not in STATES:
            errors.append("state.%s: %r is not accepted; states are %s" % (key, st, ", ".join(STATES)))
            continue
        if key in norm_groups:
            if key in owner:
                errors.append("state.%s: %r is both a group and a server name; rename one" % (key, key))
                continue
            for s in norm_groups[key]:
                if s in norm_states and norm_states[s] != st:
                    errors.append("state.%s: server %r is also given state %r" % (key, s, norm_states[s]))
                norm_states[s] = st
        elif guard(_check_name, key, "state key") is not None:
            if key in norm_states and norm_states[key] != st:
                errors.append("state.%s: server %r is also given state %r through its group"
                              % (key, key, norm_states[key]))
            norm_states[key] = st
    if addresses is not None and not isinstance(addresses, dict):
        errors.append("addresses: %r is not accepted; give a mapping of server name to 'IP:PORT'" % (addresses,))
        addresses = {}
    norm_addresses = server_values(addresses, "addresses", parse_server_address)
    if errors:
        raise ValidationError("; ".join(errors), errors=errors)
    return {"backend": backend, "weights": norm_weights, "groups": norm_groups, "split": norm_split,
            "states": norm_states, "addresses": norm_addresses}


def parse_server_address(value, field="addresses"):
    """'IP:PORT' (IPv4, or [IPv6]:PORT) -> (ip, port); raises ValidationError naming ``field``."""
    bad = ValidationError("%s: %r is not accepted; give an IP address and a port, e.g. 127.0.0.1:8080 or [::1]:8080"
                          % (field, value), field=field)
    if not isinstance(value, str):
        raise bad
    m = re.match(r"^\[([0-9A-Fa-f:.]+)\]:(\d+)$", value.strip()) or re.match(r"^([0-9.]+):(\d+)$", value.strip())
    if not m:
        raise bad
    try:
        ip = str(ipaddress.ip_address(m.group(1)))
    except ValueError:
        raise bad
    port = int(m.group(2))
    if not 1 <= port <= 65535:
        raise bad
    return ip, port


def set_server_addr_command(backend, server, ip, port):
    """The runtime API command that points ``backend/server`` at ``ip:port``."""
    return "set server %s/%s addr %s port %d" % (backend, server, ip, port)


def addr_answer_ok(answer):
    """HAProxy answers a successful 'set server addr' with a sentence, not with nothing."""
    a = answer.lower()
    return "changed from" in a or "no need to change" in a


def _fmt_pct(v):
    return ("%d" % v) if float(v).is_integer() else ("%.4g" % v)


def compute_split_weights(groups, split, max_weight=MAX_WEIGHT):
    """Per-server weights for a percentage split between groups (see the module docstring for the rounding).

    Returns (weights {server: int}, effective {group: percent}, multiplier).
    """
    active = [(g, float(split[g]), len(groups[g])) for g in groups if float(split[g]) > 0]
    if not active:
        raise ValidationError("split: at least one group needs a share above 0")
    best = None
    m = 1
    while True:
        wg = dict((g, max(1, _round_half_up(p * m / n))) for g, p, n in active)
        if max(wg.values()) > max_weight:
            break
        total = sum(wg[g] * n for g, p, n in active)
        err = max(abs(100.0 * wg[g] * n / total - p) for g, p, n in active)
        if best is None or err < best[0] - 1e-12:
            best = (err, m, wg)
        if err < 1e-9:
            break
        m += 1
    if best is None:  # a single server would need more than max_weight even at m=1: cannot happen for p<=100
        raise ValidationError("split: cannot be expressed with weights up to %d" % max_weight)
    err, m, wg = best
    weights = {}
    for g, members in groups.items():
        for s in members:
            weights[s] = wg.get(g, 0)
    total = sum(weights.values())
    effective = dict((g, round(100.0 * sum(weights[s] for s in groups[g]) / total, 4)) for g in groups)
    return weights, effective, m


def resolve_targets(request, servers):
    """Validate the request against the backend's servers and compute the target of every server.

    Returns (target {server: {"weight": int, "admin_state": str}}, effective_split or None, multiplier or None).
    """
    backend = request["backend"]
    known = sorted(servers)
    errors = []

    def unknown(field, name):
        errors.append("%s: %r is not a server of backend %r; its servers are: %s"
                      % (field, name, backend, ", ".join(known) or "(none)"))

    for name in request["weights"]:
        if name not in servers:
            unknown("weights.%s" % name, name)
    for gname, members in request["groups"].items():
        for s in members:
            if s not in servers:
                unknown("groups.%s" % gname, s)
    for name in request["states"]:
        if name not in servers:
            unknown("state.%s" % name, name)
    for name in request.get("addresses", {}):
        if name not in servers:
            unknown("addresses.%s" % name, name)
    if errors:
        raise ValidationError("; ".join(errors), errors=errors)

    target = dict((name, {"weight": s["weight"], "admin_state": s["admin_state"]}) for name, s in servers.items())
    effective = multiplier = None
    if request["split"] is not None:
        wmap, effective, multiplier = compute_split_weights(request["groups"], request["split"])
        for s, w in wmap.items():
            target[s]["weight"] = w
    for s, w in request["weights"].items():
        target[s]["weight"] = w
    for s, st in request["states"].items():
        target[s]["admin_state"] = st
    for s, (ip, port) in request.get("addresses", {}).items():
        target[s]["address"], target[s]["port"] = ip, port

    if request["split"] is not None:
        grouped = set(s for members in request["groups"].values() for s in members)
        strays = [s for s in known
                  if s not in grouped and not servers[s].get("backup")
                  and is_serving(servers[s], target[s]["weight"], target[s]["admin_state"])]
        if strays:
            raise ValidationError(
                "split: server(s) %s of backend %r are in no group and would keep receiving traffic (%s), so the "
                "split would not be what was asked; add them to a group, or give them weights: {%s: 0} or "
                "state: {%s: maint}" % (", ".join(strays), backend,
                                        ", ".join("%s weight %d" % (s, target[s]["weight"]) for s in strays),
                                        strays[0], strays[0]), field="split")
    return target, effective, multiplier


def plan_commands(backend, servers, target):
    """The commands that move ``servers`` to ``target``: capacity-adding ones first, capacity-removing ones last."""
    addr, add_w, add_s, rem_s, rem_w = [], [], [], [], []
    for name in sorted(servers):
        cur, want = servers[name], target[name]
        if "address" in want and (want["address"], want["port"]) != (cur.get("address"), cur.get("port")):
            addr.append(set_server_addr_command(backend, name, want["address"], want["port"]))
        if want["weight"] != cur["weight"]:
            cmd = "set server %s/%s weight %d" % (backend, name, want["weight"])
            (add_w if want["weight"] > cur["weight"] else rem_w).append(cmd)
        if want["admin_state"] != cur["admin_state"]:
            cmd = "set server %s/%s state %s" % (backend, name, want["admin_state"])
            (add_s if want["admin_state"] == "ready" else rem_s).append(cmd)
    return addr + add_w + add_s + rem_s + rem_w


def changed_servers(before, after):
    return sorted(n for n in before if n in after and (before[n]["weight"] != after[n]["weight"]
                                                       or before[n]["admin_state"] != after[n]["admin_state"]
                                                       or before[n].get("address") != after[n].get("address")
                                                       or before[n].get("port") != after[n].get("port")))


def mismatches(after, target):
    out = []
    for n, want in sorted(target.items()):
        got = after.get(n)
        if got is None:
            out.append("%s: gone from the backend" % n)
            continue
        if got["weight"] != want["weight"]:
            out.append("%s: weight %d, wanted %d" % (n, got["weight"], want["weight"]))
        if got["admin_state"] != want["admin_state"]:
            out.append("%s: state %s, wanted %s" % (n, got["admin_state"], want["admin_state"]))
        if "address" in want and (got.get("address"), got.get("port")) != (want["address"], want["port"]):
            out.append("%s: address %s:%s, wanted %s:%s" % (n, got.get("address"), got.get("port"),
                                                            want["address"], want["port"]))
    return out


def diff_text(backend, servers):
    lines = []
    for n in sorted(servers):
        s = servers[n]
        lines.append("%s/%s weight=%s state=%s\n" % (backend, n, s["weight"], s["admin_state"]))
    return "".join(lines)


# --------------------------------------------------------------------------- the change

def _ms(t0, t1):
    return round((t1 - t0) * 1000.0, 3)


def _views(servers):
    return dict((n, server_view(s)) for n, s in servers.items())


def _reread(client, backend, attempts=3, pause=0.1):
    last = None
    for i in range(attempts):
        try:
            return read_servers(client, backend), None
        except (HAProxyError, ValueError) as exc:
            last = exc
            if i + 1 < attempts:
                time.sleep(pause)
    return None, last


def _send_change(client, backend, commands):
    """One session: the change commands then the state read-back -> (answers, servers after)."""
    text = client.execute(commands + state_commands(backend))
    answers, rest = split_responses(text, len(commands))
    return answers, parse_state_and_stat(rest, backend)


def _restore(client, backend, before, current):
    """Put servers that differ from ``before`` back, in one session; returns (ok, servers_now_or_None, note)."""
    target = dict((n, {"weight": s["weight"], "admin_state": s["admin_state"]}) for n, s in before.items()
                  if n in current)
    for n, t in target.items():
        if before[n].get("address") and before[n].get("port") and (
                before[n]["address"], before[n]["port"]) != (current[n].get("address"), current[n].get("port")):
            t["address"], t["port"] = before[n]["address"], before[n]["port"]
    cmds = plan_commands(backend, dict((n, current[n]) for n in target), target)
    if not cmds:
        return True, current, "nothing to restore"
    try:
        dummy, after = _send_change(client, backend, cmds)
    except (HAProxyError, ValueError) as exc:
        return False, None, "restoring the state from before the change failed: %s" % exc
    bad = mismatches(after, target)
    if bad:
        return False, after, "restoring the state from before the change was incomplete: %s" % "; ".join(bad)
    return True, after, "they were put back to their state from before the change"


def _describe(servers):
    return ", ".join("%s weight=%d state=%s" % (n, s["weight"], s["admin_state"]) for n, s in sorted(servers.items()))


def not_running(servers, target):
    """The servers that would take traffic with ``target`` (weight above 0, admin state ready) but whose health
    check does not see them running (sorted names)."""
    return sorted(n for n, t in target.items()
                  if t["weight"] > 0 and t["admin_state"] == "ready" and servers[n]["op_state"] != "running")


def _read_resolved(client, backend, request):
    """Read the backend and resolve the request against it -> (servers, level, target, effective, multiplier)."""
    try:
        servers, level = read_backend(client, backend)
    except ConnectionLost as exc:
        raise ConnectionLost("%s (while reading the state; nothing was sent that changes anything)" % exc.msg,
                             **exc.details)
    try:
        target, effective, multiplier = resolve_targets(request, servers)
    except ValidationError as exc:
        exc.details.setdefault("before", _views(servers))
        raise
    return servers, level, target, effective, multiplier


def change_traffic(address, backend, weights=None, groups=None, split=None, states=None, timeout=5.0,
                   check_mode=False, allow_no_traffic=False, restore_on_failure=True, client=None, addresses=None,
                   wait_running=0.0, sleep=time.sleep):
    """Read, validate, apply in one session, verify.  Returns a result dict; raises HAProxyError subclasses.

    ``wait_running``: seconds to wait first (reading the state again every second, not in check mode) until
    HAProxy's health checks see every server that will take traffic running; when they do not by then, the change
    goes on and the usual checks apply (a change that leaves no server taking traffic is refused).
    Result keys: changed, before, after (per-server views), target, commands, effective_split,
    split_multiplier, elapsed_ms (start of the call until HAProxy answered the change line, whose
    last commands read the new state back), timings {read_ms, apply_ms, total_ms}, sessions,
    level, address, warnings, waited (seconds waited for health checks), not_running (servers that will take
    traffic and were still not running when the change was sent).
    Errors carry ``details`` with before/after/changed_servers/restored where known.
    """
    t0 = time.perf_counter()
    if not isinstance(wait_running, (int, float)) or isinstance(wait_running, bool) or wait_running < 0:
        raise ValidationError("wait_running: %r is not accepted; give a number of seconds, 0 or more (0: no wait)"
                              % (wait_running,), field="wait_running")
    request = validate_request(backend, weights, groups, split, states, addresses)
    if client is None:
        client = RuntimeClient(address, timeout=timeout)
    servers, level, target, effective, multiplier = _read_resolved(client, backend, request)
    waited = 0.0
    if wait_running > 0 and not check_mode and not_running(servers, target):
        t_wait = time.monotonic()
        while not_running(servers, target) and time.monotonic() < t_wait + wait_running:
            sleep(1.0)
            servers, level, target, effective, multiplier = _read_resolved(client, backend, request)
        waited = round(time.monotonic() - t_wait, 3)
    t_read = time.perf_counter()
    before = _views(servers)

    serving_before = [n for n, s in servers.items() if is_serving(s)]
    serving_after = [n for n, s in servers.items()
                     if is_serving(s, target[n]["weight"], target[n]["admin_state"])]
    if serving_before and not serving_after and not allow_no_traffic:
        down = not_running(servers, target)
        verb = "is" if len(down) == 1 else "are"
        why = " (%s would get traffic but %s DOWN by health check)" % (", ".join(down), verb) if down else ""
        raise ValidationError("the change would leave backend %r with no server taking traffic%s; now serving: %s. "
                              "Set allow_no_traffic: true to do this on purpose"
                              % (backend, why, ", ".join(sorted(serving_before))), field="weights", before=before)

    commands = plan_commands(backend, servers, target)
    result = {
        "changed": bool(commands),
        "before": before,
        "target": target,
        "commands": commands,
        "effective_split": effective,
        "split_multiplier": multiplier,
        "level": level,
        "address": client.where,
        "warnings": [],
        "waited": waited,
        "not_running": not_running(servers, target),
    }
    if not commands or check_mode:
        predicted = {}
        for n, s in servers.items():
            p = dict(s)
            p.update(target[n])
            if s != p:
                p["status"] = None  # unknown until HAProxy applies it
            predicted[n] = p
        t_end = time.perf_counter()
        result.update(after=_views(predicted), elapsed_ms=_ms(t0, t_end), sessions=client.sessions,
                      timings={"read_ms": _ms(t0, t_read), "apply_ms": 0.0, "total_ms": _ms(t0, t_end)})
        return result

    t_apply = time.perf_counter()
    lost = None
    answers, after = [], None
    try:
        answers, after = _send_change(client, backend, commands)
    except SocketUnavailable as exc:
        raise SocketUnavailable("%s (the state was read but the change could not be sent; nothing changed)"
                                % exc.msg, before=before, after=before, changed_servers=[], commands=commands)
    except (ConnectionLost, ValueError) as exc:
        lost = exc
    t_done = time.perf_counter()

    if lost is None:
        problems = ["'%s' answered: %s" % (cmd, ans) for cmd, ans in zip(commands, answers)
                    if ans and not (" addr " in cmd and addr_answer_ok(ans))]
        problems += mismatches(after, target)
        if not problems:
            result.update(after=_views(after), elapsed_ms=_ms(t0, t_done), sessions=client.sessions,
                          timings={"read_ms": _ms(t0, t_read), "apply_ms": _ms(t_apply, t_done),
                                   "total_ms": _ms(t0, time.perf_counter())})
            return result
        msg = "HAProxy at %s did not apply the change as asked: %s" % (client.where, "; ".join(problems))
    else:
        after, err = _reread(client, backend)
        if after is None:
            raise ApplyError(
                "the connection to HAProxy at %s was lost during the change (%s) and HAProxy could not be reached "
                "again (%s): it may have applied some or all of: %s. State before the change: %s"
                % (client.where, lost, err, "; ".join(commands), _describe(servers)),
                before=before, after=None, changed_servers=None, restored=None, commands=commands)
        if not mismatches(after, target):
            t_end = time.perf_counter()
            result["warnings"].append("the connection to HAProxy was lost after the change was sent (%s); a new "
                                      "session shows every change applied" % lost)
            result.update(after=_views(after), elapsed_ms=_ms(t0, t_end), sessions=client.sessions,
                          timings={"read_ms": _ms(t0, t_read), "apply_ms": _ms(t_apply, t_done),
                                   "total_ms": _ms(t0, t_end)})
            return result
        msg = "the connection to HAProxy at %s was lost during the change (%s)" % (client.where, lost)

    changed = changed_servers(servers, after)
    restored = None
    if not changed:
        msg += "; nothing changed (a read-back shows every server as before)"
    elif restore_on_failure:
        restored, now, note = _restore(client, backend, servers, after)
        if now is not None:
            after = now
        msg += "; servers changed: %s; %s" % (", ".join(changed), note)
    else:
        msg += "; servers changed: %s (left as they are: restore_on_failure is false)" % ", ".join(changed)
    raise ApplyError(msg, before=before, after=_views(after), changed_servers=changed, restored=restored,
                     commands=commands)


__all__ = ["validate_request", "parse_server_address", "set_server_addr_command", "addr_answer_ok",
           "compute_split_weights", "resolve_targets", "plan_commands", "changed_servers", "mismatches", "not_running",
           "diff_text", "change_traffic", "ADMF_CMAINT", "ADMF_FDRAIN", "ADMF_FMAINT", "ADMF_HMAINT",
           "ADMF_IDRAIN", "ADMF_IMAINT", "ADMF_RMAINT", "ApplyError", "ConnectionLost", "DRAIN_MASK",
           "HAProxyError", "MAINT_MASK", "MAX_WEIGHT", "NAME_RE", "OP_STATES", "RuntimeClient", "STATES",
           "SocketUnavailable", "ValidationError", "admin_state_name", "describe_address", "is_serving",
           "list_backends", "merge_stat", "parse_address", "parse_servers_state", "parse_show_stat",
           "parse_state_and_stat", "read_backend", "read_level", "read_servers", "server_view", "split_responses",
           "state_commands"]
