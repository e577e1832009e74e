# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""drift_monitor (the module): a provider's secrets never reach its output, also when the provider fails."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import socket

from ansible_collections.stagegate.rollout.plugins.modules import drift_monitor
from tests.unit.module_run import run_module_main


def _closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run_module(args, capsys):
    return run_module_main(drift_monitor, args, capsys)


def test_a_failing_provider_does_not_print_its_password_or_token(capsys):
    url = "http://ops:pa55-in-url@127.0.0.1:%d" % _closed_port()
    out, res = run_module({"query": "sum(rate(errors[1m]))", "target": 0.01, "sigma": 0.005,
                           "provider": {"type": "prometheus", "url": url, "token": "t0ken-secret", "timeout": 2}},
                          capsys)
    assert res["failed"] and "sum(rate(errors[1m]))" in res["msg"], res
    assert "pa55-in-url" not in out and "t0ken-secret" not in out, out
    assert "127.0.0.1" in res["msg"], res["msg"]  # the message still says where it failed
