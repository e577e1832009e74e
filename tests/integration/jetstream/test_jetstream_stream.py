# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""stagegate.rollout.jetstream_stream through ansible-playbook against a real nats-server."""
import pytest

H = 3600 * 10 ** 9


def stream_task(**options):
    args = dict({"name": "EVENTS", "subjects": ["events.>"]}, **options)
    return {"name": "stream", "stagegate.rollout.jetstream_stream": args, "register": "r"}


def ok(run, i=0):
    return run.ok(i)


def test_stream_lifecycle(nats_server, playbook, nats_tools):
    url = nats_server.url

    # check mode: reports the creation, creates nothing
    res = ok(playbook([stream_task(max_age="1h", max_msgs=500)], servers=url, check=True))
    assert res["changed"] is True and res["operation"] == "create"
    assert res["stream"]["max_age"] == 3600 and res["stream_state"] == {}
    assert nats_tools.stream_config(url, "EVENTS") is None

    # create
    res = ok(playbook([stream_task(max_age="1h", max_msgs=500)], servers=url))
    assert res["changed"] is True and res["operation"] == "create"
    info = nats_tools.stream_config(url, "EVENTS")
    assert info["config"]["max_age"] == H and info["config"]["max_msgs"] == 500
    assert info["config"]["subjects"] == ["events.>"] and info["config"]["storage"] == "file"
    created = info["created"]

    # the same again: not changed
    res = ok(playbook([stream_task(max_age="1h", max_msgs=500)], servers=url))
    assert res["changed"] is False and res["operation"] == "none"

    # rollout starts: unbounded for 72h (in place: messages kept)
    assert nats_tools.publish(url, "events.order", 10) == list(range(1, 11))
    res = ok(playbook([stream_task(max_age="72h", max_msgs=-1, max_bytes=-1)], servers=url, diff=True))
    assert res["changed"] is True and res["operation"] == "update"
    assert res["changes"]["max_age"] == {"before": "1h", "after": "72h"}
    assert res["changes"]["max_msgs"] == {"before": 500, "after": -1}
    cfg = nats_tools.stream_config(url, "EVENTS")
    assert cfg["config"]["max_age"] == 72 * H and cfg["config"]["max_msgs"] == -1 and cfg["config"]["max_bytes"] == -1
    assert cfg["state"]["messages"] == 10 and cfg["created"] == created

    # idempotent with the same values written differently (-1 vs "-1", 72h vs 259200 seconds)
    res = ok(playbook([stream_task(max_age=259200, max_msgs=-1, max_bytes="-1")], servers=url))
    assert res["changed"] is False

    # check mode of the tightening: reported, not applied
    tight = dict(max_age="24h", max_msgs=1000000, max_bytes="10GB")
    res = ok(playbook([stream_task(**tight)], servers=url, check=True, diff=True))
    assert res["changed"] is True and res["operation"] == "update"
    assert nats_tools.stream_config(url, "EVENTS")["config"]["max_age"] == 72 * H

    # rollout accepted: 24h / 1,000,000 msgs / 10 GB, in place, with a correct diff
    res = ok(playbook([stream_task(**tight)], servers=url, diff=True))
    assert res["changed"] is True and res["operation"] == "update"
    assert res["diff"]["before"]["max_age"] == "72h" and res["diff"]["after"]["max_age"] == "24h"
    assert res["diff"]["before"]["max_msgs"] == -1 and res["diff"]["after"]["max_msgs"] == 1000000
    assert res["diff"]["before"]["max_bytes"] == -1 and res["diff"]["after"]["max_bytes"] == 10 * 10 ** 9
    unchanged_keys = set(res["diff"]["before"]) - {"max_age", "max_msgs", "max_bytes"}
    assert all(res["diff"]["before"][k] == res["diff"]["after"][k] for k in unchanged_keys)
    assert sorted(res["changes"]) == ["max_age", "max_bytes", "max_msgs"]
    assert res["stream"]["max_age"] == 86400 and res["stream"]["max_bytes"] == 10 ** 10
    assert res["stream_state"]["messages"] == 10
    cfg = nats_tools.stream_config(url, "EVENTS")
    assert (cfg["config"]["max_age"], cfg["config"]["max_msgs"], cfg["config"]["max_bytes"]) == \
        (24 * H, 1000000, 10 * 10 ** 9)
    assert cfg["state"]["messages"] == 10 and cfg["created"] == created
    res = ok(playbook([stream_task(**tight)], servers=url))
    assert res["changed"] is False

    # storage cannot change in place: clear failure naming the field and recreate, stream untouched
    run = playbook([stream_task(storage="memory", **tight)], servers=url)
    assert run.rc != 0
    res = run[0]
    assert res["failed"] is True and res["changed"] is False
    assert "storage" in res["msg"] and "recreate: true" in res["msg"]
    cfg = nats_tools.stream_config(url, "EVENTS")
    assert cfg["config"]["storage"] == "file" and cfg["state"]["messages"] == 10 and cfg["created"] == created

    # explicit recreate: new storage, messages gone
    res = ok(playbook([stream_task(storage="memory", recreate=True, **tight)], servers=url, diff=True))
    assert res["changed"] is True and res["operation"] == "recreate"
    assert res["diff"]["before"]["storage"] == "file" and res["diff"]["after"]["storage"] == "memory"
    cfg = nats_tools.stream_config(url, "EVENTS")
    assert cfg["config"]["storage"] == "memory" and cfg["state"]["messages"] == 0
    assert cfg["config"]["max_age"] == 24 * H and cfg["config"]["max_bytes"] == 10 * 10 ** 9
    res = ok(playbook([stream_task(storage="memory", recreate=True, **tight)], servers=url))
    assert res["changed"] is False  # recreate only acts when needed

    # absent (check mode first), then absent again
    absent = {"name": "absent", "stagegate.rollout.jetstream_stream": {"name": "EVENTS", "state": "absent"}}
    res = ok(playbook([absent], servers=url, check=True))
    assert res["changed"] is True and nats_tools.stream_config(url, "EVENTS") is not None
    res = ok(playbook([absent], servers=url, diff=True))
    assert res["changed"] is True and res["operation"] == "delete" and res["stream"] == {}
    assert res["diff"]["after"] == {} and res["diff"]["before"]["storage"] == "memory"
    assert nats_tools.stream_config(url, "EVENTS") is None
    res = ok(playbook([absent], servers=url))
    assert res["changed"] is False and res["operation"] == "none"


