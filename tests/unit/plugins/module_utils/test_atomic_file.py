# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""atomic_file: replace a file all at once, keeping its mode and owner (and, through a module, its label)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import stat

import pytest

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from ansible_collections.stagegate.rollout.plugins.module_utils.atomic_file import (
    AtomicWriteError, atomic_write, fsync_dir, write_json_state)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_replaces_with_mode_and_leaves_no_temp(tmp_path):
    path = str(tmp_path / "rollout.env")
    atomic_write(path, "A=1\n", mode=0o640)
    assert open(path).read() == "A=1\n" and _mode(path) == 0o640
    inode = os.stat(path).st_ino
    atomic_write(path, "A=2\n")                     # keeps the existing mode
    assert open(path).read() == "A=2\n" and _mode(path) == 0o640
    assert os.stat(path).st_ino != inode            # a new file was renamed over the old one
    assert os.listdir(str(tmp_path)) == ["rollout.env"]


def test_a_new_file_gets_new_mode_bytes_are_written_as_they_are(tmp_path):
    path = str(tmp_path / "state.json")
    atomic_write(path, b"\x00\xff", new_mode=0o600)
    assert open(path, "rb").read() == b"\x00\xff" and _mode(path) == 0o600
    atomic_write(str(tmp_path / "other"), u"caf\u00e9")
    assert open(str(tmp_path / "other"), "rb").read() == u"caf\u00e9".encode("utf-8")
    assert _mode(str(tmp_path / "other")) == 0o644


def test_a_missing_directory_is_refused_naming_the_path(tmp_path):
    with pytest.raises(AtomicWriteError, match="path .*x.env: directory .*nope does not exist"):
        atomic_write(str(tmp_path / "nope" / "x.env"), "A=1\n")


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    path = str(tmp_path / "f")
    atomic_write(path, "old")

    def boom(src, dst):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "rename", boom)
    with pytest.raises(OSError, match="No space"):
        atomic_write(path, "new")
    assert open(path).read() == "old" and os.listdir(str(tmp_path)) == ["f"]


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_keeps_the_owner_and_group(tmp_path):
    path = str(tmp_path / "program.conf")
    atomic_write(path, "a")
    os.chown(path, 4321, 4322)
    atomic_write(path, "b")
    st = os.stat(path)
    assert (st.st_uid, st.st_gid) == (4321, 4322)


def test_through_a_module_atomic_move_keeps_mode_or_sets_the_one_asked(tmp_path):
    with patch_module_args({}):
        module = AnsibleModule(argument_spec={})
    path = str(tmp_path / "flags.env")
    atomic_write(path, "A=1\n", module=module)
    assert open(path).read() == "A=1\n" and _mode(path) == 0o644
    os.chmod(path, 0o604)
    atomic_write(path, "A=2\n", module=module)
    assert open(path).read() == "A=2\n" and _mode(path) == 0o604
    atomic_write(path, "A=3\n", mode=0o600, module=module)
    assert open(path).read() == "A=3\n" and _mode(path) == 0o600
    assert os.listdir(str(tmp_path)) == ["flags.env"]


def test_fsync_dir_ignores_what_cannot_be_synced(tmp_path):
    fsync_dir(str(tmp_path))
    fsync_dir(str(tmp_path / "missing"))


class _CheckMode:
    def __init__(self, check_mode):
        self.check_mode = check_mode

    def atomic_move(self, src, dest):
        os.rename(src, dest)


def test_write_json_state_writes_only_what_changed_and_nothing_in_check_mode(tmp_path):
    path = tmp_path / "state.json"
    assert write_json_state(str(path), {"b": 1, "a": 2}, _CheckMode(True)) and not path.exists()
    assert write_json_state(str(path), {"b": 1, "a": 2}, _CheckMode(False))
    assert json.loads(path.read_text()) == {"a": 2, "b": 1} and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not write_json_state(str(path), {"a": 2, "b": 1}, _CheckMode(False))
    with pytest.raises(AtomicWriteError, match="^state_file .*: directory .* does not exist"):
        write_json_state(str(tmp_path / "no" / "state.json"), {}, _CheckMode(False))
