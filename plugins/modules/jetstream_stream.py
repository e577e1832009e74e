#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: jetstream_stream
short_description: Create, update and delete NATS JetStream streams (retention, limits, storage)
version_added: "0.1.0"
description:
  - Declares a JetStream stream - subjects, storage, replicas, retention policy and limits (O(max_age) as a
    duration such as V(72h), O(max_msgs), O(max_bytes) as V(10GB) or bytes, V(-1) for unlimited), discard policy,
    duplicate window, roll-ups, delete/purge protection - and makes the server match it.
  - Idempotent - options left out are not managed (kept as they are on the server, the server's default when the
    stream is created); a re-run with the same options reports RV(ignore:changed=false).
  - Changes are applied in place when JetStream allows it (limits, subjects, description, discard, duplicate window,
    retention between V(limits) and V(interest), ...). Changes JetStream cannot apply in place - O(storage), the
    retention policy to or from V(workqueue), lifting O(deny_delete) or O(deny_purge), or anything else the server
    rejects - fail with a message naming the field and leave the stream untouched, unless O(recreate=true) which
    deletes the stream (its messages and consumers are lost) and creates it again.
  - Every option is validated before connecting - negative values other than V(-1), unknown units, unknown
    policies, bad subjects and missing subjects fail without touching the server.
  - Supports check mode (reports what would change, changes nothing) and diff mode (managed fields before/after).
  - See C(docs/jetstream.md) in the collection for the rollout retention timeline and replay.
author:
  - stagegate.rollout contributors (@stagegate)
extends_documentation_fragment:
  - stagegate.rollout.nats
  - stagegate.rollout.action_group.nats
attributes:
  check_mode:
    support: full
    description: Reports the change it would make and the resulting configuration; nothing is sent but reads.
  diff_mode:
    support: full
    description: Managed options before and after, durations as strings (V(72h)), sizes in bytes.
options:
  name:
    description: Stream name (no whitespace, V(.), V(*), V(>), V(/) or V(\\)).
    type: str
    required: true
  state:
    description:
      - V(present) creates or updates the stream; V(absent) deletes it (and its messages and consumers).
    type: str
    choices: [present, absent]
    default: present
  subjects:
    description:
      - Subjects the stream captures, wildcards allowed (V(orders.>), V(events.*.created)). Required with
        O(state=present). Compared as a set (order does not matter).
    type: list
    elements: str
  description:
    description: Free text shown by C(nats stream info).
    type: str
  storage:
    description:
      - Where messages are kept. Cannot change in place - needs O(recreate=true). Server default V(file).
    type: str
    choices: [file, memory]
  replicas:
    description:
      - Number of replicas, 1 to 5 (more than 1 needs a clustered JetStream). Server default V(1).
    type: int
  retention:
    description:
      - Retention policy. V(limits) keeps messages until a limit is reached, V(interest) while consumers still
        need them, V(workqueue) until acknowledged once. Changing to or from V(workqueue) needs O(recreate=true).
        Server default V(limits).
    type: str
    choices: [limits, interest, workqueue]
  max_age:
    description:
      - Maximum age of a message, as a duration - V(72h), V(30m), V(1h30m), V(90s), V(7d) (units ns, us, ms, s,
        m, h, d, w) or a number of seconds. V(0) or V(-1) means unlimited. Server default unlimited.
    type: raw
  max_msgs:
    description:
      - Maximum number of messages kept; V(-1) (or V(0)) means unlimited. Server default unlimited.
    type: int
  max_bytes:
    description:
      - Maximum total size of the stream - bytes as an integer, or a size such as V(10GB), V(512MiB), V(1.5G)
        (KB/MB/GB/TB are powers of 1000, KiB/MiB/GiB/TiB powers of 1024). V(-1) (or V(0)) means unlimited.
        Server default unlimited.
    type: raw
  max_msg_size:
    description:
      - Largest message accepted, same units as O(max_bytes); V(-1) means unlimited (the server's max_payload
        still applies).
    type: raw
  discard:
    description:
      - What happens when a limit is reached - V(old) drops the oldest messages, V(new) refuses new ones.
        Server default V(old).
    type: str
    choices: [old, new]
  duplicate_window:
    description:
      - Window for de-duplication by C(Nats-Msg-Id), as a duration (V(2m)). Must not exceed O(max_age).
        Server default V(2m) (lowered to O(max_age) when that is shorter; kept that way on update).
    type: raw
  allow_rollup:
    description:
      - Allow C(Nats-Rollup) headers to purge a subject or the stream (needs O(deny_purge=false)).
    type: bool
  deny_delete:
    description:
      - Refuse deleting single messages through the API. Once true it cannot be lifted in place.
    type: bool
  deny_purge:
    description:
      - Refuse purging the stream through the API. Once true it cannot be lifted in place.
    type: bool
  recreate:
    description:
      - When a change cannot be applied in place, delete the stream and create it again with the new
        configuration. B(Its messages and consumers are lost.) Without it such changes fail and change nothing.
      - Has no effect when the change can be applied in place or nothing changes.
    type: bool
    default: false
