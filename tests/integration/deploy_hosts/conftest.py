# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real HAProxy with two pre-declared server slots (blue, green) in backend ``app``, both in maintenance; for the
slot mode one whose backend declares the servers ``stable`` and ``canary`` statically at fixed ports."""

import os
import signal

import pytest

from demo.stack.haproxy import HAProxy, runtime_command
from demo.stack.ports import free_port


@pytest.fixture(scope="module")
def lb(tmp_path_factory):
    work = tmp_path_factory.mktemp("deploy_hosts_lb")
    # Unused ports until the role points the slots at a version; weight 0 and maint via the runtime API below.
    h = HAProxy(str(work), backends={"app": [("blue", "127.0.0.1:%d" % free_port(), 0),
                                             ("green", "127.0.0.1:%d" % free_port(), 0)]}).start()
    runtime_command(h.socket_path, ["set server app/blue state maint", "set server app/green state maint"])
    yield h
    h.stop()


@pytest.fixture(scope="module")
def slot_lb(tmp_path_factory):
    """Backend ``app``: ``stable`` and ``canary`` at fixed ports (``slot_ports``), weight 1 each, no runtime changes."""
    work = tmp_path_factory.mktemp("deploy_hosts_slot_lb")
    ports = {"stable": free_port(), "canary": free_port()}
    while ports["canary"] == ports["stable"]:
        ports["canary"] = free_port()
    h = HAProxy(str(work), backends={"app": [(name, "127.0.0.1:%d" % ports[name], 1) for name in ("stable", "canary")]})
    h.start()
    h.slot_ports = ports
    yield h
    h.stop()


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("deploy_hosts_base")
    yield str(d)
    pid_file = os.path.join(str(d), "supervisor", "supervisord.pid")
    try:
        with open(pid_file) as fh:
            os.kill(int(fh.read().strip()), signal.SIGTERM)  # supervisord stops its programs (stopasgroup)
    except (OSError, ValueError):
        pass
