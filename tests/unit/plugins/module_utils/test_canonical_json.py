# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""canonical_json: one byte form for the ledger's hashes and the config fingerprint."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.stagegate.rollout.plugins.module_utils.canonical_json import canonical_json, check_json


class MyError(ValueError):
    pass


def test_canonical_bytes_do_not_depend_on_key_order_and_keep_utf8():
    assert canonical_json({"b": 1, "a": [1.5, None, True]}) == b'{"a":[1.5,null,true],"b":1}'
    assert canonical_json({"a": 1, "b": 2}) == canonical_json(dict([("b", 2), ("a", 1)]))
    assert canonical_json({"k": u"caf\u00e9"}) == u'{"k":"caf\u00e9"}'.encode("utf-8")
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def test_check_json_accepts_json_data():
    check_json({"a": [1, 2.5, "x", None, True, {"b": ()}]}, "data", MyError)


@pytest.mark.parametrize("value, message", [
    ({"x": float("nan")}, r"data.x: nan is not allowed \(NaN and Infinity have no canonical JSON form\)"),
    ({"x": {"y": [1, float("-inf")]}}, r"data.x.y\[1\]: -inf is not allowed"),
    ({"x": {1: "a"}}, r"data.x: key 1 must be a string \(canonical JSON sorts string keys\)"),
    ({"x": [object()]}, r"data.x\[0\]: object <object .*> is not JSON data \(use strings, numbers"),
    ({"x": {1, 2}}, r"data.x: set .* is not JSON data"),
])
def test_check_json_names_the_path_and_raises_the_callers_error(value, message):
    with pytest.raises(MyError, match=message):
        check_json(value, "data", MyError)