notes:
  - JetStream stores durations in nanoseconds; C(stream.max_age) and C(stream.duplicate_window) are returned
    in seconds (V(72h) is V(259200)).
seealso:
  - module: stagegate.rollout.jetstream_consumer
  - module: stagegate.rollout.jetstream_info
  - name: JetStream streams
    description: Stream configuration reference of the NATS documentation.
    link: https://docs.nats.io/nats-concepts/jetstream/streams
"""

EXAMPLES = r"""
- name: Production phase, step 1 - keep everything for 72 hours so a rollback can replay
  stagegate.rollout.jetstream_stream:
    servers: nats://nats.internal:4222
    user: rollout
    password: "{{ vault_nats_password }}"
    name: EVENTS
    subjects: ["events.>"]
    storage: file
    max_age: 72h
    max_msgs: -1
    max_bytes: -1
  delegate_to: localhost

- name: Production phase, step 2 - tighten retention once the rollout is accepted
  stagegate.rollout.jetstream_stream:
    name: EVENTS
    subjects: ["events.>"]
    max_age: 24h
    max_msgs: 1000000
    max_bytes: 10GB
  delegate_to: localhost

- name: Set the connection once for every NATS module of the play
  module_defaults:
    group/stagegate.rollout.nats:
      servers: ["nats://n1:4222", "nats://n2:4222"]
      creds_file: /etc/nats/rollout.creds
  block:
    - name: A work queue in memory, de-duplicated over 10 minutes
      stagegate.rollout.jetstream_stream:
        name: JOBS
        subjects: ["jobs.*"]
        storage: memory
        retention: workqueue
        duplicate_window: 10m
        discard: new
        max_msg_size: 1MiB

- name: Move a stream from file to memory storage (deletes its messages - must be explicit)
  stagegate.rollout.jetstream_stream:
    name: CACHE
    subjects: ["cache.>"]
    storage: memory
    recreate: true

- name: Remove a stream
  stagegate.rollout.jetstream_stream:
    name: OLD_EVENTS
    state: absent
"""

RETURN = r"""
stream:
  description:
    - The full stream configuration after the task, as the server reports it, in the shape of nats-py's
      C(StreamConfig) - the server's field names (for example C(num_replicas), C(allow_rollup_hdrs)), durations
      (C(max_age), C(duplicate_window)) in seconds, sizes in bytes, V(-1) for unlimited.
    - V({}) when the stream does not exist (O(state=absent)).
    - In check mode, the configuration that would be applied.
  returned: always
  type: dict
  sample:
    name: EVENTS
    subjects: ["events.>"]
    retention: limits
    storage: file
    num_replicas: 1
    max_age: 86400
    max_msgs: 1000000
    max_bytes: 10000000000
    max_msg_size: -1
    max_consumers: -1
    discard: old
    duplicate_window: 120
    allow_rollup_hdrs: false
    deny_delete: false
    deny_purge: false
stream_state:
  description:
    - The stream's state after the task - messages, bytes, first/last sequence and time, consumer count.
    - V({}) when the stream does not exist, or would be created or recreated in check mode.
  returned: always
  type: dict
  sample: {messages: 100, bytes: 4200, first_seq: 1, last_seq: 100, consumer_count: 1,
           first_ts: "2025-01-31T12:00:00.1Z", last_ts: "2025-01-31T12:00:01.9Z"}
operation:
  description: What the task did (or would do in check mode).
  returned: always
  type: str
  choices: [create, update, recreate, delete, none]
  sample: update
changes:
  description:
    - Options that differ, with their value before and after (durations as strings, sizes in bytes).
    - On failure of an in-place-impossible change, the changes that were refused.
  returned: always
  type: dict
  sample: {max_age: {before: 72h, after: 24h}, max_bytes: {before: -1, after: 10000000000},
           max_msgs: {before: -1, after: 1000000}}
msg:
  description: One line saying what happened.
  returned: always
  type: str
  sample: stream EVENTS updated in place
diff:
  description: Managed options before and after (diff mode).
  returned: when diff mode is on
  type: dict
"""

from ansible_collections.stagegate.rollout.plugins.module_utils.jetstream_config import (
    STREAM_DEFAULTS, build_stream_config, check_name, describe_server_rejection, normalise_stream_config,
    plan_result, plan_stream, render_changes, render_stream, stream_config_for_return)
from ansible_collections.stagegate.rollout.plugins.module_utils.nats_connection import (
    JetStreamApiError, NatsConfigError, NatsError, NatsSession, run_nats_module)

_info = NatsSession.api_info


def get_stream(session, name):
    """The stream's info, or None when it does not exist."""
    return session.stream_info(name)