def test_other_in_place_impossible_changes(nats_server, playbook, nats_tools):
    """retention to/from workqueue and lifting deny_delete are refused before the server is asked."""
    url = nats_server.url
    ok(playbook([stream_task(deny_delete=True)], servers=url))
    run = playbook([stream_task(deny_delete=False), stream_task(retention="workqueue")], servers=url)
    assert run.rc != 0
    assert "deny_delete" in run[0]["msg"] and "recreate: true" in run[0]["msg"]
    cfg = nats_tools.stream_config(url, "EVENTS")["config"]
    assert cfg["deny_delete"] is True and cfg["retention"] == "limits"
    run = playbook([stream_task(retention="workqueue")], servers=url)
    assert run.rc != 0 and "retention" in run[0]["msg"] and "workqueue" in run[0]["msg"]
    # limits -> interest is allowed in place
    res = ok(playbook([stream_task(retention="interest")], servers=url))
    assert res["changed"] is True and res["operation"] == "update"
    # a change the server itself refuses (replicas > 1 on a single server): named, stream unchanged
    run = playbook([stream_task(replicas=3)], servers=url)
    assert run.rc != 0 and "replicas" in run[0]["msg"] and "recreate" in run[0]["msg"]
    assert nats_tools.stream_config(url, "EVENTS")["config"]["num_replicas"] == 1


BAD_INPUTS = [
    # (options, field named in the error)
    (dict(max_age="72x"), "max_age"),
    (dict(max_age="-5m"), "max_age"),
    (dict(max_age="ten hours"), "max_age"),
    (dict(max_bytes="10XB"), "max_bytes"),
    (dict(max_bytes=-2), "max_bytes"),
    (dict(max_msgs=-7), "max_msgs"),
    (dict(max_msg_size="big"), "max_msg_size"),
    (dict(retention="forever"), "retention"),
    (dict(discard="oldest"), "discard"),
    (dict(storage="ssd"), "storage"),
    (dict(replicas=0), "replicas"),
    (dict(subjects=["events..x"]), "subjects"),
    (dict(subjects=None), "subjects"),
    (dict(name="bad.name"), "name"),
    (dict(duplicate_window="2h", max_age="1h"), "duplicate_window"),
    (dict(creds_file="/nonexistent/rollout.creds"), "creds_file"),
    (dict(creds_file="{{ bad_creds }}"), "creds_file"),
    (dict(servers="http://127.0.0.1:4222"), "servers"),
    (dict(servers="nats://127.0.0.1:99999"), "servers"),
    (dict(connect_timeout=0), "connect_timeout"),
    (dict(user="rollout"), "password"),
    (dict(tls_ca="/nonexistent/ca.pem"), "tls_ca"),
]


