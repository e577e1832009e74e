# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Config fingerprint: canonical, order-free, checkout-free, sensitive to every item."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import hashlib
import shutil

import pytest

from ansible_collections.stagegate.rollout.plugins.module_utils.fingerprint import (
    FingerprintError, compare, fingerprint)

RELEASE = {
    "version": "2.1.0",
    "flags": {"CODEX_PUBLISH_ENABLED": True, "CODEX_REPO_INCLUDE_LIST": ["org/a", "org/b"]},
    "thresholds": {"error_rate": 0.05, "latency_ms": 5000},
    "retention": {"max_age": "72h", "max_msgs": -1, "max_bytes": -1},
}
GOLDEN = "a371d945335db79f563faa529ead1799cf8a6c2a2443f07afcf710fa8d920ccc"


def make_checkout(root):
    (root / "chart" / "templates").mkdir(parents=True)
    (root / "chart" / "values.yaml").write_text("replicas: 2\nimage: codex:2.1.0\n")
    (root / "chart" / "templates" / "deploy.yaml").write_text("kind: Deployment\n")
    (root / "rollout.env").write_text("CODEX_PUBLISH_ENABLED=true\n")
    return root


def test_documented_definition_computed_independently():
    def h(text):
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    result = fingerprint(data={"version": "2.1.0", "flags": {"B": False, "A": True}})
    items = {"data.flags": h('{"A":true,"B":false}'), "data.version": h('"2.1.0"')}
    assert result["items"] == items
    expected = h('{"items":{"data.flags":"%s","data.version":"%s"},"version":1}'
                 % (items["data.flags"], items["data.version"]))
    assert result["fingerprint"] == expected


def test_golden_value_is_stable_across_machines():
    # pinned once; a change here means every frozen fingerprint in the field would break
    assert fingerprint(data=RELEASE)["fingerprint"] == GOLDEN


def test_key_order_does_not_matter():
    shuffled = dict(reversed(list(RELEASE.items())))
    shuffled["flags"] = dict(reversed(list(RELEASE["flags"].items())))
    assert fingerprint(data=shuffled)["fingerprint"] == fingerprint(data=RELEASE)["fingerprint"]


def test_same_across_two_checkouts_and_file_orders(tmp_path):
    a = make_checkout(tmp_path / "a")
    b = tmp_path / "b"
    shutil.copytree(str(a), str(b))
    fa = fingerprint(data=RELEASE, files=["chart", "rollout.env"], base_dir=str(a))
    fb = fingerprint(data=RELEASE, files=["rollout.env", "chart"], base_dir=str(b))
    assert fa == fb
    assert sorted(fa["items"]) == ["data.flags", "data.retention", "data.thresholds", "data.version",
                                   "file:chart/templates/deploy.yaml", "file:chart/values.yaml", "file:rollout.env"]
    absolute = fingerprint(data=RELEASE, files=[str(b / "chart"), str(b / "rollout.env")], base_dir=str(b))
    assert absolute == fa


@pytest.mark.parametrize("change", [
    lambda d: d["flags"].update(CODEX_PUBLISH_ENABLED=False),
    lambda d: d["flags"]["CODEX_REPO_INCLUDE_LIST"].reverse(),
    lambda d: d["thresholds"].update(error_rate=0.050001),
    lambda d: d["retention"].update(max_msgs=1000000),
    lambda d: d.update(version="2.1.1"),
    lambda d: d["thresholds"].update(latency_ms=5000.0),  # 5000 and 5000.0 are different declarations
])
def test_any_change_changes_it_and_is_named(change):
    changed = copy.deepcopy(RELEASE)
    change(changed)
    before, after = fingerprint(data=RELEASE), fingerprint(data=changed)
    assert before["fingerprint"] != after["fingerprint"]
    diff = compare(after["items"], before["items"])
    assert len(diff) == 1 and diff[0]["change"] == "changed"


def test_file_change_is_named(tmp_path):
    root = make_checkout(tmp_path / "c")
    before = fingerprint(files=["chart"], base_dir=str(root))
    (root / "chart" / "values.yaml").write_text("replicas: 3\nimage: codex:2.1.0\n")
    (root / "chart" / "NOTES.txt").write_text("hi\n")
    after = fingerprint(files=["chart"], base_dir=str(root))
    assert compare(after["items"], before["items"]) == [
        {"item": "file:chart/NOTES.txt", "change": "added"},
        {"item": "file:chart/values.yaml", "change": "changed"}]
    assert compare(before["items"], after["items"])[0]["change"] == "removed"


@pytest.mark.parametrize("kwargs, message", [
    (dict(), "give data and/or files"),
    (dict(data={"x": float("nan")}), r"data.x: nan is not allowed \(NaN and Infinity have no canonical JSON form\)"),
    (dict(data={"x": {"y": [1, float("inf")]}}), r"data.x.y\[1\]: inf is not allowed"),
    (dict(data={"x": {1: "a"}}), r"data.x: key 1 must be a string"),
    (dict(data={"x": object()}), r"data.x: object .* is not JSON data"),
    (dict(files=["/nonexistent/file.yaml"]), r"files: /nonexistent/file.yaml does not exist"),
    (dict(files=[""]), r"files: '' is not a path"),
    (dict(files=["x"], base_dir="/nonexistent-dir"), r"base_dir /nonexistent-dir is not a directory"),
])
def test_bad_input_names_the_item(kwargs, message):
    with pytest.raises(FingerprintError, match=message):
        fingerprint(**kwargs)


def test_file_outside_base_dir_refused(tmp_path):
    root = make_checkout(tmp_path / "d")
    (tmp_path / "outside.txt").write_text("x")
    with pytest.raises(FingerprintError, match="outside base_dir"):
        fingerprint(files=[str(tmp_path / "outside.txt")], base_dir=str(root))


def test_non_mapping_data_is_one_item():
    result = fingerprint(data=["a", 1])
    assert list(result["items"]) == ["data"]
