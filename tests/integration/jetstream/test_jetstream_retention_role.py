# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The jetstream_retention role: the production phase's retention timeline, from inventory-style variables."""

H = 3600 * 10 ** 9
ROLE = [{"role": "stagegate.rollout.jetstream_retention"}]


def _role_results(run):
    assert run.rc == 0, run.output[-4000:]
    applied = [r for r in run.results if "Apply JetStream stream retention" in (r.get("_task") or "")
               and not r.get("skipped")]
    assert len(applied) == 1
    return applied[0]["results"]


def test_rollout_then_tightened_retention(nats_server, playbook, nats_tools):
    url = nats_server.url
    during = {"jetstream_retention_servers": [url], "jetstream_retention_stream_name": "REPO_EVENTS",
              "jetstream_retention_subjects": ["repo.>"], "jetstream_retention_max_age": "72h",
              "jetstream_retention_max_msgs": -1, "jetstream_retention_max_bytes": -1}
    results = _role_results(playbook([], roles=ROLE, play_vars=during))
    assert [r["changed"] for r in results] == [True]
    cfg = nats_tools.stream_config(url, "REPO_EVENTS")["config"]
    assert (cfg["max_age"], cfg["max_msgs"], cfg["max_bytes"]) == (72 * H, -1, -1)
    results = _role_results(playbook([], roles=ROLE, play_vars=during))
    assert [r["changed"] for r in results] == [False]

    after = dict(during, jetstream_retention_max_age="24h", jetstream_retention_max_msgs=1000000,
                 jetstream_retention_max_bytes="10GB")
    results = _role_results(playbook([], roles=ROLE, play_vars=after, check=True))
    assert [r["changed"] for r in results] == [True]
    assert nats_tools.stream_config(url, "REPO_EVENTS")["config"]["max_age"] == 72 * H
    results = _role_results(playbook([], roles=ROLE, play_vars=after))
    assert results[0]["changes"]["max_age"] == {"before": "72h", "after": "24h"}
    cfg = nats_tools.stream_config(url, "REPO_EVENTS")["config"]
    assert (cfg["max_age"], cfg["max_msgs"], cfg["max_bytes"]) == (24 * H, 1000000, 10 ** 10)


def test_list_of_streams_with_module_defaults(nats_server, playbook, nats_tools):
    url = nats_server.url
    streams = [{"name": "A", "subjects": ["a.>"], "max_age": "24h", "max_msgs": 1000000, "max_bytes": "10GB"},
               {"name": "B", "subjects": ["b.>"], "storage": "memory", "max_age": "30m", "discard": "new"}]
    results = _role_results(playbook([], roles=ROLE, servers=url, play_vars={"jetstream_retention_streams": streams}))
    assert [r["changed"] for r in results] == [True, True]
    b = nats_tools.stream_config(url, "B")["config"]
    assert b["storage"] == "memory" and b["discard"] == "new" and b["max_age"] == 30 * 60 * 10 ** 9
    results = _role_results(playbook([], roles=ROLE, servers=url, play_vars={"jetstream_retention_streams": streams}))
    assert [r["changed"] for r in results] == [False, False]

    # a bad entry is rejected by the role before anything is applied
    run = playbook([], roles=ROLE, servers=url, play_vars={"jetstream_retention_streams": [{"subjects": ["c.>"]}]})
    assert run.rc != 0
    assert nats_tools.js_api(url, "STREAM.NAMES", {})["streams"] == ["A", "B"]