def _create_error(name, exc):
    field = {10065: "subjects", 10074: "replicas", 10058: "name"}.get(exc.err_code)
    prefix = ("%s: " % field) if field else ""
    return "%sJetStream refused to create stream %s: %s" % (prefix, name, exc.description)


def apply_plan(module, session, plan, name, current):
    """Carry out the plan; returns the stream info after it (None when deleted)."""
    if plan.action == "create":
        try:
            return _info(session.js_api("STREAM.CREATE." + name, plan.payload))
        except JetStreamApiError as exc:
            module.fail_json(msg=_create_error(name, exc), operation=plan.action, changes=render_changes(plan.changes),
                             stream={}, stream_state={})
    if plan.action == "update":
        try:
            return _info(session.js_api("STREAM.UPDATE." + name, plan.payload))
        except JetStreamApiError as exc:
            module.fail_json(msg=describe_server_rejection(name, plan.changes, exc.description), operation="blocked",
                             changes=render_changes(plan.changes), stream=stream_config_for_return(current["config"]),
                             stream_state=current.get("state", {}))
    if plan.action == "delete":
        session.js_api("STREAM.DELETE." + name)
        return None
    if plan.action == "recreate":
        session.js_api("STREAM.DELETE." + name)
        try:
            return _info(session.js_api("STREAM.CREATE." + name, plan.payload))
        except JetStreamApiError as exc:
            # put the previous configuration back so that the stream at least exists as before (empty)
            restored = dict(current["config"])
            restored.pop("metadata", None)
            try:
                session.js_api("STREAM.CREATE." + name, restored)
                what = "it was created again with its previous configuration (its messages are lost)"
            except NatsError:
                what = "restoring the previous configuration failed too: the stream does not exist now"
            module.fail_json(msg="%s; the stream had been deleted for recreate: true, %s"
                             % (_create_error(name, exc), what), operation=plan.action,
                             changes=render_changes(plan.changes), stream={}, stream_state={})
    raise AssertionError("unexpected plan %s" % plan.action)


def predicted(plan, current):
    """The stream info check mode reports: the configuration that would be applied."""
    if plan.action == "delete":
        return {}
    config = dict(STREAM_DEFAULTS)
    if current is not None:
        config.update(current.get("config", {}))
    config.update(plan.payload or {})
    if plan.action == "recreate":
        config.update(normalise_stream_config(plan.payload))
    out = {"config": config}
    if current is not None and plan.action != "recreate":
        out["state"] = current.get("state")
    return out


def manage_stream(module):
    """Bring the stream to O(state) (everything is validated before connecting); returns the module's result."""
    p = module.params
    state = p["state"]
    desired = module.check_options(
        lambda: build_stream_config(p) if state == "present" else {"name": check_name(p["name"], "name", "stream")},
        changed=False)
    name = desired["name"]
    try:
        with NatsSession(module.conn) as session:
            current = get_stream(session, name)
            plan = plan_stream(desired, current and current.get("config"), state=state, recreate=p["recreate"])
            if plan.action == "blocked":
                module.fail_json(msg=plan.message, operation="blocked", changes=render_changes(plan.changes),
                                 stream=stream_config_for_return(current and current.get("config")),
                                 stream_state=(current or {}).get("state", {}), changed=False)
            if plan.action == "none":
                after = current or {}
            elif module.check_mode:
                after = predicted(plan, current)
            else:
                after = apply_plan(module, session, plan, name, current) or {}
    except (NatsError, NatsConfigError) as exc:
        module.fail_redacted(exc, changed=False)
    return plan_result(module, plan, current, after, render_stream,
                       stream=stream_config_for_return(after.get("config")), stream_state=after.get("state") or {})


def main():
    run_nats_module(
        manage_stream,
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            subjects=dict(type="list", elements="str"),
            description=dict(type="str"),
            storage=dict(type="str", choices=["file", "memory"]),
            replicas=dict(type="int"),
            retention=dict(type="str", choices=["limits", "interest", "workqueue"]),
            max_age=dict(type="raw"),
            max_msgs=dict(type="int"),
            max_bytes=dict(type="raw"),
            max_msg_size=dict(type="raw"),
            discard=dict(type="str", choices=["old", "new"]),
            duplicate_window=dict(type="raw"),
            allow_rollup=dict(type="bool"),
            deny_delete=dict(type="bool"),
            deny_purge=dict(type="bool"),
            recreate=dict(type="bool", default=False),
        ),
        required_if=[("state", "present", ["subjects"])],
        supports_check_mode=True,
    )


if __name__ == "__main__":
    main()