def _bad_tasks():
    tasks = []
    for i, (opts, field) in enumerate(BAD_INPUTS):
        args = {"name": "EXISTING", "subjects": ["existing.>"], "max_age": "72h"}
        args.update(opts)
        args = dict((k, v) for k, v in args.items() if v is not None)
        tasks.append({"name": "bad %d %s" % (i, field), "stagegate.rollout.jetstream_stream": args,
                      "ignore_errors": True})
    return tasks


@pytest.mark.parametrize("target", ["live", "closed"])
def test_bad_inputs_rejected_before_connecting(target, nats_server, closed_url, playbook, nats_tools, tmp_path):
    """Every malformed value fails with its field named, changes nothing, and is caught before connecting.

    Against a closed port, a check made after connecting would say "cannot connect": the field errors prove that
    validation comes first.
    """
    url = nats_server.url
    existing = {"name": "EXISTING", "subjects": ["existing.>"], "max_age": "72h"}
    ok(playbook([{"stagegate.rollout.jetstream_stream": existing}], servers=url))
    before = nats_tools.stream_config(url, "EXISTING")
    bad_creds = tmp_path / "bad.creds"
    bad_creds.write_text("this is not a credentials file\n")
    run = playbook(_bad_tasks(), servers=url if target == "live" else closed_url,
                   play_vars={"bad_creds": str(bad_creds)})
    assert run.rc == 0, run.output[-3000:]
    assert len(run.results) == len(BAD_INPUTS)
    for res, (opts, field) in zip(run.results, BAD_INPUTS):
        assert res.get("failed") is True, (opts, res)
        assert not res.get("changed"), (opts, res)
        assert field in res["msg"], (opts, field, res["msg"])
        assert "cannot connect" not in res["msg"], (opts, res["msg"])
    after = nats_tools.stream_config(url, "EXISTING")
    assert after["config"] == before["config"] and after["created"] == before["created"]
    names = nats_tools.js_api(url, "STREAM.NAMES", {})["streams"]
    assert names == ["EXISTING"]


def test_unreachable_server_and_no_jetstream(closed_url, playbook, tmp_path):
    run = playbook([stream_task(max_age="72h")], servers=closed_url, module_defaults={"connect_timeout": 1})
    res = run[0]
    assert res["failed"] is True and "cannot connect to NATS" in res["msg"] and "connection refused" in res["msg"]
    assert closed_url in res["msg"]


def test_info_module(nats_server, playbook, nats_tools):
    url = nats_server.url
    ok(playbook([stream_task(max_age="24h", max_msgs=1000000, max_bytes="10GB")], servers=url))
    nats_tools.publish(url, "events.a", 5)
    run = playbook([
        {"stagegate.rollout.jetstream_info": {"stream": "EVENTS"}},
        {"stagegate.rollout.jetstream_info": {}},
        {"stagegate.rollout.jetstream_info": {"stream": "NOPE"}},
    ], servers=url, check=True)
    one, every, missing = run.results
    assert one["changed"] is False and one["exists"] is True
    assert one["stream"]["state"]["messages"] == 5 and one["stream"]["state"]["last_seq"] == 5
    assert one["stream"]["state"]["first_seq"] == 1 and one["stream"]["state"]["last_ts"]
    assert one["stream"]["options"]["max_age"] == "24h" and one["stream"]["options"]["max_bytes"] == 10 ** 10
    assert one["stream"]["config"]["max_age"] == 86400 and one["stream"]["config"]["duplicate_window"] == 120
    assert one["stream"]["consumers"] == []
    assert [s["config"]["name"] for s in every["streams"]] == ["EVENTS"]
    assert every["account"]["streams"] == 1
    assert missing["exists"] is False and missing["stream"] == {} and not missing.get("failed")
