#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: haproxy_traffic
short_description: Shift traffic between HAProxy servers through the runtime API (weights, splits, drain, maint, blue-green)
version_added: "0.1.0"
description:
  - Reads the servers of one HAProxy backend through the runtime API (C(show servers state), C(show stat)), computes
    the weight and admin state every server should have, and sends all the needed C(set server) commands together,
    in ONE session (one line of C(;)-separated commands), followed in the same line by a read-back that verifies them.
  - Weights are given as absolute values per server (O(weights)), or as a percentage split between named groups of
    servers (O(groups) and O(split)), for example C(stable) 90 and C(canary) 10 across any number of servers per group.
  - Admin states C(ready), C(drain) and C(maint) are set per server or per group with O(state).
  - "Blue-green flips are safe by construction: the commands that add serving capacity (weight increases, C(ready))
    run before the ones that remove it (weight decreases, C(drain), C(maint)), all in one line that HAProxy executes
    in one go, so the backend never passes through a moment where neither side serves."
  - Bad input (unknown backend or server, weights outside 0..256, a split that does not add up to 100, unknown states,
    a change that would leave the backend with no server taking traffic) fails before anything is sent, with a message
    naming the field, the value and what is accepted.
  - Fails closed. When the runtime API cannot be reached nothing is sent. When the connection breaks during the
    change, the state is read again and the error names the servers that changed; a partial change, or any
    C(set server) error or mismatch found by the read-back, is rolled back to the state read before the change (see
    O(restore_on_failure)).
  - Idempotent. Servers already at their target get no command, and a call with nothing to change sends nothing.
  - Unlike M(community.general.haproxy) it supports check mode and diff, returns the state before and after per
    server and the time the change took, and changes several servers atomically.
author:
  - stagegate.rollout contributors (@stagegate)
options:
  socket:
    description:
      - The HAProxy runtime API (the C(stats socket) of the C(global) section, which must be at C(level admin)).
      - A UNIX socket path (V(/run/haproxy/admin.sock), or V(unix:/run/haproxy/admin.sock)), or a TCP address
        V(tcp:127.0.0.1:9999) (also V(tcp:[::1]:9999) or V(127.0.0.1:9999)).
    type: str
    required: true
  backend:
    description: The backend whose servers are changed.
    type: str
    required: true
  weights:
    description:
      - Absolute weights, server name to an integer from 0 to 256.
      - Can be combined with O(split) for servers that are not in any of O(groups).
    type: dict
  groups:
    description:
      - "Named groups of servers, group name to a list of server names, for example
        C({stable: [web1, web2], canary: [web3]}). A server belongs to one group at most."
      - Group names can also be used as keys of O(state).
    type: dict
  split:
    description:
      - Percentage of new requests per group, group name to a number from 0 to 100; the shares must add up to 100
        and every group of O(groups) needs one.
      - "Every server of a group gets the same weight round_half_up(share x m / servers in the group), at least 1 for a
        share above 0 and 0 for a share of 0, where the multiplier m is chosen between 1 and the largest value that
        keeps every weight <= 256 so that the resulting shares are closest to the requested ones (ties: the smallest
        m). For example 90/10 over two stable servers and one canary gives 45, 45 and 10. The resulting shares are
        returned as RV(effective_split); a warning is issued when one is off by more than 0.5 points."
      - Servers of O(backend) that are in no group must end up taking no traffic (weight 0, C(drain) or C(maint),
        through O(weights) or O(state)), otherwise the split is refused.
    type: dict
  state:
    description:
      - Admin state per server or per group, V(ready), V(drain) (no new connections, health checks go on) or V(maint)
        (no traffic, health checks stopped).
    type: dict
  addresses:
    description:
      - Point servers at a new address, server name to V(IP:PORT) (V([IPv6]:PORT) for IPv6), with
        C(set server <backend>/<server> addr <ip> port <port>) in the same session as the other changes and before
        them, for example to put a new version into a server slot pre-declared in the configuration.
      - Servers already at that address get no command. HAProxy keeps health-checking the server at its new address.
      - The server must have been declared with an address and a port (not a port range or offset).
    type: dict
  timeout:
    description: Seconds allowed for connecting to the runtime API and for each answer.
    type: float
    default: 5.0
  allow_no_traffic:
    description:
      - Allow a change that leaves the backend with no server taking traffic (none running, C(ready) and with a weight
        above 0) when at least one did before. Off by default, so that a flip to servers that are DOWN is refused.
    type: bool
    default: false
  wait_running:
    description:
      - Seconds to wait first, reading the state again every second, until HAProxy's health checks see every server
        that will take traffic after the change (weight above 0, C(ready)) running, for example a slot just started.
        When they do not by then, the change goes on and the usual checks apply (a change that would leave no server
        taking traffic is refused unless O(allow_no_traffic)); RV(not_running) names the servers still not running.
      - V(0) (the default) does not wait. Check mode never waits.
    type: float
    default: 0
  restore_on_failure:
    description:
      - When HAProxy rejects a command, the read-back does not match the target, or the connection breaks half-way,
        put the servers that changed back to their state from before the change (in one more session).
    type: bool
    default: true
