# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Metric providers: read numbers from Prometheus, a ``/metrics`` endpoint or a JSON endpoint.

``build_provider(spec)`` returns a provider (``metric_base.Provider``) with

* ``query(expr, at=None)`` - a list of ``Sample`` (a dict ``{labels, value}``
  that also has ``.labels`` / ``.value`` attributes);
* ``scalar(expr)`` - exactly one value, else ``NoDataError`` (no series) or
  ``MultipleSeriesError`` (more than one; never a silent first pick);
* ``query_range(expr, start, end, step)`` (``prometheus`` only).

Providers (``spec['type']``):

``prometheus``
    The HTTP API (``/api/v1/query``, ``/api/v1/query_range``). Bearer token or
    basic auth, custom CA, TLS verification on by default, a timeout per request
    and bounded retries with exponential backoff on connection errors and HTTP
    5xx (``metric_http``: a 5xx that persists through the retries is
    ``UnreachableError``, never a result). Errors Prometheus reports (bad PromQL,
    execution errors) are raised as ``QueryError`` carrying Prometheus's own text verbatim.

``prometheus_text``
    Scrapes ``/metrics`` endpoints and evaluates a PromQL subset on them
    (``prometheus_text``, ``promql_subset``).

``http_json``
    GETs a JSON document and evaluates a JMESPath expression on it: a number
    (one sample), ``null`` (no data), a list of numbers (one sample per item,
    label ``index``) or an object of numbers (label ``key``).

