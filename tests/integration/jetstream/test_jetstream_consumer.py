# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""stagegate.rollout.jetstream_consumer (durables and replay) against a real nats-server."""

STREAM = {"name": "stream",
          "stagegate.rollout.jetstream_stream": {"name": "EVENTS", "subjects": ["events.>"], "max_age": "72h"}}


def consumer_task(**options):
    return {"name": "consumer",
            "stagegate.rollout.jetstream_consumer": dict({"stream": "EVENTS", "name": "processor"}, **options)}


def ok(run, i=0):
    return run.ok(i)


def test_replay_from_sequence_and_time(nats_server, playbook, nats_tools):
    url = nats_server.url
    declared = dict(filter_subject="events.>", ack_policy="explicit", ack_wait="30s", max_deliver=5)
    ok(playbook([STREAM, consumer_task(**declared)], servers=url))
    assert nats_tools.publish(url, "events.order", 100) == list(range(1, 101))

    # the stable version processed everything
    first = nats_tools.consume_all(url, "EVENTS", "processor")
    assert [m[0] for m in first] == list(range(1, 101))
    info = ok(playbook([{"stagegate.rollout.jetstream_info": {"stream": "EVENTS", "consumer": "processor"}}],
                       servers=url))
    assert info["consumer"]["num_pending"] == 0 and info["consumer"]["num_ack_pending"] == 0
    assert info["consumer"]["ack_floor"]["stream_seq"] == 100

    # check mode: says what would happen, changes nothing
    res = ok(playbook([consumer_task(replay_from_seq=40)], servers=url, check=True))
    assert res["changed"] is True and res["operation"] == "replay"
    assert res["replay"]["from_seq"] == 40 and res["replay"]["recreated"] is True
    assert res["replay"]["estimated_pending"] == 61 and res["replay"]["previous"]["ack_floor_stream_seq"] == 100
    assert res["consumer"]["config"]["deliver_policy"] == "by_start_sequence"
    now = nats_tools.js_api(url, "CONSUMER.INFO.EVENTS.processor")
    assert now["config"]["deliver_policy"] == "all" and now["num_pending"] == 0 and now["ack_floor"]["stream_seq"] == 100

    # replay from sequence 40: exactly messages 40..100 come again
    res = ok(playbook([consumer_task(replay_from_seq=40)], servers=url))
    assert res["changed"] is True and res["operation"] == "replay"
    assert res["consumer"]["num_pending"] == 61
    cfg = res["consumer"]["config"]
    assert cfg["deliver_policy"] == "by_start_sequence" and cfg["opt_start_seq"] == 40
    # the rest of the declared configuration survived the recreation
    assert cfg["filter_subject"] == "events.>" and cfg["max_deliver"] == 5 and cfg["ack_policy"] == "explicit"
    again = nats_tools.consume_all(url, "EVENTS", "processor")
    assert [m[0] for m in again] == list(range(40, 101))
    assert [m[1] for m in again] == ["msg-%d" % n for n in range(40, 101)]
    assert len(again) == 61

    # the declaration without deliver_policy is still satisfied after a replay
    res = ok(playbook([consumer_task(**declared)], servers=url))
    assert res["changed"] is False

    # replay from the time of message 40
    t40 = nats_tools.js_api(url, "STREAM.MSG.GET.EVENTS", {"seq": 40})["message"]["time"]
    res = ok(playbook([consumer_task(replay_from_time=t40)], servers=url, diff=True))
    assert res["changed"] is True and res["replay"]["from_time"] == t40
    assert res["consumer"]["config"]["deliver_policy"] == "by_start_time"
    assert res["consumer"]["num_pending"] == 61
    again = nats_tools.consume_all(url, "EVENTS", "processor")
    assert [m[0] for m in again] == list(range(40, 101))


def test_consumer_lifecycle(nats_server, playbook, nats_tools):
    url = nats_server.url
    ok(playbook([STREAM], servers=url))
    res = ok(playbook([consumer_task(filter_subject="events.a")], servers=url, check=True))
    assert res["changed"] is True and res["operation"] == "create"
    assert "error" in nats_tools.js_api(url, "CONSUMER.INFO.EVENTS.processor")

    res = ok(playbook([consumer_task(filter_subject="events.a")], servers=url))
    assert res["changed"] is True and res["consumer"]["config"]["ack_policy"] == "explicit"
    res = ok(playbook([consumer_task(filter_subject="events.a")], servers=url))
    assert res["changed"] is False

    # in place: filter, ack_wait, max_deliver
    res = ok(playbook([consumer_task(filter_subject="events.b", ack_wait="1m", max_deliver=3)], servers=url,
                      diff=True))
    assert res["changed"] is True and res["operation"] == "update"
    assert res["diff"]["before"]["ack_wait"] == "30s" and res["diff"]["after"]["ack_wait"] == "1m"
    cfg = nats_tools.js_api(url, "CONSUMER.INFO.EVENTS.processor")["config"]
    assert cfg["filter_subject"] == "events.b" and cfg["ack_wait"] == 60 * 10 ** 9 and cfg["max_deliver"] == 3

    # deliver policy cannot change in place
    run = playbook([consumer_task(deliver_policy="new")], servers=url)
    assert run.rc != 0 and "deliver_policy" in run[0]["msg"] and "recreate: true" in run[0]["msg"]
    assert nats_tools.js_api(url, "CONSUMER.INFO.EVENTS.processor")["config"]["deliver_policy"] == "all"
    res = ok(playbook([consumer_task(deliver_policy="new", recreate=True)], servers=url))
    assert res["changed"] is True and res["operation"] == "recreate"
    assert nats_tools.js_api(url, "CONSUMER.INFO.EVENTS.processor")["config"]["deliver_policy"] == "new"

    # bad input, missing stream
    bad = [consumer_task(deliver_policy="by_start_sequence"),
           consumer_task(replay_from_time="yesterday"),
           consumer_task(ack_wait="soon"),
           {"stagegate.rollout.jetstream_consumer": {"stream": "NOPE", "name": "processor"}}]
    run = playbook([dict(t, ignore_errors=True) for t in bad], servers=url)
    assert all(r.get("failed") for r in run.results), run.results
    msgs = [r["msg"] for r in run.results]
    assert "start_sequence" in msgs[0] and "replay_from_time" in msgs[1] and "ack_wait" in msgs[2]
    assert "stream" in msgs[3] and "NOPE" in msgs[3]

    res = ok(playbook([consumer_task(state="absent")], servers=url))
    assert res["changed"] is True
    assert "error" in nats_tools.js_api(url, "CONSUMER.INFO.EVENTS.processor")
    res = ok(playbook([consumer_task(state="absent")], servers=url))
    assert res["changed"] is False