notes:
  - Supports check mode (the state is read and the commands that would be sent are returned; nothing is sent) and
    diff mode (one line per server, C(backend/server weight=... state=...)).
  - "Talks to HAProxy from where the module runs; for a remote HAProxy run it on that host, or expose the runtime API
    over TCP and use C(delegate_to: localhost)."
  - Runtime changes are not written to the configuration; they last until HAProxy is reloaded unless a
    C(server-state-file) is used.
  - HAProxy 2.0 or later (C(show cli level)); tested with HAProxy 2.6.
seealso:
  - module: community.general.haproxy
  - name: HAProxy management guide, runtime API
    description: The commands this module sends.
    link: https://docs.haproxy.org/2.6/management.html#9.3
attributes:
  check_mode:
    description: Reads the state and returns the commands and the predicted state; sends nothing.
    support: full
  diff_mode:
    description: Weight and admin state of every server of the backend, before and after.
    support: full
  action_group:
    description: Use C(group/stagegate.rollout.haproxy) in C(module_defaults) to set O(socket) and O(backend) once.
    support: full
    membership:
      - stagegate.rollout.haproxy
"""

EXAMPLES = r"""
- name: Send 10 % of new requests to the canary
  stagegate.rollout.haproxy_traffic:
    socket: /run/haproxy/admin.sock
    backend: app
    groups:
      stable: [web1, web2]
      canary: [web3]
    split:
      stable: 90
      canary: 10
  register: step

- name: A canary slot just started takes 10 % once HAProxy sees it running (waits up to 10 s, one module run)
  stagegate.rollout.haproxy_traffic:
    socket: /run/haproxy/admin.sock
    backend: app
    weights: {web1-stable: 90, web1-canary: 10}
    wait_running: 10

- name: Blue-green flip in one call (green gets everything, blue nothing, never both idle)
  stagegate.rollout.haproxy_traffic:
    socket: /run/haproxy/admin.sock
    backend: app
    groups:
      blue: [blue1, blue2]
      green: [green1, green2]
    split:
      blue: 0
      green: 100

- name: Roll back - canary weight 0 at once (the module reports how long it took)
  stagegate.rollout.haproxy_traffic:
    socket: tcp:127.0.0.1:9999
    backend: app
    weights:
      web3: 0
  delegate_to: localhost
  register: rollback

- name: Drain the old version, then put it in maintenance once idle
  stagegate.rollout.haproxy_traffic:
    socket: /run/haproxy/admin.sock
    backend: app
    groups:
      blue: [blue1, blue2]
    state:
      blue: drain

- name: Put version v7 (port 8107) into the pre-declared green slot, at weight 0 and ready
  stagegate.rollout.haproxy_traffic:
    socket: /run/haproxy/admin.sock
    backend: app
    addresses:
      green: 127.0.0.1:8107
    weights:
      green: 0
    state:
      green: ready

- name: Only read the state of a backend
  stagegate.rollout.haproxy_traffic:
    socket: /run/haproxy/admin.sock
    backend: app
  register: app_state
"""

RETURN = r"""
before:
  description: Every server of the backend before the change, by server name.
  returned: always
  type: dict
  sample:
    web1: {backend: app, server: web1, weight: 100, initial_weight: 100, admin_state: ready, op_state: running,
           status: UP, backup: false, serving: true}
  contains:
    weight:
      description: The user weight (C(srv_uweight)), 0..256.
      type: int
    counters:
      description:
        - "Cumulative C(show stat) counters of the server since HAProxy started: C(sessions) (C(stot)),
          C(responses_5xx), C(connection_errors) (C(econ)), C(response_errors) (C(eresp)), C(retries), C(redispatches);
          null where HAProxy gave none. Two reads give what happened between them (the chaos drills do)."
      type: dict
    initial_weight:
      description: The weight from the configuration.
      type: int
    admin_state:
      description: C(ready), C(drain) or C(maint).
      type: str
    op_state:
      description: C(running), C(starting), C(stopping) or C(stopped) (operational state from health checks).
      type: str
    status:
      description: The C(show stat) status (C(UP), C(DOWN), C(MAINT), C(DRAIN), C(no check), ...).
      type: str
    serving:
      description: Whether the server takes new requests (running, ready, weight above 0, not a backup).
      type: bool
    address:
      description: The server's IP address.
      type: str
    port:
      description: The server's port.
      type: int
after:
  description:
    - Every server of the backend after the change, as read back from HAProxy in the same session as the change.
    - In check mode, the predicted state (C(status) is null for servers that would change).
  returned: always
  type: dict
