# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Three real SSH app hosts (sshd on 127.0.0.11-13:22, root login by key) for the tests of this directory."""

import os

import pytest

from tests.integration.hosts.ssh_hosts import SSHD, SshHosts


@pytest.fixture(scope="module")
def ssh_hosts(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("SSH app hosts need root (sshd on port 22, /run/sshd, root login)")
    if not os.access(SSHD, os.X_OK):
        pytest.skip("%s is missing: install Debian's openssh-server (scripts/setup.sh does)" % SSHD)
    with SshHosts(str(tmp_path_factory.mktemp("ssh_hosts"))) as hosts:
        yield hosts
