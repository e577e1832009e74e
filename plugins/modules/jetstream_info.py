#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: jetstream_info
short_description: Read JetStream streams, consumers and their state (messages, bytes, sequences, times)
version_added: "0.1.0"
description:
  - Reads one stream or every stream of the account, with their consumers, for gates and reports - configuration,
    state (messages, bytes, first/last sequence and time, consumer count) and, per consumer, pending,
    acknowledged and redelivered counts.
  - Each stream also carries RV(streams[].options), its managed configuration in the units of
    M(stagegate.rollout.jetstream_stream) (V(max_age) as V(24h), sizes in bytes), to compare with an inventory.
  - Read-only; never changes anything. A missing stream or consumer is reported (RV(exists)), not an error.
author:
  - stagegate.rollout contributors (@stagegate)
extends_documentation_fragment:
  - stagegate.rollout.nats
  - stagegate.rollout.action_group.nats
attributes:
  check_mode:
    support: full
    description: Read-only, runs the same in check mode.
  diff_mode:
    support: none
    description: Read-only, nothing to compare.
options:
  stream:
    description: Read only this stream. Without it, every stream of the account.
    type: str
  consumer:
    description: Read only this consumer of O(stream) (sets RV(consumer)).
    type: str
  consumers:
    description: Include the consumers of each stream (RV(streams[].consumers)).
    type: bool
    default: true
  quiet_consumers:
    description:
      - Wait until these consumers of O(stream) are quiet - nothing delivered and unacknowledged, and nothing more
        delivered for O(quiet_seconds) - before the stream is read, so RV(stream) (its C(state.last_seq)) is as of
        a moment they took nothing more. What a phase reads once it has paused consumers (a split's fence).
      - The quiet window opens no earlier than O(quiet_seconds) after the call, so that whatever paused them has
        had that long to take effect. Fails after O(quiet_timeout) seconds naming each consumer that was not quiet
        (missing, unacknowledged messages, or still being delivered to).
    type: list
    elements: str
  quiet_seconds:
    description: How long the consumers of O(quiet_consumers) must be delivered nothing (seconds).
    type: float
    default: 2
  quiet_timeout:
    description: The longest wait for O(quiet_consumers) (seconds), at least O(quiet_seconds).
    type: float
    default: 60
seealso:
  - module: stagegate.rollout.jetstream_stream
  - module: stagegate.rollout.jetstream_consumer
"""

EXAMPLES = r"""
- name: Read the EVENTS stream
  stagegate.rollout.jetstream_info:
    servers: nats://127.0.0.1:4222
    stream: EVENTS
  register: events
  delegate_to: localhost

- name: Gate - retention is what the production inventory declares
  ansible.builtin.assert:
    that:
      - events.exists
      - events.stream.options.max_age == '24h'
      - events.stream.options.max_msgs == 1000000
      - events.stream.state.messages <= 1000000

- name: Gate - the processor has caught up
  stagegate.rollout.jetstream_info:
    stream: EVENTS
    consumer: processor
  register: processor
  failed_when: processor.consumer.num_pending > 100

- name: Once the paused consumers took nothing more for 2 s, the stream's last sequence is the fence
  stagegate.rollout.jetstream_info:
    stream: EVENTS
    quiet_consumers: [processor]
    quiet_seconds: 2
    quiet_timeout: 60
  register: paused
- name: Every stream, without consumers
  stagegate.rollout.jetstream_info:
    consumers: false
  register: all_streams
"""

RETURN = r"""
exists:
  description: Whether O(stream) (and O(consumer) when given) exist.
  returned: when O(stream) is given
  type: bool
  sample: true
stream:
  description: Info of O(stream) (same shape as an item of RV(streams)); V({}) when it does not exist.
  returned: when O(stream) is given
  type: dict
consumer:
  description: Info of O(consumer); V({}) when it does not exist.
  returned: when O(consumer) is given
  type: dict
  sample: {name: processor, stream_name: EVENTS, num_pending: 0, num_ack_pending: 0, num_redelivered: 0,
           delivered: {consumer_seq: 100, stream_seq: 100}, ack_floor: {consumer_seq: 100, stream_seq: 100}}
streams:
  description: The streams read, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    config:
      description: Stream configuration as the server reports it, durations (C(max_age), C(duplicate_window)) in seconds.
      type: dict
    state:
      description: Messages, bytes, first/last sequence, first/last time (C(first_ts), C(last_ts)), consumer count.
      type: dict
      sample: {messages: 100, bytes: 4200, first_seq: 1, last_seq: 100, consumer_count: 1,
               first_ts: "2025-01-31T12:00:00.1Z", last_ts: "2025-01-31T12:00:01.9Z"}
    options:
      description: Managed configuration in the units of M(stagegate.rollout.jetstream_stream).
      type: dict
      sample: {name: EVENTS, subjects: ["events.>"], storage: file, retention: limits, max_age: 24h,
               max_msgs: 1000000, max_bytes: 10000000000, replicas: 1, discard: old}
    consumers:
      description: Info of each consumer (pending, ack pending, redelivered, delivered, ack floor, config).
      type: list
      elements: dict
      returned: when O(consumers=true)
account:
  description: JetStream usage and limits of the account (memory, storage, streams, consumers, limits).
  returned: always
  type: dict
quiet:
  description: The wait for O(quiet_consumers) - the seconds it took, the reads, each consumer's delivered stream
    sequence and unacknowledged count when they were quiet.
  returned: when O(quiet_consumers) is given
  type: dict
  sample: {seconds: 2.3, reads: 10, consumers: {processor: {delivered_stream_seq: 1200, num_ack_pending: 0}}}
"""

import time

from ansible_collections.stagegate.rollout.plugins.module_utils.jetstream_config import (
    check_name, consumer_info_for_return, render_stream, stream_info_for_return)
from ansible_collections.stagegate.rollout.plugins.module_utils.jetstream_quiet import JetStreamQuietError, watch_quiet
from ansible_collections.stagegate.rollout.plugins.module_utils.nats_connection import (
    NatsConfigError, NatsError, NatsSession, run_nats_module)


def describe(session, info, with_consumers):
    out = stream_info_for_return(info)
    out["options"] = render_stream(info.get("config"))
    if with_consumers:
        out["consumers"] = [consumer_info_for_return(c) for c in session.list_consumers(info["config"]["name"])]
    return out


def read_info(module):
    """The account, the streams (or the one asked) and their consumers; returns the module's result."""
    p = module.params

    def check_names():
        if p["stream"] is not None:
            check_name(p["stream"], "stream", "stream")
        if p["consumer"] is not None:
            check_name(p["consumer"], "consumer", "consumer")

        for name in p["quiet_consumers"] or []:
            check_name(name, "quiet_consumers", "consumer")
        if p["quiet_consumers"] and not 0 <= p["quiet_seconds"] <= p["quiet_timeout"]:
            raise ValueError("quiet_seconds %s, quiet_timeout %s: need 0 <= quiet_seconds <= quiet_timeout"
                             % (p["quiet_seconds"], p["quiet_timeout"]))

    module.check_options(check_names)
    result = dict(changed=False)
    try:
        with NatsSession(module.conn) as session:
            if p["quiet_consumers"]:
                watch, dummy = watch_quiet(
                    lambda: dict((n, session.consumer_info(p["stream"], n)) for n in p["quiet_consumers"]),
                    p["quiet_consumers"], p["quiet_seconds"], p["quiet_timeout"], time.monotonic, time.sleep)
                result["quiet"] = watch.result(time.monotonic())
            result["account"] = session.account_info()
            if p["stream"] is None:
                result["streams"] = [describe(session, i, p["consumers"]) for i in session.list_streams()]
            else:
                info = session.stream_info(p["stream"])
                stream = describe(session, info, p["consumers"]) if info else {}
                result["stream"] = stream
                result["streams"] = [stream] if stream else []
                result["exists"] = bool(stream)
                if p["consumer"] is not None:
                    consumer = session.consumer_info(p["stream"], p["consumer"]) if info else None
                    result["consumer"] = consumer_info_for_return(consumer)
                    result["exists"] = bool(stream) and consumer is not None
    except (NatsError, NatsConfigError, JetStreamQuietError) as exc:
        module.fail_redacted(exc)
    return result


def main():
    run_nats_module(
        read_info,
        argument_spec=dict(
            stream=dict(type="str"),
            consumer=dict(type="str"),
            consumers=dict(type="bool", default=True),
            quiet_consumers=dict(type="list", elements="str"),
            quiet_seconds=dict(type="float", default=2),
            quiet_timeout=dict(type="float", default=60),
        ),
        required_by={"consumer": "stream", "quiet_consumers": "stream"},
        supports_check_mode=True,
    )


if __name__ == "__main__":
    main()
