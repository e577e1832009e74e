# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the metric providers: no network (HTTP is replaced by fakes of open_url)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import io
import json
import math
import socket

import pytest

from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError

from ansible_collections.stagegate.rollout.plugins.module_utils import metric_http
from ansible_collections.stagegate.rollout.plugins.module_utils import rollout_target as rt
from ansible_collections.stagegate.rollout.plugins.module_utils.durations import parse_duration, parse_seconds
from ansible_collections.stagegate.rollout.plugins.module_utils.histogram import bucket_quantile
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_base import (
    MetricError, MultipleSeriesError, NoDataError, ProviderError, QueryError, Sample, UnreachableError, jsonable)
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_providers import build_provider, json_samples
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_spec import normalize_spec
from ansible_collections.stagegate.rollout.plugins.module_utils.query_template import render_query

TOKEN = "tok-Secret-123456"


# ---------------------------------------------------------------------------
# durations, variables, escaping

@pytest.mark.parametrize("text,seconds", [("60s", 60), ("5m", 300), ("1h30m", 5400), ("250ms", 0.25), ("1d", 86400),
                                          ("2w", 14 * 86400)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["60", "5 minutes", "-5m", "0s", "1.5m", "", "m", 60, None, True, "5M"])
def test_parse_duration_rejects(bad):
    with pytest.raises(ValueError) as exc:
        parse_duration(bad, "checks[0].window")
    assert "checks[0].window" in str(exc.value)


def test_parse_seconds_numbers_and_durations():
    assert parse_seconds(10, "interval") == 10
    assert parse_seconds("10", "interval") == 10
    assert parse_seconds("2m", "interval") == 120
    for bad in (-1, "soon", True, float("nan")):
        with pytest.raises(ValueError) as exc:
            parse_seconds(bad, "interval")
        assert "interval" in str(exc.value)


def test_render_label_values_are_escaped():
    q = render_query('up{service="${service}", version=\'${version}\'}', {"service": 'a"b\\c\nd', "version": "it's"})
    assert q == 'up{service="a\\"b\\\\c\\nd", version=\'it\\\'s\'}'


def test_render_regex_matchers_are_regex_escaped():
    q = render_query('x{version=~"${version}"}', {"version": "1.2.3+build(7)"})
    # RE2 escape, then string escape: a literal match of the version, not a regex
    assert q == 'x{version=~"1\\\\.2\\\\.3\\\\+build\\\\(7\\\\)"}'
    # equality matchers are not regex-escaped
    assert render_query('x{version="${version}"}', {"version": "1.2.3"}) == 'x{version="1.2.3"}'
    # a regex matcher with the value as one alternative
    assert render_query('x{v!~"old|${v}"}', {"v": "a.b"}) == 'x{v!~"old|a\\\\.b"}'


def test_render_injection_outside_quotes_is_refused():
    with pytest.raises(ValueError) as exc:
        render_query('sum(x{a="1"}) or ${service}', {"service": 'x{a="1"}'})
    assert "${service}" in str(exc.value) and "quoted" in str(exc.value)
    # a quote in the value cannot close the string it is placed in
    q = render_query('x{service="${service}"}', {"service": '"} or vector(1) or x{a="'})
    assert q.count('"') == 2 + q.count('\\"')


def test_render_window_must_be_a_duration():
    assert render_query("rate(x[${window}])", {"window": "60s"}) == "rate(x[60s])"
    with pytest.raises(ValueError) as exc:
        render_query("rate(x[${window}])", {"window": "60"})
    assert "vars.window" in str(exc.value) and "60s" in str(exc.value)
    with pytest.raises(ValueError) as exc:
        render_query("rate(x[${window}])", {"window": "5m] or vector(1) #"})
    assert "vars.window" in str(exc.value)


def test_render_unknown_and_bad_variables():
    with pytest.raises(ValueError) as exc:
        render_query('x{a="${nope}"}', {"service": "s"}, field="checks[1].query")
    assert "checks[1].query" in str(exc.value) and "${nope}" in str(exc.value) and "service" in str(exc.value)
    for bad in ({"service": True}, {"service": None}, {"service": ["a"]}, {"bad name": "x"}, {"service": "a\x00b"}):
        with pytest.raises(ValueError) as exc:
            render_query('x{a="${service}"}', bad)
        assert "vars" in str(exc.value)
    with pytest.raises(ValueError):
        render_query('x{a="${service"}', {"service": "s"})
    with pytest.raises(ValueError):
        render_query("x{a=`${v}`}", {"v": "a`b"})
    # identifiers and numbers are fine outside strings; no placeholder leaves the text alone
    assert render_query("x * ${factor}", {"factor": 1000}) == "x * 1000"
    assert render_query("${metric}", {"metric": "http_requests_total"}) == "http_requests_total"
    assert render_query("sum(up)", {}) == "sum(up)"


def test_render_jmespath_dialect():
    assert render_query("services.${svc}.p95", {"svc": "api"}, "jmespath") == "services.api.p95"
    assert render_query("services[?name=='${svc}'].p95 | [0]", {"svc": "it's"}, "jmespath") == \
        "services[?name=='it\\'s'].p95 | [0]"
    assert render_query('services."${svc}".p95', {"svc": 'a"b'}, "jmespath") == 'services."a\\"b".p95'
    with pytest.raises(ValueError):
        render_query("services.${svc}.p95", {"svc": "my-svc"}, "jmespath")


# ---------------------------------------------------------------------------
# provider specs: bad input names the field

@pytest.mark.parametrize("spec,field", [
    ("http://x", "provider must be a dict"),
    ({"url": "http://x", "tokn": "a"}, "unknown keys tokn"),
    ({"type": "graphite", "url": "http://x"}, "provider.type"),
    ({"url": "http://x", "timeout": 0}, "provider.timeout"),
    ({"url": "http://x", "timeout": "fast"}, "provider.timeout"),
    ({"url": "http://x", "retries": 11}, "provider.retries"),
    ({"url": "http://x", "retries": True}, "provider.retries"),
    ({"url": "http://x", "retry_backoff": -1}, "provider.retry_backoff"),
    ({"url": "http://x", "validate_certs": "yes"}, "provider.validate_certs"),
    ({"url": "http://x", "password": "p"}, "provider.password"),
    ({"url": "http://x", "token": "t", "username": "u"}, "token"),
    ({"url": "http://x", "targets": [{"url": "http://y"}]}, "provider.targets"),
    ({"url": "http://x", "labels": {"a": "b"}}, "provider.labels"),
    ({"type": "prometheus"}, "provider.url"),
    ({"type": "http_json"}, "provider.url"),
    ({"url": "ftp://x"}, "provider.url"),
    ({"url": "127.0.0.1:9090"}, "provider.url"),
    ({"type": "prometheus_text"}, "provider.url"),
    ({"type": "prometheus_text", "url": "http://x/metrics", "labels": {"__name__": "x"}}, "provider.labels"),
    ({"type": "prometheus_text", "targets": [{"url": "http://x", "lables": {}}]}, "provider.targets[0]"),
])
def test_bad_provider_specs_name_the_field(spec, field):
    with pytest.raises(ProviderError) as exc:
        build_provider(spec)
    assert field in str(exc.value)


def test_spec_defaults_and_none_values():
    clean = normalize_spec({"url": "http://127.0.0.1:9090", "token": None, "timeout": None})
    assert clean == {"type": "prometheus", "url": "http://127.0.0.1:9090", "timeout": 10.0, "retry_backoff": 0.5,
                     "retries": 2, "validate_certs": True, "use_proxy": True}


def test_bad_spec_message_never_shows_the_secret():
    with pytest.raises(ProviderError) as exc:
        build_provider(["not", "a", "dict"])
    with pytest.raises(ProviderError) as exc:
        build_provider({"url": "http://x", "token": TOKEN, "bogus": 1})
    assert TOKEN not in str(exc.value)


# ---------------------------------------------------------------------------
# Prometheus provider, HTTP faked

class FakeResponse(object):
    def __init__(self, body, code=200):
        self.body = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.code = code

    def getcode(self):
        return self.code

    def read(self):
        return self.body

    def close(self):
        pass


class FakeHttp(object):
    """Replaces the HTTP call (open_url): answers from a script of responses / exceptions, records the calls."""

    def __init__(self, script):
        self.script = list(script)
        self.calls = []

    def __call__(self, url, **kw):
        self.calls.append(dict(kw, url=url))
        item = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(item, Exception):
            raise item
        if isinstance(item, tuple):
            code, body = item
            raise HTTPError(url, code, "error", {}, io.BytesIO(json.dumps(body).encode() if not isinstance(body, bytes)
                                                               else body))
        return FakeResponse(item)


def vector(*series):
    return {"status": "success", "data": {"resultType": "vector",
                                          "result": [{"metric": m, "value": [1700000000.0, v]} for m, v in series]}}


@pytest.fixture
def fake_http(monkeypatch):
    def install(script):
        fake = FakeHttp(script)
        monkeypatch.setattr(metric_http, "_open", fake)
        return fake
    return install


def prom(**kw):
    spec = {"url": "http://prom.example:9090", "retry_backoff": 0.01}
    spec.update(kw)
    p = build_provider(spec)
    p.http.sleep = lambda s: p.http.__dict__.setdefault("slept", []).append(s)
    return p


def test_prometheus_vector_scalar_and_samples(fake_http):
    fake = fake_http([vector(({"version": "v2"}, "0.25"))])
    p = prom(token=TOKEN)
    samples = p.query('sum by (version) (rate(x[1m]))')
    assert samples == [{"labels": {"version": "v2"}, "value": 0.25}]
    assert samples[0].labels == {"version": "v2"} and samples[0].value == 0.25
    assert p.scalar("x") == 0.25
    call = fake.calls[0]
    assert call["url"].startswith("http://prom.example:9090/api/v1/query?query=sum+by")
    assert call["headers"]["Authorization"] == "Bearer " + TOKEN
    assert call["validate_certs"] is True and call["method"] == "GET" and call["data"] is None
    # long queries are POSTed
    long_query = "sum(x{a=\"%s\"})" % ("y" * 5000)
    p.query(long_query)
    call = fake.calls[-1]
    assert call["url"] == "http://prom.example:9090/api/v1/query" and call["method"] == "POST"
    assert "query=sum" in call["data"]


def test_prometheus_special_values_and_result_types(fake_http):
    fake_http([vector(({}, "NaN"), ({"a": "1"}, "+Inf"), ({"a": "2"}, "-Inf"))])
    values = [s.value for s in prom().query("x")]
    assert math.isnan(values[0]) and values[1] == float("inf") and values[2] == float("-inf")
    fake_http([{"status": "success", "data": {"resultType": "scalar", "result": [1700000000.0, "3"]}}])
    assert prom().scalar("1+2") == 3.0
    fake_http([{"status": "success", "data": {"resultType": "matrix", "result": []}}])
    with pytest.raises(QueryError) as exc:
        prom().query("x[5m]")
    assert "range vector" in str(exc.value)


def test_prometheus_no_data_and_multiple_series(fake_http):
    fake_http([vector()])
    with pytest.raises(NoDataError) as exc:
        prom().scalar('x{version="v9"}')
    assert "no data" in str(exc.value)
    fake_http([vector(({"pod": "a"}, "1"), ({"pod": "b"}, "2"))])
    with pytest.raises(MultipleSeriesError) as exc:
        prom().scalar("x")
    assert "2 series" in str(exc.value) and 'pod="a"' in str(exc.value) and "sum(" in str(exc.value)
    assert len(exc.value.series) == 2


def test_prometheus_error_text_verbatim_and_not_retried(fake_http):
    error = 'invalid parameter "query": 1:12: parse error: unclosed left parenthesis'
    fake = fake_http([(400, {"status": "error", "errorType": "bad_data", "error": error})])
    p = prom()
    with pytest.raises(QueryError) as exc:
        p.query("sum(rate(x[1m])")
    assert error in str(exc.value) and "bad_data" in str(exc.value)
    assert len(fake.calls) == 1
    fake_http([(422, {"status": "error", "errorType": "execution", "error": "many-to-many matching not allowed"})])
    with pytest.raises(QueryError) as exc:
        prom().query("a / b")
    assert "many-to-many matching not allowed" in str(exc.value)


def test_prometheus_retries_5xx_and_connection_errors_then_succeeds(fake_http):
    fake = fake_http([(503, {"status": "error", "errorType": "unavailable", "error": "starting"}),
                      URLError(ConnectionRefusedError(111, "Connection refused")),
                      vector(({}, "1"))])
    p = prom(retries=2, retry_backoff=0.5)
    assert p.scalar("up") == 1.0
    assert len(fake.calls) == 3
    assert p.http.slept == [0.5, 1.0]           # exponential backoff


def test_prometheus_unreachable_is_bounded(fake_http):
    fake = fake_http([URLError(ConnectionRefusedError(111, "Connection refused"))])
    p = prom(retries=3, token=TOKEN)
    with pytest.raises(UnreachableError) as exc:
        p.query("up")
    assert len(fake.calls) == 4 and len(p.http.slept) == 3
    msg = str(exc.value)
    assert "unreachable after 4 attempt(s)" in msg and "Connection refused" in msg and TOKEN not in msg
    fake = fake_http([socket.timeout("timed out")])
    p = prom(retries=1, timeout=2)
    with pytest.raises(UnreachableError) as exc:
        p.query("up")
    assert len(fake.calls) == 2 and "timed out after 2.0 s" in str(exc.value)
    fake = fake_http([(502, b"<html>bad gateway</html>")])
    with pytest.raises(UnreachableError) as exc:
        prom(retries=1).query("up")
    assert "HTTP 502" in str(exc.value) and len(fake.calls) == 2


def test_unreachable_fails_fast_for_the_rest_of_the_round(fake_http):
    fake = fake_http([socket.timeout("timed out")])
    p = prom(retries=2, timeout=1)
    with pytest.raises(UnreachableError):
        p.query("a")
    with pytest.raises(UnreachableError) as exc:
        p.query("b")
    assert len(fake.calls) == 3 and "not retried again in this evaluation" in str(exc.value)
    p.begin_round()
    fake_http([vector(({}, "1"))])
    assert p.scalar("c") == 1.0


def test_prometheus_auth_errors_and_secrets_scrubbed(fake_http):
    fake_http([(401, b"Unauthorized " + TOKEN.encode())])
    with pytest.raises(ProviderError) as exc:
        prom(token=TOKEN).query("up")
    assert "authentication failed" in str(exc.value) and TOKEN not in str(exc.value)
    fake = fake_http([vector(({}, "1"))])
    p = prom(username="ops", password="hunter2-pw")
    p.query("up")
    assert fake.calls[0]["url_username"] == "ops" and fake.calls[0]["url_password"] == "hunter2-pw"
    assert fake.calls[0]["force_basic_auth"] is True
    fake_http([URLError(OSError("cannot reach http://ops:hunter2-pw@prom"))])
    with pytest.raises(UnreachableError) as exc:
        prom(username="ops", password="hunter2-pw", retries=0).query("up")
    assert "hunter2-pw" not in str(exc.value)


def test_prometheus_url_credentials_redacted(fake_http):
    fake_http([URLError(ConnectionRefusedError(111, "Connection refused"))])
    p = build_provider({"url": "http://user:pw-in-url@prom:9090", "retries": 0})
    with pytest.raises(UnreachableError) as exc:
        p.query("up")
    assert "pw-in-url" not in str(exc.value) and "prom:9090" in str(exc.value)


def test_prometheus_range_query(fake_http):
    fake = fake_http([{"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"v": "1"}, "values": [[100, "1"], [115, "2"]]}]}}])
    out = prom().query_range("x", 100, 115, "15s")
    assert out[0]["values"] == [[100.0, 1.0], [115.0, 2.0]] and out[0].value == 2.0
    assert "step=15" in fake.calls[0]["url"]
    with pytest.raises(ProviderError):
        prom().query_range("x", 100, 115, 0)


# ---------------------------------------------------------------------------
# prometheus_text: parser and evaluator on known scrapes

class Clock(object):
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.t += s


def text_provider(pages, **spec):
    """A prometheus_text provider whose scrapes return ``pages`` in turn (the clock moves only by sleeps)."""
    spec = dict({"type": "prometheus_text", "url": "http://app:8000/metrics"}, **spec)
    p = build_provider(spec)
    clock = Clock()
    p.clock = clock
    p.sleep = clock.sleep
    pages = list(pages)

    def fetch(url):
        return (pages.pop(0) if len(pages) > 1 else pages[0]).encode()
    p._fetch = fetch
    return p, clock


def text_page(counter, requests, histogram, buckets, sums=None):
    """A /metrics page (Prometheus text format): one ``counter`` series per item of ``requests`` (labels ->
    count), the ``_bucket`` series of ``histogram`` per item of ``buckets`` (labels -> [(le, count), ...]) and,
    per item of ``sums`` (labels -> seconds), its ``_count`` (the +Inf bucket) and ``_sum``."""
    lines = ["# TYPE %s counter" % counter]
    lines += ["%s{%s} %s" % (counter, labels, count) for labels, count in requests.items()]
    lines.append("# TYPE %s histogram" % histogram)
    for labels, counts in buckets.items():
        lines += ['%s_bucket{%s,le="%s"} %s' % (histogram, labels, le, count) for le, count in counts]
    for labels, total in (sums or {}).items():
        lines += ["%s_count{%s} %s" % (histogram, labels, buckets[labels][-1][1]),
                  "%s_sum{%s} %s" % (histogram, labels, total)]
    return "\n".join(lines) + "\n"


# two scrapes 10 s apart: v1 200/500 counters, v2 restarted (100 -> 40) with a new 500 series, v1 latencies
V1_OK, V1_ERR, V2_OK, V2_ERR = ('version="v1",code="200"', 'version="v1",code="500"', 'version="v2",code="200"',
                                'version="v2",code="500"')
PAGE1 = text_page("req_total", {V1_OK: 1000, V1_ERR: 10, V2_OK: 100},
                  "lat", {'version="v1"': [("0.1", 500), ("0.2", 900), ("+Inf", 1000)]}, sums={'version="v1"': 120})
PAGE2 = text_page("req_total", {V1_OK: 1990, V1_ERR: 20, V2_OK: 40, V2_ERR: 10},
                  "lat", {'version="v1"': [("0.1", 1000), ("0.2", 1800), ("+Inf", 2000)]}, sums={'version="v1"': 240})


def test_text_rate_increase_waits_once_and_handles_resets():
    p, clock = text_provider([PAGE1, PAGE2])
    # v1: (2010 - 1010) / 10 s = 100 req/s; first range query waits the window
    assert p.scalar('sum(rate(req_total{version="v1"}[10s]))') == pytest.approx(100.0)
    assert p.waited == pytest.approx(10.0)
    # v1 errors: 10 more in 10 s; v2: counter reset (100 -> 40 means a restart: 40 counted) and a new series
    # (500 absent from the first scrape counts from 0)
    assert p.scalar('sum(increase(req_total{version="v1",code=~"5.."}[10s]))') == pytest.approx(10.0)
    assert p.scalar('sum(increase(req_total{version="v2"}[10s]))') == pytest.approx(50.0)
    # the error ratio; labels matched one-to-one after sum by
    out = p.query('sum by (version) (rate(req_total{code="500"}[10s])) / sum by (version) (rate(req_total[10s]))')
    got = dict((s.labels["version"], s.value) for s in out)
    assert got == pytest.approx({"v1": 0.01, "v2": 0.2})
    assert p.waited == pytest.approx(10.0)        # no second wait inside the round


# a phase's target scraped twice: stable and canary requests, the canary's latency histogram
STABLE_OK, CANARY_OK, CANARY_ERR = ('job="codex",slot="stable",code="200"', 'job="codex",slot="canary",code="200"',
                                    'job="codex",slot="canary",code="503"')
PHASE_PAGE1 = text_page("http_requests_total", {STABLE_OK: 1000, CANARY_OK: 100}, "http_request_duration_seconds",
                        {'job="codex",slot="canary"': [("0.1", 90), ("1.0", 100), ("+Inf", 100)]})
PHASE_PAGE2 = text_page("http_requests_total", {STABLE_OK: 2000, CANARY_OK: 190, CANARY_ERR: 10},
                        "http_request_duration_seconds",
                        {'job="codex",slot="canary"': [("0.1", 180), ("1.0", 200), ("+Inf", 200)]})


def test_text_answers_the_phases_default_queries():
    """A phase's gates and judge (rollout_target's default queries) work on a target whose provider is
    prometheus_text: every query is in the subset and gives the numbers Prometheus would."""
    metrics = {"requests": "http_requests_total", "latency_bucket": "http_request_duration_seconds_bucket",
               "selector": 'job="codex"', "error_selector": 'code=~"5.."', "stable_selector": 'slot="stable"',
               "canary_selector": 'slot="canary"', "version_label": ""}
    p, clock = text_provider([PHASE_PAGE1, PHASE_PAGE2])
    gates = rt.gate_queries(metrics, "canary")
    assert p.scalar(gates["error_rate"].replace("$window", "60s")) == pytest.approx(10.0 / 100)
    assert p.scalar(gates["p99_latency_ms"].replace("$window", "60s")) == pytest.approx(1000 * (0.1 + 0.9 * 9 / 10))
    judge = rt.judge_queries(metrics)
    assert p.scalar(judge["canary"]["requests"]) == 200 and p.scalar(judge["canary"]["errors"]) == 10
    assert p.scalar(judge["baseline"]["errors"]) == 0          # "or vector(0)": no error series yet
    buckets = dict((s.labels["le"], s.value) for s in p.query(judge["canary"]["latency_buckets"]))
    assert buckets == {"0.1": 180, "1.0": 200, "+Inf": 200}


def test_text_histogram_quantile_matches_prometheus_algorithm():
    p, clock = text_provider([PAGE1, PAGE2])
    q = 'histogram_quantile(%s, sum by (le) (rate(lat_bucket{version="v1"}[5s])))'
    # increase per bucket: 0.1: 500, 0.2: 900, +Inf: 1000
    assert p.scalar(q % 0.5) == pytest.approx(0.1)                  # rank 500 -> end of the first bucket
    assert p.scalar(q % 0.7) == pytest.approx(0.1 + 0.1 * 200 / 400)
    assert p.scalar(q % 0.95) == pytest.approx(0.2)                 # rank in +Inf: the highest finite bound
    assert p.scalar(q % 2) == float("inf")
    # quantile of the ratio of two quantiles (P99/P95)
    ratio = p.scalar("(%s) / (%s)" % (q % 0.99, q % 0.95))
    assert ratio == pytest.approx(1.0)


def test_bucket_quantile_edge_cases():
    assert math.isnan(bucket_quantile(0.5, [(0.1, 1), (0.2, 2)]))              # no +Inf bucket
    assert math.isnan(bucket_quantile(0.5, [(0.1, 0), (float("inf"), 0)]))    # no observations
    assert bucket_quantile(-0.1, [(0.1, 1), (float("inf"), 1)]) == float("-inf")
    assert bucket_quantile(0.5, [(0.1, 4), (0.2, 3), (float("inf"), 10)]) == pytest.approx(0.2)  # monotonic fix
    assert bucket_quantile(0.25, [(0.1, 4), (0.2, 8), (float("inf"), 8)]) == pytest.approx(0.05)


def test_text_instant_selectors_or_vector_and_division():
    p, clock = text_provider([PAGE1])
    assert p.scalar('sum(req_total{version="v1"})') == 1010
    assert p.scalar('sum(req_total{code="503"}) or vector(0)') == 0.0
    assert p.scalar('(sum(req_total{code="503"}) or vector(0)) / sum(req_total)') == 0.0
    assert math.isnan(p.scalar("sum(req_total{code=\"503\"} * 0) or vector(0 / 0)"))
    assert p.scalar("sum(req_total{version=~\"v1|v2\",code!~\"5..\"})") == 1100
    assert p.scalar('count(req_total)') == 3
    assert p.scalar('max without (code) (req_total{version="v1"})') == 1000
    assert p.scalar('-sum(req_total{version="v2"}) + 2 * 50') == 0
    assert p.query('sum(req_total{code="503"})') == []                        # empty vector: no data
    on = p.query('sum by (version) (req_total{code="200"}) / on (version) sum by (version, code) (req_total{code="200"})')
    assert dict((s.labels["version"], s.value) for s in on) == {"v1": 1.0, "v2": 1.0}
    with pytest.raises(QueryError) as exc:   # several series per version on the left: an error, not a silent pick
        p.query('sum by (version, code) (req_total) / on (version) sum by (version) (req_total)')
    assert "many-to-many" in str(exc.value)
    ign = p.query('sum by (version, code) (req_total{code="200"}) / ignoring (code) sum by (version) (req_total)')
    assert dict((s.labels["version"], round(s.value, 4)) for s in ign) == {"v1": round(1000 / 1010, 4), "v2": 1.0}
    # target labels: instance always, provider labels when given
    p2, dummy = text_provider([PAGE1], labels={"job": "app"})
    s = p2.query('req_total{version="v2"}')[0]
    assert s.labels["instance"] == "app:8000" and s.labels["job"] == "app" and s.labels["__name__"] == "req_total"


def test_text_many_to_many_is_an_error():
    p, clock = text_provider([PAGE1])
    with pytest.raises(QueryError) as exc:
        p.query('req_total / on (version) sum by (version) (req_total)')
    assert "many-to-many" in str(exc.value)


@pytest.mark.parametrize("query,needle", [
    ("sum(rate(x[5m])", "expected ')'"),
    ("foo(x)", "foo() is not supported"),
    ("x > 1", "operator > is not supported"),
    ("x offset 5m", "offset is not supported"),
    ("x[5m]", "must be inside rate()"),
    ("rate(x)", "range selector"),
    ("topk(3, x)", "topk() is not supported"),
    ("x and y", "and is not supported"),
    ('x{a~"b"}', "cannot parse"),
    ('x{a=~"("}', "invalid regex"),
    ("", "empty query"),
])
def test_text_unsupported_or_bad_queries(query, needle):
    p, clock = text_provider([PAGE1])
    with pytest.raises(QueryError) as exc:
        p.query(query)
    assert needle in str(exc.value)


def test_text_bad_exposition_and_special_values():
    p, clock = text_provider(["x{a=\"1\"} NaN\ny +Inf\n"])
    assert math.isnan(p.scalar("x")) and p.scalar("y") == float("inf")
    p, clock = text_provider(["this is not { metrics"])
    with pytest.raises(ProviderError) as exc:
        p.query("x")
    assert "not in Prometheus text format" in str(exc.value)
    p, clock = text_provider([PAGE1])
    with pytest.raises(ProviderError):
        p.query("x", at=123)


def test_text_cache_within_a_round_and_refresh_between_rounds():
    calls = []
    p, clock = text_provider([PAGE1])
    orig = p._fetch

    def counting(url):
        calls.append(url)
        return orig(url)
    p._fetch = counting
    p.begin_round()
    p.query("req_total")
    p.query("req_total")
    assert len(calls) == 1
    p.begin_round()
    p.query("req_total")
    assert len(calls) == 2


def test_text_several_targets_with_labels():
    p = build_provider({"type": "prometheus_text", "targets": [
        {"url": "http://a:1/metrics", "labels": {"track": "stable"}},
        {"url": "http://b:2/metrics", "labels": {"track": "canary"}}]})
    p._fetch = lambda url: b"req_total 5\n" if "a:1" in url else b"req_total 7\n"
    out = dict((s.labels["track"], s.value) for s in p.query("req_total"))
    assert out == {"stable": 5.0, "canary": 7.0}
    assert p.describe()["url"] == "http://a:1/metrics, http://b:2/metrics"


# ---------------------------------------------------------------------------
# http_json

def test_json_samples_shapes():
    assert json_samples(None, "a") == []
    assert json_samples(0.25, "a") == [{"labels": {}, "value": 0.25}]
    assert json_samples("12.5", "a")[0].value == 12.5
    assert [s.labels for s in json_samples([1, 2], "a")] == [{"index": "0"}, {"index": "1"}]
    assert [s.labels for s in json_samples({"b": 1, "a": 2}, "a")] == [{"key": "a"}, {"key": "b"}]
    for bad in (True, "fast", {"a": "x"}, [{"a": 1}]):
        with pytest.raises(QueryError):
            json_samples(bad, "a")


def test_http_json_provider(fake_http):
    fake = fake_http([{"latency": {"p95_ms": 412.0}, "services": [{"name": "api", "p95": 0.3}]}])
    p = build_provider({"type": "http_json", "url": "http://app/health", "token": TOKEN})
    assert p.scalar("latency.p95_ms") == 412.0
    assert p.scalar("services[?name=='api'].p95 | [0]") == 0.3
    with pytest.raises(NoDataError):
        p.scalar("latency.p99_ms")
    with pytest.raises(QueryError) as exc:
        p.query("latency.[")
    assert "JMESPath" in str(exc.value)
    assert fake.calls[0]["headers"]["Authorization"] == "Bearer " + TOKEN and fake.calls[0]["method"] == "GET"
    fake_http([b"<html>"])
    with pytest.raises(ProviderError) as exc:
        build_provider({"type": "http_json", "url": "http://app/health"}).query("a")
    assert "not JSON" in str(exc.value)


def test_sample_and_jsonable():
    s = Sample({"a": "1"}, "2.5", values=[[1, 2.5]])
    assert s.labels == {"a": "1"} and s.value == 2.5 and s["values"] == [[1, 2.5]]
    assert jsonable({"x": [float("nan"), float("inf"), -float("inf"), 1.0]}) == {"x": ["NaN", "+Inf", "-Inf", 1.0]}
    assert issubclass(NoDataError, MetricError) and issubclass(MultipleSeriesError, MetricError)
    assert issubclass(UnreachableError, ProviderError) and issubclass(QueryError, ProviderError)


# ---------------------------------------------------------------------------
# real HTTP (a local http.server in a thread): deadlines, persistent 5xx, secrets never leave

import base64
import threading
import time

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ansible_collections.stagegate.rollout.plugins.module_utils.metric_base import DeadlineError
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_spec import params_secrets, provider_secrets
from ansible_collections.stagegate.rollout.plugins.module_utils.redact import scrub

USER, PASSWORD = "ops", "Pw-S3cret-987"
BASIC = base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode()


class _StandIn(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture
def http_server():
    """``start(answer)`` serves on 127.0.0.1 in a thread; ``answer(handler)`` handles each request (the
    handler has ``.server.release``, an Event set at teardown, and ``.server.hits``, the request headers)."""
    servers = []

    def start(answer):
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self):
                self.server.hits.append(dict(self.headers))
                answer(self)

            do_POST = do_GET

            def log_message(self, *args):
                pass

        srv = _StandIn(("127.0.0.1", 0), Handler)
        srv.release = threading.Event()
        srv.hits = []
        srv.url = "http://127.0.0.1:%d" % srv.server_address[1]
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.release.set()
        srv.shutdown()
        srv.server_close()


def never_answer(handler):
    """Accept the request and never answer (a hung or SIGSTOPped server)."""
    handler.server.release.wait(60)


def reply(handler, code, body, headers=()):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    handler.send_response(code)
    for k, v in headers:
        handler.send_header(k, v)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def echo_authorization(handler):
    """401 with a basic challenge when no credentials came, else a 400 quoting the Authorization header."""
    auth = handler.headers.get("Authorization")
    if not auth:
        reply(handler, 401, b"who are you?", [("WWW-Authenticate", 'Basic realm="prom"')])
        return
    reply(handler, 400, {"status": "error", "errorType": "bad_data",
                         "error": "invalid parameter: request had Authorization: %s" % auth})


def live(url, **kw):
    return build_provider(dict({"url": url, "use_proxy": False, "retry_backoff": 0.05}, **kw))


def test_hung_server_fails_within_the_deadline(http_server):
    srv = http_server(never_answer)
    p = live(srv.url, timeout=10, retries=2, deadline=1.5)     # without the deadline: 3 x 10 s
    p.begin_round()
    t0 = time.monotonic()
    with pytest.raises(DeadlineError) as exc:
        p.query("up")
    elapsed = time.monotonic() - t0
    assert elapsed < 1.5 + 1.0, elapsed
    msg = str(exc.value)
    assert "deadline (1.5 s)" in msg and "left undone" in msg and "2 retries not made" in msg, msg
    assert isinstance(exc.value, UnreachableError)            # fails closed like any unreachable source
    # the rest of the evaluation is not even sent
    hits = len(srv.hits)
    t1 = time.monotonic()
    with pytest.raises(DeadlineError) as exc:
        p.query("down")
    assert time.monotonic() - t1 < 0.2 and len(srv.hits) == hits
    assert "before this request was sent" in str(exc.value)
    assert p.deadline_passed()
    # a caller's budget (a gate's timeout) applies when smaller than the spec's deadline
    p.begin_round(budget=0.5)
    assert p.budget() == 0.5 and not p.deadline_passed()
    t0 = time.monotonic()
    with pytest.raises(DeadlineError) as exc:
        p.query("up")
    assert time.monotonic() - t0 < 0.5 + 1.0 and "deadline (0.5 s)" in str(exc.value)


def test_hung_server_every_attempt_uses_the_time_left(http_server):
    """A provider without its own deadline gets the caller's budget; attempts shrink to the time left."""
    srv = http_server(never_answer)
    p = live(srv.url, timeout=0.8, retries=5, retry_backoff=0.1)
    p.begin_round(budget=2.0)
    t0 = time.monotonic()
    with pytest.raises(DeadlineError) as exc:
        p.scalar("up")
    elapsed = time.monotonic() - t0
    assert elapsed < 2.0 + 1.0, elapsed
    assert 2 <= len(srv.hits) <= 3 and "not made" in str(exc.value)   # 0.8 + 0.1 + 0.8 + 0.2 + (0.1 left)


def test_no_deadline_keeps_todays_bound(http_server):
    srv = http_server(never_answer)
    p = live(srv.url, timeout=0.3, retries=1)
    p.begin_round()
    t0 = time.monotonic()
    with pytest.raises(UnreachableError) as exc:
        p.query("up")
    assert not isinstance(exc.value, DeadlineError)
    assert 0.6 <= time.monotonic() - t0 < 2.0 and "timed out after 0.3 s" in str(exc.value)
    assert len(srv.hits) == 2


def test_persistent_503_is_unreachable_and_trips_the_breaker(http_server):
    srv = http_server(lambda h: reply(h, 503, {"status": "error", "errorType": "unavailable",
                                               "error": "TSDB not ready"}))
    p = live(srv.url, retries=2)
    p.begin_round()
    with pytest.raises(UnreachableError) as exc:
        p.query("up")
    msg = str(exc.value)
    assert not isinstance(exc.value, DeadlineError)
    assert "unreachable after 3 attempt(s)" in msg and "HTTP 503" in msg and "TSDB not ready" in msg, msg
    assert len(srv.hits) == 3
    # breaker: the other queries of this evaluation fail at once, no more requests
    with pytest.raises(UnreachableError) as exc:
        p.query("rate(x[1m])")
    assert "not retried again in this evaluation" in str(exc.value) and len(srv.hits) == 3
    # the next evaluation tries again
    p.begin_round()
    with pytest.raises(UnreachableError):
        p.query("up")
    assert len(srv.hits) == 6


@pytest.mark.parametrize("kind", ["token", "basic", "userinfo"])
def test_echoed_authorization_never_in_the_error(http_server, kind):
    srv = http_server(echo_authorization)
    if kind == "token":
        p = live(srv.url, token=TOKEN)
    elif kind == "basic":
        p = live(srv.url, username=USER, password=PASSWORD)
    else:
        p = live(srv.url.replace("http://", "http://%s:%s@" % (USER, PASSWORD)))
    with pytest.raises(QueryError) as exc:
        p.query("up")
    msg = str(exc.value)
    sent = srv.hits[-1]["Authorization"]
    assert sent in ("Bearer " + TOKEN, "Basic " + BASIC)      # the server did get the credentials ...
    assert "request had Authorization" in msg                  # ... and quoted them
    for secret in (TOKEN, PASSWORD, BASIC, BASIC.rstrip("=")):
        assert secret not in msg, msg
    # non-JSON bodies, http_json and prometheus_text paths too
    srv2 = http_server(lambda h: reply(h, 400, ("header was %s" % h.headers.get("Authorization")).encode()))
    for spec in ({"type": "http_json", "url": srv2.url + "/health"},
                 {"type": "prometheus_text", "url": srv2.url + "/metrics"},
                 {"url": srv2.url}):
        spec.update({"token": TOKEN} if kind == "token" else {"username": USER, "password": PASSWORD})
        with pytest.raises(ProviderError) as exc:
            live(**spec).query("up")
        msg = str(exc.value)
        assert "header was " in msg and "********" in msg, msg
        for secret in (TOKEN, PASSWORD, BASIC):
            assert secret not in msg, msg


def test_url_userinfo_scrubbed_from_messages(http_server):
    srv = http_server(lambda h: reply(h, 500, ("I saw %s:%s" % (USER, PASSWORD)).encode()))
    url = srv.url.replace("http://", "http://%s:%s@" % (USER, PASSWORD))
    with pytest.raises(UnreachableError) as exc:
        live(url, retries=0).query("up")
    msg = str(exc.value)
    assert "HTTP 500" in msg and srv.url[len("http://"):] in msg and PASSWORD not in msg, msg
    with pytest.raises(ProviderError) as exc:
        build_provider({"type": "prometheus_text", "targets": [{"url": "http://u:%s@[bad" % PASSWORD}]})
    assert PASSWORD not in str(exc.value)
    with pytest.raises(ProviderError) as exc:
        build_provider("http://u:%s@prom:9090" % PASSWORD)
    assert PASSWORD not in str(exc.value)


def test_scrub_and_the_secrets_of_a_spec():
    spec = {"url": "http://%s:%s@prom:9090" % (USER, PASSWORD), "token": TOKEN,
            "targets": [{"url": "https://t0k3n-in-url@app:8000/metrics"}]}
    secrets = provider_secrets(spec)
    assert {TOKEN, "Bearer " + TOKEN, PASSWORD, "%s:%s" % (USER, PASSWORD), BASIC, "t0k3n-in-url"} <= set(secrets)
    text = ("GET http://%s:%s@prom:9090/x Authorization: Basic %s / Bearer %s, and https://x:y@other/ too"
            % (USER, PASSWORD, BASIC, TOKEN))
    out = scrub(text, secrets)
    for s in (PASSWORD, BASIC, TOKEN, "x:y@"):
        assert s not in out
    assert out.startswith("GET http://********@prom:9090/x") and "https://********@other/" in out
    nested = scrub({"msg": [text, 1.5, None], "n": 3}, secrets)
    assert PASSWORD not in json.dumps(nested) and nested["n"] == 3 and nested["msg"][1] == 1.5
    # percent-encoded passwords: both forms, and the header made from the decoded one
    enc = provider_secrets({"url": "http://u:p%40ss@h"})
    assert "p%40ss" in enc and "p@ss" in enc and base64.b64encode(b"u:p@ss").decode() in enc
    # every provider in a module's parameters
    params = {"provider": {"url": "http://a:pa55word@h"}, "checks": [{"provider": {"token": TOKEN}}]}
    assert {"pa55word", TOKEN} <= set(params_secrets(params))


def test_deadline_spec_and_text_window_wait():
    assert normalize_spec({"url": "http://x", "deadline": 5})["deadline"] == 5.0
    for bad in (0, -1, "soon", True, 10 ** 6):
        with pytest.raises(ProviderError) as exc:
            normalize_spec({"url": "http://x", "deadline": bad})
        assert "provider.deadline" in str(exc.value)
    # prometheus_text: the deliberate wait for a rate window's second scrape does not eat the deadline
    p, clock = text_provider([PAGE1, PAGE2], deadline=5)
    p.http.clock = clock
    p.begin_round()
    assert p.scalar('sum(rate(req_total{version="v1"}[10s]))') == pytest.approx(100.0)
    assert p.waited == pytest.approx(10.0) and p.http.left() == pytest.approx(5.0)
    assert not p.deadline_passed()


def _run_module(name, args, capsys):
    import importlib
    from ansible.module_utils.testing import patch_module_args
    mod = importlib.import_module("ansible_collections.stagegate.rollout.plugins.modules." + name)
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            mod.main()
    out = capsys.readouterr().out
    return json.loads(out), out


def test_metric_gate_module_fails_closed_within_its_timeout(http_server, capsys):
    srv = http_server(never_answer)
    t0 = time.monotonic()
    res, raw = _run_module("metric_gate", {
        "provider": {"url": srv.url, "use_proxy": False, "retries": 2, "timeout": 10},
        "timeout": 1.5,
        "checks": [{"name": "error_rate", "query": "a", "lt": 1}, {"name": "latency", "query": "b", "lt": 1},
                   {"name": "p99_over_p95", "ratio": {"numerator": "c", "denominator": "d"}, "lt": 2}]}, capsys)
    elapsed = time.monotonic() - t0
    assert elapsed < 1.5 + 1.0, elapsed
    assert res["failed"] and res["verdict"] == "fail" and res["deadline_passed"] is True
    assert "deadline (1.5 s) passed; left undone: latency, p99_over_p95" in res["msg"], res["msg"]
    checks = dict((c["name"], c) for c in res["checks"])
    assert all(c["verdict"] == "fail" for c in checks.values())
    assert "deadline (1.5 s) passed after 1 attempt(s)" in checks["error_rate"]["reason"]


def test_metric_gate_module_keeps_secrets_out(http_server, capsys):
    srv = http_server(echo_authorization)
    url = srv.url.replace("http://", "http://%s:%s@" % (USER, PASSWORD))
    res, raw = _run_module("metric_gate", {
        "provider": {"url": url, "use_proxy": False},
        "checks": [{"name": "up", "query": "up", "lt": 1},
                   {"name": "other", "query": "up", "lt": 1,
                    "provider": {"url": srv.url, "use_proxy": False, "token": TOKEN}}]}, capsys)
    assert res["failed"] and "request had Authorization" in raw
    for secret in (PASSWORD, BASIC, TOKEN):
        assert secret not in raw, raw
    assert res["invocation"]["module_args"]["provider"]["url"] == srv.url.replace("http://", "http://********@")


def test_metric_query_module_keeps_secrets_out(http_server, capsys):
    srv = http_server(echo_authorization)
    url = srv.url.replace("http://", "http://%s:%s@" % (USER, PASSWORD))
    res, raw = _run_module("metric_query", {"provider": {"url": url, "use_proxy": False, "deadline": 5},
                                            "queries": {"a": "up", "b": "down"}}, capsys)
    assert res["failed"] and "queries.a" in res["msg"] and "not run: b" in res["msg"], res["msg"]
    for secret in (PASSWORD, BASIC):
        assert secret not in raw, raw


def test_secret_cut_by_truncation_is_not_shown_in_part(fake_http):
    body = ("x" * 285 + "Bearer " + TOKEN + " trailing").encode()      # the cut at 300 falls in the token
    for script, spec in (([(400, body)], {"token": TOKEN}), ([(503, body)], {"token": TOKEN, "retries": 0})):
        fake_http(script)
        with pytest.raises(ProviderError) as exc:
            prom(**spec).query("up")
        msg = str(exc.value)
        assert TOKEN[:6] not in msg and "********" in msg, msg
