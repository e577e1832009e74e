#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: jetstream_consumer
short_description: Manage durable JetStream pull consumers and replay them from a sequence or a time
version_added: "0.1.0"
description:
  - Creates, updates or deletes a durable pull consumer on a JetStream stream - filter subject, deliver policy,
    ack policy, ack wait, max deliveries, max ack pending.
  - Idempotent - options left out are not managed (the server's default on creation, kept as they are afterwards).
    O(filter_subject), O(ack_wait), O(max_deliver), O(max_ack_pending) and O(description) are updated in place;
    JetStream cannot change O(deliver_policy), its start point or O(ack_policy) of an existing consumer, so such
    changes fail and change nothing unless O(recreate=true).
  - B(Replay) - O(replay_from_seq) or O(replay_from_time) repositions the durable so that processing restarts at
    that stream sequence or time (for example after a rollback, so the stable version reprocesses what the bad one
    handled). JetStream cannot move a consumer's start point in place, so the consumer is deleted and created again
    under the same name, with the same configuration and O(deliver_policy=by_start_sequence) or
    O(deliver_policy=by_start_time). Pull subscribers bound to the durable keep working (they fetch by name).
    Its acknowledgement state is discarded - messages from the start point on are delivered again, whether they
    had been acknowledged or not. A replay is an explicit operation - it always reports RV(ignore:changed=true),
    and in check mode reports what it would do without deleting anything.
  - Every option is validated before connecting.
author:
  - stagegate.rollout contributors (@stagegate)
extends_documentation_fragment:
  - stagegate.rollout.nats
  - stagegate.rollout.action_group.nats
attributes:
  check_mode:
    support: full
    description: Reports the change or replay it would make; nothing is deleted, created or updated.
  diff_mode:
    support: full
    description: Managed options before and after.
options:
  stream:
    description: Name of the stream the consumer reads. It must exist.
    type: str
    required: true
  name:
    description: Durable name of the consumer.
    type: str
    required: true
  state:
    description: V(present) creates, updates or replays the consumer; V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
  description:
    description: Free text.
    type: str
  filter_subject:
    description:
      - Only deliver messages whose subject matches (wildcards allowed). V("") removes the filter.
    type: str
  deliver_policy:
    description:
      - Where a new consumer starts - V(all) messages, V(new) ones only, the V(last) one, V(last_per_subject),
        from O(start_sequence) (V(by_start_sequence)) or from O(start_time) (V(by_start_time)).
        V(all) when the consumer is created without it.
      - Compared only when given. After a replay the consumer has V(by_start_sequence)/V(by_start_time); leave
        this option out in the declaration of a consumer that may be replayed.
    type: str
    choices: [all, last, new, by_start_sequence, by_start_time, last_per_subject]
  start_sequence:
    description: First stream sequence to deliver, with O(deliver_policy=by_start_sequence).
    type: int
  start_time:
    description: First message time to deliver (RFC 3339), with O(deliver_policy=by_start_time).
    type: str
  ack_policy:
    description:
      - V(explicit) (each message acknowledged), V(all) (acknowledging one acknowledges those before),
        V(none). V(explicit) when the consumer is created without it.
    type: str
    choices: [explicit, all, none]
  ack_wait:
    description:
      - How long the server waits for an acknowledgement before delivering again, as a duration (V(30s), V(5m))
        or seconds. Server default V(30s).
    type: raw
  max_deliver:
    description: Maximum deliveries of one message; V(-1) means unlimited. Server default unlimited.
    type: int
  max_ack_pending:
    description: Maximum messages delivered and not yet acknowledged; V(-1) means unlimited. Server default 1000.
    type: int
  recreate:
    description:
      - When a change cannot be applied in place (O(deliver_policy), its start point, O(ack_policy)), delete the
        consumer and create it again. Its position and pending acknowledgements are lost.
    type: bool
    default: false
  replay_from_seq:
    description:
      - Replay - delete and recreate the durable so that it delivers again from this stream sequence.
      - Mutually exclusive with O(replay_from_time), O(deliver_policy), O(start_sequence), O(start_time).
    type: int
  replay_from_time:
    description:
      - Replay - delete and recreate the durable so that it delivers again every message stored at or after this
        time (RFC 3339, nanoseconds kept, for example V(2025-01-31T12:00:00.123456789Z)).
    type: str
notes:
  - Stop or pause the processes that consume the durable during a replay if they must not see a redelivery gap;
    a pull subscriber that fetches while the consumer is being recreated gets a "consumer not found" error for
    that fetch and can retry.
  - JetStream stores durations in nanoseconds; C(consumer.config.ack_wait) is returned in seconds.
seealso:
  - module: stagegate.rollout.jetstream_stream
  - module: stagegate.rollout.jetstream_info
"""

EXAMPLES = r"""
- name: Durable pull consumer of the order processor
  stagegate.rollout.jetstream_consumer:
    servers: nats://127.0.0.1:4222
    stream: EVENTS
    name: processor
    filter_subject: events.orders.>
    ack_policy: explicit
    ack_wait: 30s
    max_deliver: 5
  delegate_to: localhost

- name: Rollback - reprocess everything since the rollout started
  stagegate.rollout.jetstream_consumer:
    stream: EVENTS
    name: processor
    replay_from_time: "{{ rollout_started_at }}"
  delegate_to: localhost

- name: Replay from a known stream sequence
  stagegate.rollout.jetstream_consumer:
    stream: EVENTS
    name: processor
    replay_from_seq: 40
  register: replay

- name: Show what would be redelivered
  ansible.builtin.debug:
    msg: "{{ replay.consumer.num_pending }} messages pending after the replay"

- name: Remove the consumer
  stagegate.rollout.jetstream_consumer:
    stream: EVENTS
    name: processor
    state: absent
"""

RETURN = r"""
consumer:
  description:
    - The consumer as the server reports it after the task; V({}) when it does not exist.
    - In check mode, C(config) is the configuration that would be applied.
  returned: always
  type: dict
  contains:
    config:
      description: Consumer configuration with the server's field names, C(ack_wait) in seconds.
      type: dict
      returned: when the consumer exists
    num_pending:
      description: Messages of the stream not yet delivered to this consumer.
      type: int
      returned: when the consumer exists
      sample: 61
    num_ack_pending:
      description: Messages delivered and not yet acknowledged.
      type: int
      returned: when the consumer exists
    num_redelivered:
      description: Messages delivered more than once.
      type: int
      returned: when the consumer exists
    delivered:
      description: Last delivered consumer and stream sequence.
      type: dict
      returned: when the consumer exists
    ack_floor:
      description: Consumer and stream sequence up to which everything is acknowledged.
      type: dict
      returned: when the consumer exists
  sample:
    name: processor
    stream_name: EVENTS
    config: {durable_name: processor, deliver_policy: by_start_sequence, opt_start_seq: 40, ack_policy: explicit,
             ack_wait: 30, max_deliver: -1}
    num_pending: 61
    num_ack_pending: 0
    delivered: {consumer_seq: 0, stream_seq: 39}
    ack_floor: {consumer_seq: 0, stream_seq: 39}
replay:
  description:
    - What the replay did (or would do in check mode) - start point, whether an existing consumer was deleted,
      its position before, and the stream's first/last sequence.
  returned: when O(replay_from_seq) or O(replay_from_time) is given
  type: dict
  sample: {from_seq: 40, recreated: true, previous: {delivered_stream_seq: 100, ack_floor_stream_seq: 100,
           num_pending: 0}, stream_first_seq: 1, stream_last_seq: 100, estimated_pending: 61}
operation:
  description: What the task did (or would do in check mode).
  returned: always
  type: str
  choices: [create, update, recreate, replay, delete, none]
changes:
  description: Options that differ, before and after.
  returned: always
  type: dict
msg:
  description: One line saying what happened.
  returned: always
  type: str
diff:
  description: Managed options before and after (diff mode).
  returned: when diff mode is on
  type: dict
"""

from ansible_collections.stagegate.rollout.plugins.module_utils.jetstream_config import (
    CONSUMER_DEFAULTS, JetStreamConfigError, build_consumer_config, check_name, consumer_info_for_return,
    plan_consumer, plan_result, render_changes, render_consumer)
from ansible_collections.stagegate.rollout.plugins.module_utils.nats_connection import (
    JetStreamApiError, NatsConfigError, NatsError, NatsSession, run_nats_module)


def create_consumer(session, stream, config, action="create"):
    reply = session.js_api("CONSUMER.CREATE.%s.%s" % (stream, config["durable_name"]),
                           {"stream_name": stream, "config": config, "action": action})
    return NatsSession.api_info(reply)


def replay_report(plan, replay, current, stream_info):
    state = (stream_info or {}).get("state", {})
    first, last = state.get("first_seq", 0), state.get("last_seq", 0)
    out = {"recreated": current is not None, "stream_first_seq": first, "stream_last_seq": last}
    if "opt_start_seq" in replay:
        out["from_seq"] = replay["opt_start_seq"]
        subjects = (stream_info or {}).get("config", {}).get("subjects") or []
        filters = [f for f in [plan.payload.get("filter_subject")] + list(plan.payload.get("filter_subjects") or [])
                   if f]
        # the filter selects the whole stream: every message from the start point on is pending
        if not filters or (len(subjects) == 1 and filters == subjects):
            out["estimated_pending"] = max(0, last - max(replay["opt_start_seq"], first) + 1) if last else 0
    else:
        out["from_time"] = replay["opt_start_time"]
    if current is not None:
        out["previous"] = {
            "delivered_stream_seq": (current.get("delivered") or {}).get("stream_seq"),
            "ack_floor_stream_seq": (current.get("ack_floor") or {}).get("stream_seq"),
            "num_pending": current.get("num_pending"),
            "num_ack_pending": current.get("num_ack_pending"),
            "deliver_policy": current.get("config", {}).get("deliver_policy"),
        }
    return out


def replay_warnings(replay, stream_info):
    state = (stream_info or {}).get("state", {})
    first, last = state.get("first_seq", 0), state.get("last_seq", 0)
    seq = replay.get("opt_start_seq")
    warnings = []
    if seq is not None and last and seq > last + 1:
        warnings.append("replay_from_seq %d is after the stream's last sequence %d: nothing is delivered again, "
                        "only messages from sequence %d on" % (seq, last, seq))
    if seq is not None and first and seq < first:
        warnings.append("replay_from_seq %d is before the stream's first sequence %d (older messages are gone): "
                        "delivery restarts at %d" % (seq, first, first))
    return warnings


def apply_plan(module, session, plan, stream, name, current):
    """Carry out the plan; returns the consumer info after it ({} when deleted)."""
    if plan.action == "delete":
        session.js_api("CONSUMER.DELETE.%s.%s" % (stream, name))
        return {}
    if plan.action in ("create", "update"):
        try:
            return create_consumer(session, stream, plan.payload, plan.action)
        except JetStreamApiError as exc:
            module.fail_json(msg="JetStream refused to %s consumer %s on stream %s (fields: %s): %s. The consumer "
                                 "was not changed." % (plan.action, name, stream,
                                                       ", ".join(sorted(plan.changes)) or "none", exc.description),
                             operation=plan.action, changes=render_changes(plan.changes),
                             consumer=consumer_info_for_return(current))
    # replay / recreate: delete, then create under the same name
    if current is not None:
        session.js_api("CONSUMER.DELETE.%s.%s" % (stream, name))
    try:
        return create_consumer(session, stream, plan.payload)
    except JetStreamApiError as exc:
        what = "nothing was deleted"
        if current is not None:
            previous = dict(current["config"])
            previous.pop("metadata", None)
            try:
                create_consumer(session, stream, previous)
                what = ("the consumer had been deleted and was created again with its previous configuration "
                        "(its position restarts per its deliver policy)")
            except NatsError:
                what = "the consumer had been deleted and restoring it failed: it does not exist now"
        module.fail_json(msg="JetStream refused to create consumer %s on stream %s: %s; %s"
                         % (name, stream, exc.description, what), operation=plan.action,
                         changes=render_changes(plan.changes), consumer={})


def consumer_options(p):
    """``(stream, desired config, replay)`` of the options; JetStreamConfigError naming the field."""
    if p["state"] == "present":
        return build_consumer_config(p)
    stream = check_name(p["stream"], "stream", "stream")
    name = check_name(p["name"], "name", "consumer")
    if p["replay_from_seq"] is not None or p["replay_from_time"] is not None:
        raise JetStreamConfigError("replay_from_seq/replay_from_time need state: present")
    return stream, {"durable_name": name, "name": name}, None


def manage_consumer(module):
    """Bring the consumer to O(state) (everything is validated before connecting); returns the module's result."""
    p = module.params
    state = p["state"]
    stream, desired, replay = module.check_options(lambda: consumer_options(p), changed=False)

    name = desired["durable_name"]
    result = {}
    try:
        with NatsSession(module.conn) as session:
            stream_info = session.stream_info(stream)
            if stream_info is None:
                if state == "absent":
                    return dict(changed=False, operation="none", changes={}, consumer={},
                                msg="stream %s does not exist, so neither does consumer %s" % (stream, name))
                module.fail_json(msg="stream: stream %s does not exist; create it first (stagegate.rollout."
                                     "jetstream_stream)" % stream, changed=False)
            current = session.consumer_info(stream, name)
            plan = plan_consumer(desired, current and current.get("config"), state=state, recreate=p["recreate"],
                                 replay=replay)
            if plan.action == "blocked":
                module.fail_json(msg=plan.message, operation="blocked", changes=render_changes(plan.changes),
                                 consumer=consumer_info_for_return(current), changed=False)
            if replay is not None:
                result["replay"] = replay_report(plan, replay, current, stream_info)
                for warning in replay_warnings(replay, stream_info):
                    module.warn(warning)
            if plan.action == "none":
                after = current or {}
            elif module.check_mode:
                if plan.action == "delete":
                    after = {}
                else:
                    config = dict(CONSUMER_DEFAULTS)
                    config.pop("opt_start_time")
                    config.update(plan.payload)
                    after = {"stream_name": stream, "name": name, "config": config}
                    if plan.action == "update":
                        after = dict(current, config=config)
                    elif "estimated_pending" in result.get("replay", {}):
                        after["num_pending"] = result["replay"]["estimated_pending"]
            else:
                after = apply_plan(module, session, plan, stream, name, current)
    except (NatsError, NatsConfigError) as exc:
        module.fail_redacted(exc, changed=False)
    return plan_result(module, plan, current, after, render_consumer, consumer=consumer_info_for_return(after),
                       **result)


def main():
    run_nats_module(
        manage_consumer,
        argument_spec=dict(
            stream=dict(type="str", required=True),
            name=dict(type="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            description=dict(type="str"),
            filter_subject=dict(type="str"),
            deliver_policy=dict(type="str", choices=["all", "last", "new", "by_start_sequence", "by_start_time",
                                                     "last_per_subject"]),
            start_sequence=dict(type="int"),
            start_time=dict(type="str"),
            ack_policy=dict(type="str", choices=["explicit", "all", "none"]),
            ack_wait=dict(type="raw"),
            max_deliver=dict(type="int"),
            max_ack_pending=dict(type="int"),
            recreate=dict(type="bool", default=False),
            replay_from_seq=dict(type="int"),
            replay_from_time=dict(type="str"),
        ),
        mutually_exclusive=[("replay_from_seq", "replay_from_time")],
        supports_check_mode=True,
    )


if __name__ == "__main__":
    main()
