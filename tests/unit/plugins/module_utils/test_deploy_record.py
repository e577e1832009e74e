# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""deploy_record: a deployment's directory and its record - created, kept, rewritten, another owner's refused."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import stat

import pytest

from ansible_collections.stagegate.rollout.plugins.module_utils.deploy_record import DeployRecordError, apply, plan

V2 = {"version": "v2", "port": 8102, "program": "codex-v2"}


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def _file(tmp_path, name="v2"):
    return str(tmp_path / name / "deploy.json")


def test_a_new_directory_and_its_record(tmp_path):
    path = _file(tmp_path)
    res = apply(path, V2, deployed_at="2026-12-04T05:00:00.000000Z")
    assert res["changed"] and res["created"] and res["previous"] is None
    assert _mode(os.path.dirname(path)) == 0o755 and _mode(path) == 0o644
    on_disk = json.loads(open(path).read())
    assert on_disk == dict(V2, deployed_at="2026-12-04T05:00:00.000000Z") == res["record"]
    assert res["before"] == "" and res["after"] == open(path).read()


def test_a_version_directory_keeps_its_first_record(tmp_path):
    path = _file(tmp_path)
    apply(path, V2, deployed_at="t1")
    first = open(path).read()
    again = apply(path, V2, deployed_at="t2")
    assert not again["changed"] and not again["created"] and again["previous"]["deployed_at"] == "t1"
    moved = apply(path, dict(V2, port=9999), deployed_at="t3")  # rewrite false: the first record stays
    assert not moved["changed"] and open(path).read() == first


def test_an_instance_record_follows_what_runs_there(tmp_path):
    path = _file(tmp_path, "canary")
    apply(path, V2, instance="canary", rewrite=True, deployed_at="t1")
    assert json.loads(open(path).read())["instance"] == "canary"
    same = apply(path, V2, instance="canary", rewrite=True, deployed_at="t2")  # deployed_at is not compared
    assert not same["changed"] and json.loads(open(path).read())["deployed_at"] == "t1"
    v3 = dict(V2, version="v3", program="codex-canary")
    res = apply(path, v3, instance="canary", rewrite=True, deployed_at="t3")
    assert res["changed"] and res["previous"]["version"] == "v2"
    assert json.loads(open(path).read()) == dict(v3, instance="canary", deployed_at="t3")


@pytest.mark.parametrize("owner, asking, words", [
    ("", "canary", "holds a version (v2), not instance canary; use another instance"),
    ("canary", "", "holds instance canary (v2), not a version; use another version"),
    ("canary", "stable", "holds instance canary (v2), not instance stable; use another instance"),
])
def test_another_owners_directory_is_refused_before_any_change(tmp_path, owner, asking, words):
    path = _file(tmp_path)
    apply(path, V2, instance=owner, rewrite=bool(owner), deployed_at="t1")
    before = open(path).read()
    with pytest.raises(DeployRecordError) as err:
        apply(path, dict(V2, version="v3"), instance=asking, rewrite=True, deployed_at="t2")
    assert str(err.value) == "%s: the directory %s" % (os.path.dirname(path), words)
    assert open(path).read() == before


def test_check_mode_reports_and_writes_nothing(tmp_path):
    path = _file(tmp_path)
    res = apply(path, V2, deployed_at="t1", check_mode=True)
    assert res["changed"] and res["created"] and res["record"]["version"] == "v2"
    assert not os.path.exists(os.path.dirname(path))
    apply(path, V2, instance="canary", rewrite=True, deployed_at="t1")
    res = apply(path, dict(V2, version="v3"), instance="canary", rewrite=True, deployed_at="t2", check_mode=True)
    assert res["changed"] and '"v3"' in res["after"] and '"v2"' in res["before"]
    assert json.loads(open(path).read())["version"] == "v2"


@pytest.mark.parametrize("content, words", [
    ("{not json", "not a JSON record"),
    ("[1, 2]", "not a JSON object"),
])
def test_a_record_that_is_not_one_is_refused(tmp_path, content, words):
    path = _file(tmp_path)
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as fh:
        fh.write(content)
    with pytest.raises(DeployRecordError) as err:
        apply(path, V2, deployed_at="t1")
    assert str(err.value).startswith(path + ": " + words)
    assert open(path).read() == content


def test_a_file_where_the_directory_should_be_is_refused(tmp_path):
    (tmp_path / "v2").write_text("x")
    with pytest.raises(DeployRecordError) as err:
        apply(_file(tmp_path), V2, deployed_at="t1")
    assert "exists and is not a directory" in str(err.value)


def test_plan_alone():
    assert plan(None, V2, "", False) == V2
    assert plan(dict(V2, deployed_at="t"), V2, "", True) is None
    assert plan(dict(V2, instance="a", deployed_at="t"), dict(V2, port=1), "a", True) == dict(V2, port=1, instance="a")
