# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""rollout_lock: one rollout per target at a time, on real files."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import stat

import pytest

from ansible_collections.stagegate.rollout.plugins.module_utils.rollout_lock import (
    LockError, acquire, decide, read, release)

HOLDER = {"release": "v2", "phase": "canary", "controller": "ctl1", "user": "ops"}
T0 = 1000000.0


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "locks" / "codex.lock")


def test_decide():
    mine = {"token": "a", "expires_at": T0 + 10}
    assert decide(None, "a", T0) == "acquire"
    assert decide(mine, "a", T0) == "refresh"
    assert decide(mine, "b", T0) == "held"
    assert decide(mine, "b", T0 + 10) == "take_over"
    assert decide(mine, "b", T0, break_lock=True) == "break"
    assert decide("not json", "b", T0) == "held"  # unreadable: fail closed
    assert decide({"token": "a"}, "b", T0 + 1e9) == "held"  # no expiry: never taken over


def test_acquire_creates_a_0600_file_and_a_second_run_is_refused_naming_the_holder(path):
    res = acquire(path, "run-a", HOLDER, 600, now=T0)
    assert res["result"] == "acquire" and res["previous"] is None
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert read(path)["holder"] == HOLDER and read(path)["expires_at"] == T0 + 600
    with pytest.raises(LockError) as err:
        acquire(path, "run-b", dict(HOLDER, release="v4", phase="staging"), 600, now=T0 + 5)
    msg = str(err.value)
    assert "held by canary of v2 from ctl1 (user ops)" in msg and "expires" in msg and "in 595 s" in msg
    assert "rollout_lock_break=true" in msg
    assert read(path)["token"] == "run-a"  # unchanged


def test_the_holder_refreshes_then_releases_and_another_cannot_release_it(path):
    acquire(path, "run-a", HOLDER, 600, now=T0)
    res = acquire(path, "run-a", HOLDER, 600, now=T0 + 100)
    assert res["result"] == "refresh" and read(path)["expires_at"] == T0 + 700 and read(path)["acquired_at"] == T0
    assert release(path, "run-b") is False and os.path.exists(path)
    assert release(path, "run-a") is True and not os.path.exists(path)
    assert release(path, "run-a") is False
    assert acquire(path, "run-b", HOLDER, 600, now=T0 + 101)["result"] == "acquire"


def test_an_expired_lock_is_taken_over_and_reported(path):
    acquire(path, "killed-run", HOLDER, 60, now=T0)
    res = acquire(path, "run-b", dict(HOLDER, release="v3"), 60, now=T0 + 61)
    assert res["result"] == "take_over" and res["previous"]["token"] == "killed-run"
    assert read(path)["token"] == "run-b"


def test_break_takes_a_held_lock(path):
    acquire(path, "run-a", HOLDER, 600, now=T0)
    res = acquire(path, "run-b", HOLDER, 600, now=T0 + 1, break_lock=True)
    assert res["result"] == "break" and read(path)["token"] == "run-b"


def test_an_unreadable_lock_is_held_until_broken(path):
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as fh:
        fh.write("garbage")
    with pytest.raises(LockError, match="held by an unreadable lock"):
        acquire(path, "run-a", HOLDER, 600, now=T0)
    assert acquire(path, "run-a", HOLDER, 600, now=T0, break_lock=True)["result"] == "break"


def test_a_symlink_is_refused(path, tmp_path):
    os.makedirs(os.path.dirname(path))
    target = str(tmp_path / "elsewhere")
    with open(target, "w") as fh:
        json.dump({"token": "x", "expires_at": T0 + 1}, fh)
    os.symlink(target, path)
    with pytest.raises(LockError, match="symbolic link"):
        acquire(path, "run-a", HOLDER, 600, now=T0)
    with open(target) as fh:
        assert json.load(fh)["token"] == "x"


def test_check_mode_writes_nothing_but_still_refuses(path):
    res = acquire(path, "run-a", HOLDER, 600, now=T0, check_mode=True)
    assert res["result"] == "acquire" and not os.path.exists(path)
    acquire(path, "run-a", HOLDER, 600, now=T0)
    with pytest.raises(LockError):
        acquire(path, "run-b", HOLDER, 600, now=T0, check_mode=True)
    assert release(path, "run-a", check_mode=True) is True and os.path.exists(path)


@pytest.mark.parametrize("token,ttl,needle", [("", 600, "token"), ("a", 0, "ttl"), ("a", "60", "ttl")])
def test_bad_arguments(path, token, ttl, needle):
    with pytest.raises(LockError, match=needle):
        acquire(path, token, HOLDER, ttl, now=T0)
