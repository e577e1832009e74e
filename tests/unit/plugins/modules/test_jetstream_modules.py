# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The JetStream modules reject bad input before connecting, and report a missing nats-py clearly."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import builtins
import json

import pytest

from ansible_collections.stagegate.rollout.plugins.module_utils import nats_connection
from ansible_collections.stagegate.rollout.plugins.modules import jetstream_consumer, jetstream_info, jetstream_stream
from tests.unit.module_run import run_module_main


@pytest.fixture
def no_connect(monkeypatch):
    calls = []

    def connect(self):
        calls.append(self.params.servers)
        raise AssertionError("a module connected before rejecting bad input")

    monkeypatch.setattr(nats_connection.NatsSession, "connect", connect)
    return calls


def run_module(module, args, capsys):
    return run_module_main(module, args, capsys)[1]


STREAM = {"name": "EVENTS", "subjects": ["events.>"]}

BAD_STREAM_ARGS = [
    (dict(STREAM, max_age="72x"), "max_age"),
    (dict(STREAM, max_age="-2h"), "max_age"),
    (dict(STREAM, max_bytes="10XB"), "max_bytes"),
    (dict(STREAM, max_bytes=-3), "max_bytes"),
    (dict(STREAM, max_msgs=-9), "max_msgs"),
    (dict(STREAM, retention="forever"), "retention"),
    (dict(STREAM, discard="oldest"), "discard"),
    (dict(STREAM, storage="tape"), "storage"),
    ({"name": "EVENTS"}, "subjects"),
    (dict(STREAM, subjects=["a..b"]), "subjects"),
    (dict(STREAM, name="a.b"), "name"),
    (dict(STREAM, duplicate_window="1h", max_age="10m"), "duplicate_window"),
    (dict(STREAM, creds_file="/nonexistent.creds"), "creds_file"),
    (dict(STREAM, servers=["ftp://h:21"]), "servers"),
    (dict(STREAM, user="rollout"), "password"),
    (dict(STREAM, token="t", creds_file="/x"), "creds_file"),
]


@pytest.mark.parametrize("args,field", BAD_STREAM_ARGS)
def test_stream_bad_input_fails_before_connecting(args, field, no_connect, capsys):
    result = run_module(jetstream_stream, args, capsys)
    assert result["failed"] is True and field in result["msg"]
    assert not result.get("changed")
    assert no_connect == []


BAD_CONSUMER_ARGS = [
    ({"stream": "EVENTS", "name": "p", "deliver_policy": "by_start_sequence"}, "start_sequence"),
    ({"stream": "EVENTS", "name": "p", "replay_from_time": "yesterday"}, "replay_from_time"),
    ({"stream": "EVENTS", "name": "p", "replay_from_seq": 0}, "replay_from_seq"),
    ({"stream": "EVENTS", "name": "p", "replay_from_seq": 3, "replay_from_time": "2026-01-01T00:00:00Z"},
     "replay_from_seq"),
    ({"stream": "EVENTS", "name": "p", "ack_wait": "soon"}, "ack_wait"),
    ({"stream": "EVENTS", "name": "p", "ack_policy": "sometimes"}, "ack_policy"),
    ({"stream": "EVENTS", "name": "p.q"}, "name"),
    ({"stream": "EVENTS", "name": "p", "state": "absent", "replay_from_seq": 4}, "replay_from_seq"),
]


@pytest.mark.parametrize("args,field", BAD_CONSUMER_ARGS)
def test_consumer_bad_input_fails_before_connecting(args, field, no_connect, capsys):
    result = run_module(jetstream_consumer, args, capsys)
    assert result["failed"] is True and field in result["msg"]
    assert no_connect == []


def test_info_bad_input_fails_before_connecting(no_connect, capsys):
    result = run_module(jetstream_info, {"consumer": "p"}, capsys)
    assert result["failed"] is True and "stream" in result["msg"]
    result = run_module(jetstream_info, {"stream": "a b"}, capsys)
    assert result["failed"] is True and "stream" in result["msg"]
    result = run_module(jetstream_info, {"quiet_consumers": ["p"]}, capsys)
    assert result["failed"] is True and "stream" in result["msg"]
    result = run_module(jetstream_info, {"stream": "EVENTS", "quiet_consumers": ["a b"]}, capsys)
    assert result["failed"] is True and "quiet_consumers" in result["msg"]
    result = run_module(jetstream_info, {"stream": "EVENTS", "quiet_consumers": ["p"], "quiet_seconds": 5,
                                         "quiet_timeout": 2}, capsys)
    assert result["failed"] is True and "quiet_seconds 5.0, quiet_timeout 2.0" in result["msg"], result
    assert no_connect == []


def test_password_never_in_module_output(no_connect, capsys):
    secret = "Sup3r-S3cret-Pa55"
    result = run_module(jetstream_stream, dict(STREAM, max_age="bad", user="u", password=secret), capsys)
    assert result["failed"] is True
    assert secret not in json.dumps(result)


def test_missing_nats_py_is_reported(monkeypatch, no_connect, capsys):
    real_import = builtins.__import__

    def fake_import(name, *a, **kw):
        if name == "nats" or name.startswith("nats."):
            raise ImportError("No module named 'nats'")
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    result = run_module(jetstream_stream, dict(STREAM, max_age="72h"), capsys)
    assert result["failed"] is True and "nats-py" in result["msg"]
    assert no_connect == []
