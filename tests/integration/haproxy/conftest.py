# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for the haproxy_traffic tests: a real HAProxy (Debian 2.6) on loopback, real HTTP servers behind it."""

import pytest

from tests.integration.haproxy.haproxy_kit import LB, Backends


@pytest.fixture
def backends():
    b = Backends(["s1", "s2", "c1"]).start()
    yield b
    b.stop()


@pytest.fixture
def lb(tmp_path, backends):
    """HAProxy with backend ``app``: stable s1, s2 (weight 50 each) and canary c1 (weight 0)."""
    h = LB(str(tmp_path / "haproxy"), backends, {"s1": 50, "s2": 50, "c1": 0}).start()
    yield h
    h.stop()
