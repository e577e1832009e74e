# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a module of the collection in-process, as the unit tests of its module file do."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible.module_utils.testing import patch_module_args


def run_module_main(module, args, capsys, check=False):
    """``module.main()`` with ``args`` (in check mode when ``check``) until it exits: (what it printed, the result
    it exited with as a dict)."""
    if check:
        args = dict(args, _ansible_check_mode=True)
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    out = capsys.readouterr().out
    return out, json.loads(out[out.index("{"):])