Deadline: ``deadline`` (seconds) bounds one *evaluation* - from ``begin_round()``
(or the first request when no round was begun) until the next ``begin_round()``;
``begin_round(budget)`` lets a caller (a gate, a judge's look) impose its own
budget; the smaller wins (``metric_http``).

Where the rest lives: the ``provider`` option, its validation and its secrets in
``metric_spec``; errors, ``Sample`` and the ``Provider`` base in ``metric_base``;
query templates in ``query_template``; scrubbing in ``redact``. A new provider:
see docs/ARCHITECTURE.md.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re
import time

from ansible.module_utils.common.text.converters import to_text

from ansible_collections.stagegate.rollout.plugins.module_utils.durations import parse_duration, parse_seconds
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_base import (
    Provider, ProviderError, QueryError, Sample, one_line, short)
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_http import HttpClient
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_spec import check_url, normalize_spec
from ansible_collections.stagegate.rollout.plugins.module_utils.prometheus_text import PrometheusTextProvider
from ansible_collections.stagegate.rollout.plugins.module_utils.redact import redact_url

try:
    import jmespath
    HAS_JMESPATH = True
    JMESPATH_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - depends on the environment
    HAS_JMESPATH = False
    JMESPATH_IMPORT_ERROR = _exc


def _float(text):
    """Prometheus number strings: 'NaN', '+Inf', '-Inf', '1e3'."""
    return float(text)


class PrometheusProvider(Provider):
    kind = "prometheus"

    def __init__(self, spec):
        Provider.__init__(self, spec)
        self.base = check_url(spec.get("url"), "provider.url").rstrip("/")
        self.http = HttpClient(spec, "Prometheus")

    def _api(self, path, data):
        url = self.base + path
        status, payload = self.http.request(url, data=data)      # 2xx or 4xx: 5xx raise UnreachableError
        scrub_text = self.http.scrubbed
        try:
            doc = json.loads(to_text(payload))
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            if status in (401, 403):
                raise ProviderError("Prometheus %s: HTTP %d: authentication failed (check token / username / "
                                    "password)" % (redact_url(url), status))
            raise ProviderError("Prometheus %s: HTTP %d, response is not Prometheus API JSON: %s"
                                % (redact_url(url), status, short(scrub_text(payload))))
        if doc.get("status") != "success":
            error = scrub_text(to_text(doc.get("error", "")))
            etype = scrub_text(to_text(doc.get("errorType", "")))
            if status in (400, 422) or etype in ("bad_data", "execution"):
                raise QueryError("Prometheus rejected the query (%s, HTTP %d): %s" % (etype, status, error))
            if status in (401, 403):
                raise ProviderError("Prometheus %s: HTTP %d: authentication failed: %s"
                                    % (redact_url(url), status, error))
            raise ProviderError("Prometheus error (%s, HTTP %d): %s" % (etype, status, error))
        data = doc.get("data")
        if not isinstance(data, dict) or "resultType" not in data:
            raise ProviderError("Prometheus %s: response has no data.resultType: %s"
                                % (redact_url(url), short(scrub_text(payload))))
        return data

    def query(self, expr, at=None):
        params = {"query": expr}
        if at is not None:
            params["time"] = _time_param(at, "at")
        data = self._api("/api/v1/query", params)
        rtype = data["resultType"]
        result = data.get("result")
        if rtype == "vector":
            return [Sample(r.get("metric", {}), _float(r["value"][1])) for r in result or []]
        if rtype == "scalar":
            return [Sample({}, _float(result[1]))]
        if rtype == "matrix":
            raise QueryError("query returned a range vector (matrix); wrap the range selector in rate(), increase() "
                             "or *_over_time(), or use a range query: %s" % one_line(expr))
        raise QueryError("query returned a %s, not a number: %s" % (rtype, one_line(expr)))

    def query_range(self, expr, start, end, step):
        params = {"query": expr, "start": _time_param(start, "start"), "end": _time_param(end, "end"),
                  "step": _step_param(step)}
        data = self._api("/api/v1/query_range", params)
        if data["resultType"] != "matrix":
            raise QueryError("range query returned a %s, expected a matrix" % data["resultType"])
        out = []
        for r in data.get("result") or []:
            values = [[float(t), _float(v)] for t, v in r.get("values", [])]
            last = values[-1][1] if values else float("nan")
            out.append(Sample(r.get("metric", {}), last, values=values))
        return out


def _time_param(value, field):
    if isinstance(value, bool):
        raise ProviderError("%s: %r is not a time (Unix seconds or RFC 3339)" % (field, value))
    if isinstance(value, (int, float)):
        return "%.3f" % value
    if isinstance(value, str) and value.strip():
        v = value.strip()
        if v == "now":
            return "%.3f" % time.time()
        m = re.match(r"^now-(.+)$", v)
        if m:
            return "%.3f" % (time.time() - parse_duration(m.group(1), field))
        return v
    raise ProviderError("%s: %r is not a time (Unix seconds, RFC 3339, now or now-5m)" % (field, value))


def _step_param(step):
    try:
        seconds = parse_seconds(step, "step")
    except ValueError as exc:
        raise ProviderError(str(exc))
    if not seconds:
        raise ProviderError("step must be > 0 seconds, got %r" % step)
    return "%g" % seconds


class HttpJsonProvider(Provider):
    kind = "http_json"

    def __init__(self, spec):
        Provider.__init__(self, spec)
        if not HAS_JMESPATH:
            raise ProviderError("the http_json provider needs the Python library jmespath on the host the task runs on "
                                "(pip install jmespath): %s" % JMESPATH_IMPORT_ERROR)
        self.url = check_url(spec.get("url"), "provider.url")
        self.http = HttpClient(spec, "JSON endpoint")
        self._doc = None
        self._doc_time = None
        self.cache_seconds = 0.5

    def begin_round(self, budget=None):
        Provider.begin_round(self, budget)
        self._doc = None

    def document(self):
        now = time.monotonic()
        if self._doc is not None and now - self._doc_time < self.cache_seconds:
            return self._doc
        status, payload = self.http.request(self.url)
        if status >= 400:
            raise ProviderError("JSON endpoint %s: HTTP %d: %s"
                                % (redact_url(self.url), status, short(self.http.scrubbed(payload))))
        try:
            self._doc = json.loads(to_text(payload))
        except ValueError as exc:
            raise ProviderError("JSON endpoint %s: response is not JSON (%s): %s"
                                % (redact_url(self.url), exc, short(self.http.scrubbed(payload), 120)))
        self._doc_time = now
        return self._doc

    def query(self, expr, at=None):
        if at is not None:
            raise ProviderError("http_json provider: 'at' (a past time) is not supported")
        try:
            compiled = jmespath.compile(expr)
        except jmespath.exceptions.JMESPathError as exc:
            raise QueryError("JMESPath expression rejected: %s: %s" % (one_line(expr), exc))
        try:
            result = compiled.search(self.document())
        except jmespath.exceptions.JMESPathError as exc:
            raise QueryError("JMESPath evaluation failed: %s: %s" % (one_line(expr), exc))
        return json_samples(result, expr)


def _json_number(value, expr, where):
    if isinstance(value, bool) or value is None:
        raise QueryError("JMESPath %s%s is %r, not a number" % (one_line(expr), where, value))
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise QueryError("JMESPath %s%s is %s %r, not a number"
                     % (one_line(expr), where, type(value).__name__, short(json.dumps(value), 80)))


def json_samples(result, expr):
    """Samples from a JMESPath result (see the module docstring)."""
    if result is None:
        return []
    if isinstance(result, list):
        return [Sample({"index": str(i)}, _json_number(v, expr, "[%d]" % i)) for i, v in enumerate(result)
                if v is not None]
    if isinstance(result, dict):
        return [Sample({"key": str(k)}, _json_number(v, expr, ".%s" % k)) for k, v in sorted(result.items())
                if v is not None]
    return [Sample({}, _json_number(result, expr, ""))]


_BUILDERS = {"prometheus": PrometheusProvider, "prometheus_text": PrometheusTextProvider,
             "http_json": HttpJsonProvider}


def build_provider(spec, field="provider"):
    """Build a provider from its spec (``type`` defaults to prometheus). Raises ProviderError naming the field."""
    clean = normalize_spec(spec, field)
    return _BUILDERS[clean["type"]](clean)
