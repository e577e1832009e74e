# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the evidence playbooks through the real ansible-playbook against localhost (tests/integration/playbook_run.py)."""

import os

import pytest

from tests.integration.playbook_run import ansible_env, run_playbook

PLAYBOOKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "playbooks")


@pytest.fixture
def playbook(tmp_path):
    """run(name, extra_vars, check=False, diff=False, verbosity=0, callback='json') -> PlaybookRun."""
    env = ansible_env(tmp_path, ANSIBLE_DEPRECATION_WARNINGS="0")

    def run(name, extra_vars=None, check=False, diff=False, verbosity=0, callback="json", timeout=300):
        return run_playbook(os.path.join(PLAYBOOKS, name), tmp_path, connection="local", extra_vars=extra_vars or {},
                            check=check, diff=diff, verbosity=verbosity, callback=callback, env=env, timeout=timeout)

    return run