commands:
  description: The runtime API commands sent (or, in check mode, that would be sent), in order.
  returned: always
  type: list
  elements: str
  sample: ["set server app/web3 weight 10", "set server app/web1 weight 45", "set server app/web2 weight 45"]
changed_servers:
  description: Names of the servers whose weight, admin state or address changed (or would change in check mode).
  returned: always
  type: list
  elements: str
serving:
  description: Names of the servers taking new requests after the change.
  returned: always
  type: list
  elements: str
effective_split:
  description: The share (percent) of new requests each group gets with the computed weights; null without O(split).
  returned: always
  type: dict
  sample: {stable: 90.0, canary: 10.0}
split_multiplier:
  description: The multiplier m used to turn the split into weights; null without O(split).
  returned: always
  type: int
elapsed_ms:
  description:
    - Milliseconds from the start of the module's work (before it connects to read the state) until HAProxy answered
      the change line, whose last commands read the new state back (so the new state was in effect and verified).
    - Without a change (or in check mode), the time the read took.
  returned: always
  type: float
  sample: 1.27
timings:
  description: C(read_ms) (connect, read and validate), C(apply_ms) (the change session), C(total_ms).
  returned: always
  type: dict
waited:
  description: Seconds spent waiting for the health checks (O(wait_running)); 0 when it did not wait.
  returned: always
  type: float
not_running:
  description: Servers that take traffic after the change but that HAProxy's health checks did not see running.
  returned: always
  type: list
  elements: str
address:
  description: The runtime API address used.
  returned: always
  type: str
  sample: unix:/run/haproxy/admin.sock
restored:
  description: On failure after a partial change, whether the servers were put back to their state from before.
  returned: failed
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.stagegate.rollout.plugins.module_utils.haproxy_runtime import (
    HAProxyError, ValidationError, change_traffic, diff_text)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            socket=dict(type="str", required=True),
            backend=dict(type="str", required=True),
            weights=dict(type="dict"),
            groups=dict(type="dict"),
            split=dict(type="dict"),
            state=dict(type="dict"),
            addresses=dict(type="dict"),
            timeout=dict(type="float", default=5.0),
            allow_no_traffic=dict(type="bool", default=False),
            restore_on_failure=dict(type="bool", default=True),
            wait_running=dict(type="float", default=0.0),
        ),
        required_by={"split": "groups"},
        supports_check_mode=True,
    )
    p = module.params
    if p["timeout"] <= 0:
        module.fail_json(msg="timeout: %r is not accepted; give a number of seconds above 0" % p["timeout"])
    try:
        res = change_traffic(p["socket"], p["backend"], weights=p["weights"], groups=p["groups"], split=p["split"],
                             states=p["state"], timeout=p["timeout"], check_mode=module.check_mode,
                             allow_no_traffic=p["allow_no_traffic"], restore_on_failure=p["restore_on_failure"],
                             addresses=p["addresses"], wait_running=p["wait_running"])
    except ValidationError as exc:
        module.fail_json(msg=to_native(exc.msg), errors=exc.details.get("errors", [to_native(exc.msg)]),
                         before=exc.details.get("before"), changed=False)
    except HAProxyError as exc:
        d = exc.details
        module.fail_json(msg=to_native(exc.msg), before=d.get("before"), after=d.get("after"),
                         changed_servers=d.get("changed_servers"), restored=d.get("restored"),
                         commands=d.get("commands", []), changed=bool(d.get("changed_servers")))

    for w in res.get("warnings", []):
        module.warn(w)
    if res["effective_split"]:
        off = ["%s %.2f%% instead of %s%%" % (g, res["effective_split"][g], p["split"][g])
               for g in sorted(res["effective_split"])
               if abs(res["effective_split"][g] - float(p["split"][g])) > 0.5]
        if off:
            module.warn("split: with per-server weights of at most 256 the groups get %s; use fewer servers in the "
                        "small group or a larger share" % ", ".join(off))

    before, after = res["before"], res["after"]
    changed_servers = sorted(n for n in before
                             if tuple(before[n].get(k) for k in ("weight", "admin_state", "address", "port"))
                             != tuple(after[n].get(k) for k in ("weight", "admin_state", "address", "port")))
    out = dict(changed=res["changed"], before=before, after=after, commands=res["commands"],
               changed_servers=changed_servers, serving=sorted(n for n in after if after[n]["serving"]),
               effective_split=res["effective_split"], split_multiplier=res["split_multiplier"],
               elapsed_ms=res["elapsed_ms"], timings=res["timings"], address=res["address"],
               waited=res["waited"], not_running=res["not_running"])
    if module._diff:
        out["diff"] = dict(before=diff_text(p["backend"], before), after=diff_text(p["backend"], after),
                           before_header="backend %s" % p["backend"], after_header="backend %s" % p["backend"])
    module.exit_json(**out)


if __name__ == "__main__":
    main()
