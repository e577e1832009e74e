# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
import pytest

from ansible_collections.stagegate.rollout.plugins.filter.sentinel_tally import sentinel_tally
from ansible_collections.stagegate.rollout.plugins.module_utils.sentinel import SentinelError, count, plan, tally


def test_the_plan_fills_in_min_results_and_keeps_one_target():
    assert plan(None) == [] and plan([]) == []
    assert plan([{"name": "docs", "path": "/api/docs/x", "results": "policy_refs"},
                 {"name": "queue", "command": ["nats", "consumer", "ls"], "min_results": 2},
                 {"name": "search", "url": "https://search.example/q?class"}]) == [
        {"name": "docs", "path": "/api/docs/x", "results": "policy_refs", "min_results": 1},
        {"name": "queue", "command": ["nats", "consumer", "ls"], "results": None, "min_results": 2},
        {"name": "search", "url": "https://search.example/q?class", "results": None, "min_results": 1}]


@pytest.mark.parametrize("sentinels, words", [
    ({"name": "x"}, "rollout_sentinels: {'name': 'x'} is not accepted (accepted: a list"),
    (["/api/docs"], "rollout_sentinels[0]: '/api/docs' is not a sentinel"),
    ([{"name": "a", "path": "/a"}, {"name": "a", "path": "/b"}], "rollout_sentinels[1].name: 'a' is not accepted"),
    ([{"name": "", "path": "/a"}], "rollout_sentinels[0].name"),
    ([{"name": "a"}], "rollout_sentinels[0]: none of them given (accepted: exactly one of path, url, command)"),
    ([{"name": "a", "path": "/a", "url": "http://x/"}], "path, url given (accepted: exactly one of"),
    ([{"name": "a", "path": "api"}], "rollout_sentinels[0].path: 'api' is not accepted (accepted: a path starting with /)"),
    ([{"name": "a", "url": "ftp://u:secret@x/"}], "rollout_sentinels[0].url: '<url>' is not accepted"),
    ([{"name": "a", "command": "ls -l"}], "rollout_sentinels[0].command: 'ls -l' is not accepted (accepted: an argv"),
    ([{"name": "a", "path": "/a", "results": "data..items"}], "rollout_sentinels[0].results: 'data..items'"),
    ([{"name": "a", "path": "/a", "min_results": 0}], "rollout_sentinels[0].min_results: 0 is not accepted"),
    ([{"name": "a", "path": "/a", "min_results": True}], "rollout_sentinels[0].min_results: True"),
    ([{"name": "a", "path": "/a", "expect": 1}], "rollout_sentinels[0]: unknown key(s) expect (accepted: command,"),
])
def test_a_bad_sentinel_is_refused_naming_the_field(sentinels, words):
    with pytest.raises(SentinelError) as err:
        plan(sentinels)
    assert words in str(err.value)
    assert "secret" not in str(err.value)


@pytest.mark.parametrize("answer, results, n", [
    ('{"data": {"items": [1, 2, 3]}}', "data.items", 3),
    ('{"data": {"items": {"a": 1}}}', "data.items", 1),
    ('{"hits": {"total": 7}}', "hits.total", 7),
    ('{"hits": {"total": -2}}', "hits.total", 0),
    ('{"rows": [[1], [2]]}', "rows.1", 1),
    ('{"data": null}', "data.items", 0),
    ('{"data": "text"}', "data", 0),
    ('{"ok": true}', "ok", 0),
    ("not json", "data", 0),
    ("[1, 2]", None, 2),
    ("[]", None, 0),
    ('{"a": 1}', None, 1),
    ("{}", None, 0),
    ("null", None, 0),
    ("a\n\n b \n", None, 2),
    (b'{"repos": ["x", "y"]}', "repos", 2),
    ("", None, 0),
])
def test_count(answer, results, n):
    assert count(answer, results) == n


def test_tally_all_or_any():
    probes = [{"name": "a", "host": "app1", "results": 3, "min_results": 1, "error": None},
              {"name": "a", "host": "app2", "results": 0, "min_results": 1, "error": None},
              {"name": "b", "host": "app2", "results": None, "min_results": 1, "error": "HTTP 404: Not Found"}]
    every = tally(probes, "all")
    assert every == {"passed": False, "returned": 1, "total": 3,
                     "empty": ["a on app2: 0 result(s), 1 needed", "b on app2: HTTP 404: Not Found"]}
    assert tally(probes, "any")["passed"] is True
    assert tally(probes[1:], "any")["passed"] is False
    assert tally(probes[:1], "all")["passed"] is True
    assert tally([], "any")["passed"] is False
    with pytest.raises(SentinelError, match="sentinels_required: 'some' is not accepted"):
        tally(probes, "some")


def test_the_tally_filter_counts_a_host_without_a_result_as_empty():
    ran = {"sentinels": [{"name": "a", "results": 2, "min_results": 1, "error": None}]}
    out = sentinel_tally({"app1": ran, "app2": {"msg": "unreachable"}, "app3": None}, "all")
    assert (out["passed"], out["returned"], out["total"]) == (False, 1, 3), out
    assert out["empty"] == ["every sentinel on app2: no result from the host: unreachable",
                            "every sentinel on app3: no result from the host: it did not run"], out
    assert [p["host"] for p in out["probes"]] == ["app1", "app2", "app3"]
    assert sentinel_tally({"app1": ran}, "any")["passed"] is True
