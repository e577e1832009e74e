# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Metric providers: read numbers from Prometheus, a ``/metrics`` endpoint or a JSON endpoint.

``build_provider(spec)`` returns a provider with

* ``query(expr, at=None)`` - a list of :class:`Sample` (a dict ``{labels, value}``
  that also has ``.labels`` / ``.value`` attributes);
* ``scalar(expr)`` - exactly one value, else :class:`NoDataError` (no series) or
  :class:`MultipleSeriesError` (more than one; never a silent first pick);
* ``query_range(expr, start, end, step)`` (``prometheus`` only).

Providers (``spec['type']``):

``prometheus``
    The HTTP API (``/api/v1/query``, ``/api/v1/query_range``). Bearer token or
    basic auth, custom CA, TLS verification on by default, a timeout per request
    and bounded retries with exponential backoff on connection errors and HTTP
    5xx (a 5xx that persists through the retries is :class:`UnreachableError`,
    never a result). Errors Prometheus reports (bad PromQL, execution errors) are
    raised as :class:`QueryError` carrying Prometheus's own text verbatim.

``prometheus_text``
    Scrapes one or more ``/metrics`` endpoints (Prometheus text exposition
    format, parsed with ``prometheus_client.parser``) and evaluates a subset of
    PromQL on the scrapes, so the same query works with and without a
    Prometheus server::

        expr      := additive ('or' additive)*
        additive  := term (('+' | '-') term)*
        term      := unary (('*' | '/') unary)*
        unary     := '-' unary | primary
        primary   := NUMBER | '(' expr ')' | selector | aggregation | function
        selector  := metric_name ['{' label op "value", ... '}']      op: = != =~ !~
        aggregation := (sum|min|max|avg|count) [by|without (l, ...)] '(' expr ')' [by|without (l, ...)]
        function  := rate(selector[W]) | irate(selector[W]) | increase(selector[W])
                   | histogram_quantile(phi, expr) | vector(NUMBER)
        a `or` b  := the series of a, plus those of b whose labels a does not have
                     (``sum(rate(errors[1m])) or vector(0)`` is 0 when nothing failed yet)
        binary vector ops match series on identical labels, or on(...) / ignoring(...)

    ``rate(m[W])`` is the increase of each counter between two scrapes taken
    ``W`` apart divided by the seconds between them (counter resets handled as
    Prometheus does; a series absent from the earlier scrape counted from 0);
    ``increase`` is that rate times ``W``. The first range query waits ``W``
    for the second scrape; later ones reuse the scrape history, so a gate of
    ten checks over ``[60s]`` waits 60 s once. ``histogram_quantile`` follows
    Prometheus (linear interpolation inside the bucket, the highest finite
    bound when the rank falls in ``+Inf``, NaN without observations). Every
    scraped series gets an ``instance`` label (host:port of the endpoint) and
    the ``labels`` of the provider / target. A target that cannot be scraped is
    an error (fail closed), never "no data".

``http_json``
    GETs a JSON document and evaluates a JMESPath expression on it: a number
    (one sample), ``null`` (no data), a list of numbers (one sample per item,
    label ``index``) or an object of numbers (label ``key``).

Deadline: ``deadline`` (seconds) bounds one *evaluation* - from ``begin_round()``
(or the first request when no round was begun) until the next ``begin_round()``.
Every HTTP attempt waits at most ``min(timeout, time left)``, no retry starts
once the deadline has passed, and a request cut by the deadline (or not sent
because of it) raises :class:`DeadlineError` naming the budget. ``begin_round(budget)``
lets a caller (a gate, a judge's look) impose its own budget; the smaller wins.

Secrets: :func:`provider_secrets` lists every secret a spec carries (token,
password, URL userinfo, the ``Authorization`` header values derived from them);
:func:`scrub` removes them (and any URL userinfo) from text, dicts and lists.
Errors raised here are already scrubbed; modules scrub their whole output with
the same function.

Query templates: ``${name}`` placeholders are replaced by variables (service,
version, window, ...). Inside a PromQL string the value is escaped for that
string (and regex-escaped inside ``=~`` / ``!~`` matchers); outside strings only
identifiers, numbers and durations are accepted; ``window`` must always be a
Prometheus duration (``60s``, ``5m``, ``1h30m``). A value that cannot be placed
safely is an error, never a surprise query.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import math
import re
import socket
import ssl
import time

from ansible.module_utils.six.moves.urllib.parse import unquote, urlencode, urlsplit, urlunsplit
from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.urls import Request, SSLValidationError, make_context
from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.common.text.converters import to_bytes, to_native, to_text

try:
    from http.client import HTTPException
except ImportError:  # pragma: no cover - Python 2
    from httplib import HTTPException  # noqa

try:
    from prometheus_client.parser import text_string_to_metric_families
    HAS_PROMETHEUS_CLIENT = True
    PROMETHEUS_CLIENT_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - depends on the environment
    HAS_PROMETHEUS_CLIENT = False
    PROMETHEUS_CLIENT_IMPORT_ERROR = _exc

try:
    import jmespath
    HAS_JMESPATH = True
    JMESPATH_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - depends on the environment
    HAS_JMESPATH = False
    JMESPATH_IMPORT_ERROR = _exc

PROVIDER_TYPES = ("prometheus", "prometheus_text", "http_json")

# Argument spec of the ``provider`` option (documented in the metric_provider doc fragment).
PROVIDER_OPTIONS = dict(
    type=dict(type="str", choices=list(PROVIDER_TYPES), default="prometheus"),
    url=dict(type="str"),
    targets=dict(type="list", elements="dict", options=dict(
        url=dict(type="str", required=True),
        labels=dict(type="dict"),
    )),
    labels=dict(type="dict"),
    token=dict(type="str", no_log=True),
    username=dict(type="str"),
    password=dict(type="str", no_log=True),
    ca_path=dict(type="path"),
    validate_certs=dict(type="bool", default=True),
    use_proxy=dict(type="bool", default=True),
    timeout=dict(type="float", default=10.0),
    retries=dict(type="int", default=2),
    retry_backoff=dict(type="float", default=0.5),
    deadline=dict(type="float"),
)
SECRET_KEYS = ("token", "password")
REDACTED = "********"
MAX_RETRIES = 10
MAX_DEADLINE = 86400.0
GET_LIMIT = 4000        # longer queries are POSTed (form-encoded), as the Prometheus API accepts both


class MetricError(Exception):
    """Base class of every metric error; the message says what and why."""


class NoDataError(MetricError):
    """The query returned no series (or a value that is not a number of anything, such as NaN)."""


class MultipleSeriesError(MetricError):
    """More than one series where exactly one was expected."""

    def __init__(self, msg, series=None):
        MetricError.__init__(self, msg)
        self.series = series or []


class ProviderError(MetricError):
    """The provider could not answer: bad configuration, unreachable, rejected query, bad response."""


class UnreachableError(ProviderError):
    """Connection errors / timeouts / HTTP 5xx persisted through every retry."""


class DeadlineError(UnreachableError):
    """The evaluation's deadline passed: a request was cut short or not sent (the rest is left undone)."""


class QueryError(ProviderError):
    """The metrics source rejected the query (for Prometheus: its error text, verbatim)."""


class Sample(dict):
    """One series: ``{'labels': {...}, 'value': float}`` (also ``.labels`` and ``.value``)."""

    def __init__(self, labels, value, **extra):
        dict.__init__(self, labels=dict(labels or {}), value=float(value))
        self.update(extra)

    @property
    def labels(self):
        return self["labels"]

    @property
    def value(self):
        return self["value"]


# ---------------------------------------------------------------------------
# durations and template variables

_DURATION_UNITS = (("ms", 0.001), ("y", 365 * 86400.0), ("w", 7 * 86400.0), ("d", 86400.0),
                   ("h", 3600.0), ("m", 60.0), ("s", 1.0))
_DURATION_RE = re.compile(r"^(?:[0-9]+(?:ms|s|m|h|d|w|y))+$")
_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h|d|w|y)")
_IDENT_RE = re.compile(r"^[A-Za-z_:][A-Za-z0-9_:]*$")
_NUMBER_RE = re.compile(r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$")
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RE2_SPECIAL = set("\\.+*?()|[]{}^$")


def parse_duration(value, field="window"):
    """Seconds in a Prometheus duration (``60s``, ``5m``, ``1h30m``, ``250ms``); ValueError naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError("%s: %r is not a Prometheus duration; use a string like 60s, 5m or 1h30m" % (field, value))
    s = value.strip()
    if not _DURATION_RE.match(s):
        raise ValueError("%s: %r is not a Prometheus duration; use a string like 60s, 5m or 1h30m "
                         "(units ms, s, m, h, d, w, y)" % (field, value))
    units = dict(_DURATION_UNITS)
    seconds = sum(int(n) * units[u] for n, u in _DURATION_PART.findall(s))
    if seconds <= 0:
        raise ValueError("%s: %r must be longer than 0" % (field, value))
    return seconds


def parse_seconds(value, field):
    """A number of seconds given as a number or a duration string (``30``, ``30s``, ``5m``)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("%s: %r is not a number of seconds or a duration like 30s, 5m" % (field, value))
    if isinstance(value, (int, float)):
        v = float(value)
    elif isinstance(value, str) and _NUMBER_RE.match(value.strip()):
        v = float(value)
    elif isinstance(value, str):
        v = parse_duration(value, field)
    else:
        raise ValueError("%s: %r is not a number of seconds or a duration like 30s, 5m" % (field, value))
    if math.isnan(v) or math.isinf(v) or v < 0:
        raise ValueError("%s: %r must be a finite number of seconds >= 0" % (field, value))
    return v


def validate_variables(variables, field="vars"):
    """Check variable names and values; returns a dict of str values."""
    if variables is None:
        return {}
    if not isinstance(variables, dict):
        raise ValueError("%s must be a dict of name: value, got %r" % (field, variables))
    out = {}
    for name, value in variables.items():
        if not isinstance(name, str) or not _VAR_NAME.match(name):
            raise ValueError("%s: variable name %r is not valid (letters, digits and _, not starting with a digit)"
                             % (field, name))
        if isinstance(value, bool) or value is None or not isinstance(value, (str, int, float)):
            raise ValueError("%s.%s: %r is not a string or a number" % (field, name, value))
        text = to_text(value) if not isinstance(value, float) else repr(value)
        if any(ord(c) < 32 and c not in "\t\n" for c in text) or "\x7f" in text:
            raise ValueError("%s.%s: %r contains control characters" % (field, name, value))
        if name == "window":
            parse_duration(text, "%s.window" % field)
        out[name] = text
    return out


def _re2_escape(text):
    return "".join("\\" + c if c in _RE2_SPECIAL else c for c in text)


def _promql_string_escape(text, quote):
    if quote == "`":
        if "`" in text:
            raise ValueError("a value containing ` cannot be placed in a `raw` PromQL string")
        return text
    out = []
    for c in text:
        if c == "\\":
            out.append("\\\\")
        elif c == quote:
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        else:
            out.append(c)
    return "".join(out)


def _jmespath_string_escape(text, quote):
    if quote == "'":
        return text.replace("\\", "\\\\").replace("'", "\\'")
    if quote == "`":
        return json.dumps(text)[1:-1].replace("`", "\\`")
    return json.dumps(text)[1:-1]


def render_query(template, variables, dialect="promql", field="query"):
    """Replace ``${name}`` placeholders of ``template`` with escaped variable values.

    ``dialect`` is ``promql`` (prometheus, prometheus_text) or ``jmespath`` (http_json).
    Raises ValueError naming ``field`` and the variable when a value cannot be placed safely.
    """
    if not isinstance(template, str) or not template.strip():
        raise ValueError("%s must be a non-empty string, got %r" % (field, template))
    if "${" not in template:
        return template
    values = validate_variables(variables)
    out = []
    i = 0
    quote = None
    regex = False
    n = len(template)
    while i < n:
        if template.startswith("${", i):
            m = _PLACEHOLDER.match(template, i)
            if not m:
                raise ValueError("%s: malformed placeholder at %r; write ${name} with a name of letters, digits and _"
                                 % (field, template[i:i + 20]))
            name = m.group(1)
            if name not in values:
                raise ValueError("%s: unknown variable ${%s}; known: %s" % (field, name, ", ".join(sorted(values)) or "none"))
            out.append(_place(values[name], name, quote, regex, dialect, field))
            i = m.end()
            continue
        c = template[i]
        if quote:
            if c == "\\" and quote != "`":
                out.append(template[i:i + 2])
                i += 2
                continue
            if c == quote:
                quote = None
        elif c in "\"'`":
            quote = c
            before = "".join(out).rstrip()
            regex = dialect == "promql" and (before.endswith("=~") or before.endswith("!~"))
        out.append(c)
        i += 1
    return "".join(out)


def _place(value, name, quote, regex, dialect, field):
    if quote:
        try:
            if dialect == "promql":
                return _promql_string_escape(_re2_escape(value) if regex else value, quote)
            return _jmespath_string_escape(value, quote)
        except ValueError as exc:
            raise ValueError("%s: ${%s}: %s" % (field, name, exc))
    if dialect == "jmespath":
        if re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", value) or _NUMBER_RE.match(value):
            return value
    elif _IDENT_RE.match(value) or _NUMBER_RE.match(value) or _DURATION_RE.match(value):
        return value
    where = "a quoted label value (label=\"${%s}\")" % name if dialect == "promql" else "a quoted literal ('${%s}')" % name
    raise ValueError("%s: ${%s} = %r is outside a quoted string; there only identifiers, numbers and durations are "
                     "accepted; put the placeholder inside %s" % (field, name, value, where))


# ---------------------------------------------------------------------------
# HTTP

def _redact_url(url):
    """The URL without user:password@ (for messages)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host += ":%d" % parts.port
        parts = parts._replace(netloc=host)
    return urlunsplit(parts)


# ``scheme://userinfo@`` anywhere in a text (the userinfo never holds / ? # @ or spaces)
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#@\s]+)@")


def _basic_forms(username, password):
    """The base64 ``user:pass`` of a basic Authorization header (with and without padding)."""
    raw = base64.b64encode(to_bytes("%s:%s" % (username, password), errors="surrogate_or_strict"))
    text = to_text(raw)
    return [text, text.rstrip("=")]


def url_secrets(url):
    """The secrets carried in the userinfo of a URL: the userinfo itself, its password (as written and
    percent-decoded) and the base64 ``user:pass`` a basic Authorization header made from it would carry."""
    if not isinstance(url, str):
        return []
    out = []
    for m in _URL_USERINFO.finditer(url):
        userinfo = m.group("userinfo")
        out.append(userinfo)
        user, sep, password = userinfo.partition(":")
        if sep and password:
            out.extend([password, unquote(password)])
        out.extend(_basic_forms(unquote(user), unquote(password)))
        out.extend(_basic_forms(user, password))
    return out


def provider_secrets(spec):
    """Every secret value of a provider spec (to hide from any output): token and password, the
    ``Authorization`` header values made of them (``Bearer <token>``, base64 of ``user:pass``) and the
    userinfo of ``url`` and ``targets[].url`` (see :func:`url_secrets`). Longest first."""
    if not isinstance(spec, dict):
        return []
    found = set()
    for key in SECRET_KEYS:
        value = spec.get(key)
        if isinstance(value, str) and value:
            found.add(value)
    if isinstance(spec.get("token"), str) and spec["token"]:
        found.add("Bearer %s" % spec["token"])
    if isinstance(spec.get("username"), str) and spec["username"]:
        found.update(_basic_forms(spec["username"], spec.get("password") or ""))
    found.update(url_secrets(spec.get("url")))
    for target in spec.get("targets") or []:
        if isinstance(target, dict):
            found.update(url_secrets(target.get("url")))
    return sorted((s for s in found if s), key=lambda s: (-len(s), s))


def params_secrets(params):
    """The secrets of every provider spec in a module's parameters, wherever it is nested (``provider``,
    ``checks[].provider``, ...), and the userinfo of any URL among them. Longest first."""
    found = set()

    def walk(value):
        if isinstance(value, dict):
            found.update(provider_secrets(value))
            for v in value.values():
                walk(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v)
        elif isinstance(value, str):
            found.update(url_secrets(value))
    walk(params)
    return sorted((s for s in found if s), key=lambda s: (-len(s), s))


def scrub(value, secrets=()):
    """``value`` without secrets: in every string (also inside dicts and lists) each known secret (see
    :func:`provider_secrets`) and the userinfo of any URL become ``********``. Other values are returned
    as they are. The one function every message and result of the metric modules passes through."""
    if isinstance(value, dict):
        return dict((k, scrub(v, secrets)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [scrub(v, secrets) for v in value]
    if isinstance(value, bytes):
        value = to_text(value, errors="replace")
    if not isinstance(value, str):
        return value
    text = _URL_USERINFO.sub(lambda m: m.group("scheme") + REDACTED + "@", value)
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def protect_module(module, params=None):
    """Register the provider secrets of ``module.params`` as ``no_log`` values (so the invocation shown at
    ``-vvv`` has ``********`` for them) and return them, for :func:`scrub`."""
    secrets = params_secrets(module.params if params is None else params)
    module.no_log_values.update(secrets)
    return secrets


def _check_url(url, field):
    if not isinstance(url, str) or not url:
        raise ProviderError("%s is required (an http:// or https:// URL)" % field)
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ProviderError("%s: %r is not a URL: %s" % (field, _redact_url(url), exc))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ProviderError("%s: %r is not an http:// or https:// URL" % (field, _redact_url(url)))
    return url


def _open(url, method="GET", context=None, **kw):
    """``ansible.module_utils.urls.open_url`` with a TLS context made once per provider.

    open_url builds a new SSL context (loading the CA store, ~60 ms) for every request, even
    over plain HTTP, and a 10-check gate makes 14 requests. ``Request().open`` is what open_url
    calls; here it gets the provider's context.
    """
    return Request().open(method, url, context=context, **kw)


def seconds_text(seconds):
    """A budget in seconds for messages (``1.5``, ``30``, ``0.25``)."""
    return "%g" % round(seconds, 2)


def _plural(n, one, many):
    return one if n == 1 else many


class _Http(object):
    """GET/POST with a timeout, bounded retries (exponential backoff) on connection errors and 5xx, a per-round
    breaker and the evaluation's deadline."""

    def __init__(self, spec, name):
        self.name = name
        self.token = spec.get("token")
        self.username = spec.get("username")
        self.password = spec.get("password")
        self.ca_path = spec.get("ca_path")
        self.validate_certs = spec.get("validate_certs", True)
        self.use_proxy = spec.get("use_proxy", True)
        self.timeout = spec.get("timeout", 10.0)
        self.retries = spec.get("retries", 2)
        self.backoff = spec.get("retry_backoff", 0.5)
        self.deadline = spec.get("deadline")      # seconds per evaluation (None: only timeout x attempts)
        self.secrets = provider_secrets(spec)
        self.sleep = time.sleep
        self.clock = time.monotonic
        self.requests = 0
        self._context = None
        self.down = None        # UnreachableError of this round: later requests fail fast, not after more retries
        self.budget = None      # the budget of the current evaluation (seconds), None when unbounded
        self.deadline_at = None
        self.started = False

    def reset(self, budget=None):
        """A new evaluation round: try the endpoint again; the round's deadline is the smaller of the spec's
        ``deadline`` and ``budget`` (seconds from now), if any."""
        self.down = None
        budgets = [b for b in (self.deadline, budget) if b is not None]
        self.budget = max(0.0, min(budgets)) if budgets else None
        self.deadline_at = self.clock() + self.budget if self.budget is not None else None
        self.started = True

    def extend(self, seconds):
        """Move the deadline by ``seconds`` (a deliberate wait, such as a rate window, is not the server's)."""
        if self.deadline_at is not None and seconds > 0:
            self.deadline_at += seconds

    def left(self):
        """Seconds left before the deadline (None without one)."""
        if self.deadline_at is None:
            return None
        return self.deadline_at - self.clock()

    def expired(self):
        left = self.left()
        return left is not None and left <= 0

    def context(self, url):
        """The SSL context, made on first use (Request.open would make one per request, even for http)."""
        if not url.lower().startswith("https:"):
            # never used for plain http; verifying with no CA loaded, so a redirect to https fails closed
            return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if self._context is None:
            try:
                self._context = make_context(cafile=self.ca_path, validate_certs=self.validate_certs)
            except (IOError, OSError, ssl.SSLError, ValueError) as exc:
                raise ProviderError("%s: cannot load TLS settings (ca_path %s): %s" % (self.name, self.ca_path, exc))
        return self._context

    def _scrub(self, text):
        """``text`` (an exception, a payload) scrubbed of this provider's secrets - before any truncation, so a
        secret is never cut in half and shown in part."""
        if not isinstance(text, (bytes, str)):
            text = to_native(text)
        return scrub(text, self.secrets)

    def _deadline_error(self, shown, made, attempts, started, last):
        where = "%s %s" % (self.name, _redact_url(shown))
        if not made:
            return DeadlineError("%s: the evaluation's deadline (%s s) passed before this request was sent; "
                                 "left undone" % (where, seconds_text(self.budget)))
        skipped = attempts - made
        return DeadlineError("%s: the evaluation's deadline (%s s) passed after %d attempt(s) in %.1f s (last: %s)%s; "
                             "left undone"
                             % (where, seconds_text(self.budget), made, self.clock() - started, last,
                                "; %d %s not made" % (skipped, _plural(skipped, "retry", "retries")) if skipped else ""))

    def request(self, url, data=None, accept="application/json"):
        """Return ``(status, body_bytes)`` for 2xx and 4xx; raise UnreachableError when retries run out
        (connection errors, timeouts, HTTP 5xx), DeadlineError when the evaluation's deadline passes.

        Once unreachable, every further request fails at once with the same error until ``reset()``
        (the next evaluation round), so a gate of many checks against a stalled server stays bounded
        by one query's retries instead of one per check.
        """
        if not self.started:
            self.reset()
        if self.down is not None:
            raise UnreachableError("%s (not retried again in this evaluation)" % self.down)
        headers = {"Accept": accept, "User-Agent": "stagegate.rollout-metrics"}
        if self.token:
            headers["Authorization"] = "Bearer %s" % self.token
        body = None
        method = "GET"
        shown = url             # messages name the endpoint, not the query string
        if data is not None:
            encoded = urlencode(data)
            if len(url) + len(encoded) < GET_LIMIT:
                # one packet: a POST's body goes out after its headers and waits for a delayed ACK (~40 ms)
                url = "%s%s%s" % (url, "&" if "?" in url else "?", encoded)
            else:
                body = encoded
                method = "POST"
                headers["Content-Type"] = "application/x-www-form-urlencoded"
        attempts = self.retries + 1
        started = self.clock()
        last = None
        made = 0
        for attempt in range(attempts):
            left = self.left()
            if left is not None and left <= 0:
                raise self._deadline_error(shown, made, attempts, started, last)
            timeout = self.timeout if left is None else min(self.timeout, left)
            made += 1
            self.requests += 1
            try:
                resp = _open(url, data=body, headers=headers, method=method, use_proxy=self.use_proxy,
                             timeout=timeout, validate_certs=self.validate_certs,
                             url_username=self.username, url_password=self.password,
                             force_basic_auth=bool(self.username), ca_path=self.ca_path,
                             follow_redirects="safe", use_netrc=False, context=self.context(url))
                try:
                    return resp.getcode(), resp.read()
                finally:
                    resp.close()
            except HTTPError as exc:
                try:
                    payload = exc.read()
                except Exception:  # pylint: disable=broad-except
                    payload = b""
                if exc.code < 500:
                    return exc.code, payload
                # a server that keeps answering 5xx is as unusable as one that does not answer
                last = "HTTP %d %s" % (exc.code, _short(self._scrub(payload or exc.reason or b"")))
            except SSLValidationError as exc:
                raise ProviderError("%s %s: TLS certificate verification failed: %s (set ca_path to the CA that "
                                    "signed it; validate_certs: false only for testing)"
                                    % (self.name, _redact_url(shown), self._scrub(exc)))
            except URLError as exc:
                reason = getattr(exc, "reason", exc)
                if isinstance(reason, ssl.SSLError):
                    raise ProviderError("%s %s: TLS error: %s (check ca_path / validate_certs)"
                                        % (self.name, _redact_url(shown), self._scrub(reason)))
                last = self._scrub(reason)
                if isinstance(reason, socket.timeout) or "timed out" in str(reason):
                    last = "timed out after %.1f s" % timeout
            except (socket.timeout, ConnectionError, UrlsConnectionError, HTTPException, OSError) as exc:
                last = self._scrub("%s: %s" % (type(exc).__name__, exc) if not str(exc) else exc)
                if isinstance(exc, socket.timeout) or "timed out" in str(exc):
                    last = "timed out after %.1f s" % timeout
            if attempt + 1 < attempts:
                pause = min(self.backoff * (2 ** attempt), 30.0)
                left = self.left()
                if left is not None and left <= pause:
                    # the retry could not start before the deadline: do not wait for nothing
                    raise self._deadline_error(shown, made, attempts, started, last)
                self.sleep(pause)
        if self.expired():
            raise self._deadline_error(shown, made, attempts, started, last)
        self.down = ("%s %s unreachable after %d attempt(s) in %.1f s (timeout %.1f s each): %s"
                     % (self.name, _redact_url(shown), attempts, self.clock() - started, self.timeout, last))
        raise UnreachableError(self.down)


def _short(payload, limit=300):
    text = to_text(payload or b"", errors="replace").strip()
    return text if len(text) <= limit else text[:limit] + "..."


# ---------------------------------------------------------------------------
# providers

class Provider(object):
    kind = None

    def __init__(self, spec):
        self.spec = spec

    def query(self, expr, at=None):
        raise NotImplementedError

    def scalar(self, expr, at=None):
        """Exactly one value from ``expr``: NoDataError when empty, MultipleSeriesError when several."""
        samples = self.query(expr, at=at)
        return single_value(samples, expr)

    def query_range(self, expr, start, end, step):
        raise ProviderError("%s provider: range queries are only supported by the prometheus provider" % self.kind)

    def begin_round(self, budget=None):
        """Called before each evaluation (a gate's round, a judge's look): the endpoint is tried again and
        the evaluation gets its deadline - the smaller of the spec's ``deadline`` and ``budget`` seconds
        from now (none when neither is set). Providers that cache scrapes drop them."""
        http = getattr(self, "http", None)
        if http is not None:
            http.reset(budget)

    def budget(self):
        """Seconds of the current evaluation's deadline (None when unbounded)."""
        http = getattr(self, "http", None)
        return http.budget if http is not None else None

    def deadline_passed(self):
        """Whether the current evaluation's deadline has passed (every further query would fail at once)."""
        http = getattr(self, "http", None)
        return http is not None and http.started and http.expired()

    def secrets(self):
        """The secret values of this provider's spec (see :func:`provider_secrets`)."""
        return provider_secrets(self.spec)

    def describe(self):
        return {"type": self.kind, "url": _redact_url(self.spec.get("url") or "")}


def single_value(samples, expr):
    if not samples:
        raise NoDataError("no data: query returned no series: %s" % _one_line(expr))
    if len(samples) > 1:
        shown = ", ".join(format_labels(s.labels) for s in samples[:5])
        raise MultipleSeriesError("query returned %d series where one was expected (%s%s); aggregate it, for example "
                                  "with sum(...) or max(...): %s"
                                  % (len(samples), shown, ", ..." if len(samples) > 5 else "", _one_line(expr)),
                                  series=samples)
    return samples[0].value


def format_labels(labels):
    name = labels.get("__name__", "")
    rest = ",".join('%s="%s"' % (k, v) for k, v in sorted(labels.items()) if k != "__name__")
    return "%s{%s}" % (name, rest)


def _one_line(expr, limit=200):
    text = " ".join(str(expr).split())
    return text if len(text) <= limit else text[:limit] + "..."


def _float(text):
    """Prometheus number strings: 'NaN', '+Inf', '-Inf', '1e3'."""
    return float(text)


class PrometheusProvider(Provider):
    kind = "prometheus"

    def __init__(self, spec):
        Provider.__init__(self, spec)
        self.base = _check_url(spec.get("url"), "provider.url").rstrip("/")
        self.http = _Http(spec, "Prometheus")

    def _api(self, path, data):
        url = self.base + path
        status, payload = self.http.request(url, data=data)      # 2xx or 4xx: 5xx raise UnreachableError
        scrub_text = self.http._scrub
        try:
            doc = json.loads(to_text(payload))
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            if status in (401, 403):
                raise ProviderError("Prometheus %s: HTTP %d: authentication failed (check token / username / "
                                    "password)" % (_redact_url(url), status))
            raise ProviderError("Prometheus %s: HTTP %d, response is not Prometheus API JSON: %s"
                                % (_redact_url(url), status, _short(scrub_text(payload))))
        if doc.get("status") != "success":
            error = scrub_text(to_text(doc.get("error", "")))
            etype = scrub_text(to_text(doc.get("errorType", "")))
            if status in (400, 422) or etype in ("bad_data", "execution"):
                raise QueryError("Prometheus rejected the query (%s, HTTP %d): %s" % (etype, status, error))
            if status in (401, 403):
                raise ProviderError("Prometheus %s: HTTP %d: authentication failed: %s"
                                    % (_redact_url(url), status, error))
            raise ProviderError("Prometheus error (%s, HTTP %d): %s" % (etype, status, error))
        data = doc.get("data")
        if not isinstance(data, dict) or "resultType" not in data:
            raise ProviderError("Prometheus %s: response has no data.resultType: %s"
                                % (_redact_url(url), _short(scrub_text(payload))))
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
                             "or *_over_time(), or use a range query: %s" % _one_line(expr))
        raise QueryError("query returned a %s, not a number: %s" % (rtype, _one_line(expr)))

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
            raise ProviderError("the http_json provider needs the Python library jmespath on the controller "
                                "(pip install jmespath): %s" % JMESPATH_IMPORT_ERROR)
        self.url = _check_url(spec.get("url"), "provider.url")
        self.http = _Http(spec, "JSON endpoint")
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
                                % (_redact_url(self.url), status, _short(self.http._scrub(payload))))
        try:
            self._doc = json.loads(to_text(payload))
        except ValueError as exc:
            raise ProviderError("JSON endpoint %s: response is not JSON (%s): %s"
                                % (_redact_url(self.url), exc, _short(self.http._scrub(payload), 120)))
        self._doc_time = now
        return self._doc

    def query(self, expr, at=None):
        if at is not None:
            raise ProviderError("http_json provider: 'at' (a past time) is not supported")
        try:
            compiled = jmespath.compile(expr)
        except jmespath.exceptions.JMESPathError as exc:
            raise QueryError("JMESPath expression rejected: %s: %s" % (_one_line(expr), exc))
        try:
            result = compiled.search(self.document())
        except jmespath.exceptions.JMESPathError as exc:
            raise QueryError("JMESPath evaluation failed: %s: %s" % (_one_line(expr), exc))
        return json_samples(result, expr)


def _json_number(value, expr, where):
    if isinstance(value, bool) or value is None:
        raise QueryError("JMESPath %s%s is %r, not a number" % (_one_line(expr), where, value))
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise QueryError("JMESPath %s%s is %s %r, not a number"
                     % (_one_line(expr), where, type(value).__name__, _short(json.dumps(value), 80)))


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


# ---------------------------------------------------------------------------
# prometheus_text: scrapes and a PromQL subset

class _Scrape(object):
    __slots__ = ("t", "samples", "index")

    def __init__(self, t, samples):
        self.t = t
        self.samples = samples      # list of (labels dict incl. __name__, value)
        self.index = {}
        for labels, value in samples:
            self.index[_key(labels)] = value


def _key(labels):
    return tuple(sorted(labels.items()))


class PrometheusTextProvider(Provider):
    kind = "prometheus_text"

    def __init__(self, spec):
        Provider.__init__(self, spec)
        if not HAS_PROMETHEUS_CLIENT:
            raise ProviderError("the prometheus_text provider needs the Python library prometheus_client on the "
                                "controller (pip install prometheus_client): %s" % PROMETHEUS_CLIENT_IMPORT_ERROR)
        base_labels = _labels_option(spec.get("labels"), "provider.labels")
        targets = []
        if spec.get("targets"):
            for i, t in enumerate(spec["targets"]):
                if not isinstance(t, dict):
                    raise ProviderError("provider.targets[%d] must be a dict with url and labels, got %r" % (i, t))
                unknown = set(k for k, v in t.items() if v is not None) - {"url", "labels"}
                if unknown:
                    raise ProviderError("provider.targets[%d]: unknown keys %s (accepted: url, labels)"
                                        % (i, ", ".join(sorted(unknown))))
                url = _check_url(t.get("url"), "provider.targets[%d].url" % i)
                labels = dict(base_labels)
                labels.update(_labels_option(t.get("labels"), "provider.targets[%d].labels" % i))
                targets.append((url, labels))
        if spec.get("url"):
            targets.insert(0, (_check_url(spec["url"], "provider.url"), dict(base_labels)))
        if not targets:
            raise ProviderError("provider.url (or provider.targets) is required for prometheus_text: the /metrics "
                                "endpoint to scrape")
        for url, labels in targets:
            labels.setdefault("instance", urlsplit(url).netloc.rsplit("@", 1)[-1])
        self.targets = targets
        self.http = _Http(spec, "metrics endpoint")
        self.history = []
        self.cache_seconds = 0.5
        self.clock = time.monotonic
        self.sleep = time.sleep
        self._fresh = False
        self._parsed = {}
        self.waited = 0.0

    def describe(self):
        return {"type": self.kind, "url": ", ".join(_redact_url(u) for u, dummy in self.targets)}

    def begin_round(self, budget=None):
        Provider.begin_round(self, budget)
        self._fresh = False

    def _fetch(self, url):
        status, payload = self.http.request(url, accept="text/plain;version=0.0.4;q=1,*/*;q=0.1")
        if status >= 400:
            raise ProviderError("metrics endpoint %s: HTTP %d: %s"
                                % (_redact_url(url), status, _short(self.http._scrub(payload))))
        return payload

    def _scrape(self):
        samples = []
        for url, extra in self.targets:
            payload = self._fetch(url)
            try:
                for family in text_string_to_metric_families(to_text(payload, errors="replace")):
                    for s in family.samples:
                        labels = dict(extra)
                        labels.update(s.labels)
                        labels["__name__"] = s.name
                        samples.append((labels, float(s.value)))
            except Exception as exc:  # pylint: disable=broad-except  # the parser raises ValueError/TypeError/...
                raise ProviderError("metrics endpoint %s: not in Prometheus text format: %s"
                                    % (_redact_url(url), self.http._scrub(exc)))
        scrape = _Scrape(self.clock(), samples)
        self.history.append(scrape)
        self._fresh = True
        return scrape

    def current(self):
        if self.history and self._fresh and self.clock() - self.history[-1].t < self.cache_seconds:
            return self.history[-1]
        return self._scrape()

    def pair(self, window):
        """(earlier scrape, current scrape) about ``window`` seconds apart (waits for it the first time)."""
        cur = self.current()
        slack = min(0.1, window * 0.05)
        prev = None
        for s in reversed(self.history[:-1]):
            if cur.t - s.t >= window - slack:
                prev = s
                break
        if prev is None:
            oldest = self.history[0]
            wait = window - (self.clock() - oldest.t)
            if wait > 0:
                self.waited += wait
                # a deliberate wait for the window, not a server's: it does not eat the evaluation's deadline
                self.http.extend(wait)
                self.sleep(wait)
            cur = self._scrape()
            prev = oldest
        # drop what no window will need again
        keep_after = cur.t - max(window, 1.0) * 2 - 60
        while len(self.history) > 2 and self.history[0].t < keep_after and self.history[0] is not prev:
            self.history.pop(0)
        return prev, cur

    def query(self, expr, at=None):
        if at is not None:
            raise ProviderError("prometheus_text provider: 'at' (a past time) is not supported; it reads the "
                                "endpoint now")
        ast = self._parsed.get(expr)
        if ast is None:
            ast = PromQLParser(expr).parse()
            self._parsed[expr] = ast
        result = _Evaluator(self).eval(ast)
        if isinstance(result, float):
            return [Sample({}, result)]
        return [Sample(labels, value) for labels, value in result]


def _labels_option(labels, field):
    if labels is None:
        return {}
    if not isinstance(labels, dict):
        raise ProviderError("%s must be a dict of label: value, got %r" % (field, labels))
    out = {}
    for k, v in labels.items():
        if not isinstance(k, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", k) or k == "__name__":
            raise ProviderError("%s: %r is not a valid label name" % (field, k))
        out[k] = to_text(v)
    return out


class PromQLParser(object):
    """Recursive-descent parser of the PromQL subset evaluated by prometheus_text."""

    TOKEN = re.compile(r"""
        (?P<ws>\s+)
      | (?P<duration>(?:[0-9]+(?:ms|s|m|h|d|w|y))+(?![A-Za-z0-9_.]))
      | (?P<number>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|0x[0-9a-fA-F]+)
      | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
      | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
      | (?P<op>=~|!~|!=|==|>=|<=|=|>|<|[-+*/%^(){}\[\],@])
    """, re.VERBOSE)
    AGGREGATIONS = ("sum", "min", "max", "avg", "count")
    RANGE_FUNCS = ("rate", "irate", "increase")
    SUPPORTED = ("numbers, selectors with label matchers, + - * /, sum/min/max/avg/count [by|without], "
                 "rate/irate/increase(selector[window]), histogram_quantile(phi, ...), vector(n), or, "
                 "on()/ignoring()")

    def __init__(self, text):
        self.text = text
        self.tokens = []
        pos = 0
        while pos < len(text):
            m = self.TOKEN.match(text, pos)
            if not m:
                raise QueryError("prometheus_text: cannot parse the query at %r: %s"
                                 % (text[pos:pos + 20], _one_line(text)))
            kind = m.lastgroup
            if kind != "ws":
                self.tokens.append((kind, m.group(kind), pos))
            pos = m.end()
        self.i = 0

    def error(self, msg):
        tok = self.peek()
        where = "at %r" % tok[1] if tok else "at the end"
        raise QueryError("prometheus_text: %s %s in %s (supported: %s)"
                         % (msg, where, _one_line(self.text), self.SUPPORTED))

    def peek(self, k=0):
        j = self.i + k
        return self.tokens[j] if j < len(self.tokens) else None

    def take(self, value=None, kind=None):
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value) or (kind is not None and tok[0] != kind):
            self.error("expected %s" % (repr(value) if value else kind))
        self.i += 1
        return tok

    def accept(self, value):
        tok = self.peek()
        if tok is not None and tok[1] == value and tok[0] in ("op", "ident"):
            self.i += 1
            return True
        return False

    def parse(self):
        if not self.tokens:
            self.error("empty query")
        node = self.expr()
        if self.peek() is not None:
            self.error("unexpected token")
        return node

    def expr(self):
        node = self.additive()
        while self.peek() and self.peek()[0] == "ident" and self.peek()[1] == "or":
            self.i += 1
            node = ("or", node, self.matching(), self.additive())
        tok = self.peek()
        if tok and tok[0] == "ident" and tok[1] in ("and", "unless"):
            self.error("operator %s is not supported" % tok[1])
        return node

    def additive(self):
        node = self.term()
        while self.peek() and self.peek()[1] in ("+", "-") and self.peek()[0] == "op":
            op = self.take()[1]
            node = ("binop", op, node, self.matching(), self.term())
        self._no_comparison()
        return node

    def _no_comparison(self):
        tok = self.peek()
        if tok and tok[0] == "op" and tok[1] in ("==", "!=", ">", "<", ">=", "<=", "%", "^"):
            self.error("operator %s is not supported (put thresholds in the check: lt, gt, between ...)" % tok[1])

    def term(self):
        node = self.unary()
        while self.peek() and self.peek()[1] in ("*", "/") and self.peek()[0] == "op":
            op = self.take()[1]
            node = ("binop", op, node, self.matching(), self.unary())
        self._no_comparison()
        return node

    def matching(self):
        tok = self.peek()
        if tok and tok[0] == "ident" and tok[1] in ("on", "ignoring"):
            self.i += 1
            return (tok[1], self.label_list())
        if tok and tok[0] == "ident" and tok[1] in ("group_left", "group_right", "bool"):
            self.error("%s is not supported" % tok[1])
        return None

    def unary(self):
        tok = self.peek()
        if tok and tok[0] == "op" and tok[1] in ("-", "+"):
            self.i += 1
            inner = self.unary()
            return ("neg", inner) if tok[1] == "-" else inner
        return self.primary()

    def label_list(self):
        self.take("(")
        labels = []
        while not self.accept(")"):
            labels.append(self.take(kind="ident")[1])
            if not self.accept(","):
                self.take(")")
                break
        return labels

    def primary(self):
        tok = self.peek()
        if tok is None:
            self.error("expected an expression")
        kind, value = tok[0], tok[1]
        if kind == "number":
            self.i += 1
            return ("num", float(int(value, 16)) if value.startswith("0x") else float(value))
        if kind == "op" and value == "(":
            self.i += 1
            node = self.expr()
            self.take(")")
            return node
        if kind == "op" and value == "{":
            return self.selector(None)
        if kind != "ident":
            self.error("unexpected token")
        low = value.lower()
        if low in ("inf", "nan") and not (self.peek(1) and self.peek(1)[1] in ("{", "[")):
            self.i += 1
            return ("num", float(low))
        if low in self.AGGREGATIONS and self.peek(1) and self.peek(1)[1] in ("(", "by", "without"):
            return self.aggregation()
        if self.peek(1) and self.peek(1)[1] == "(":
            return self.function()
        return self.selector(value)

    def aggregation(self):
        op = self.take()[1].lower()
        grouping = None
        if self.peek() and self.peek()[1] in ("by", "without"):
            grouping = (self.take()[1], self.label_list())
        self.take("(")
        inner = self.expr()
        if self.accept(","):
            self.error("aggregation parameters are not supported")
        self.take(")")
        if self.peek() and self.peek()[1] in ("by", "without"):
            if grouping:
                self.error("grouping given twice")
            grouping = (self.take()[1], self.label_list())
        return ("agg", op, grouping, inner)

    def function(self):
        name = self.take()[1]
        self.take("(")
        if name in self.RANGE_FUNCS:
            sel = self.primary()
            if sel[0] != "sel" or sel[3] is None:
                self.error("%s() needs a range selector like metric{...}[5m]" % name)
            self.take(")")
            return ("range", name, sel)
        if name == "vector":
            inner = self.expr()
            self.take(")")
            return ("vector", inner)
        if name == "histogram_quantile":
            phi = self.expr()
            self.take(",")
            inner = self.expr()
            self.take(")")
            return ("hq", phi, inner)
        self.i -= 2
        self.error("function %s() is not supported" % name)

    def selector(self, name):
        matchers = []
        if name is not None:
            self.i += 1
            if name in ("by", "without", "on", "ignoring", "offset", "bool"):
                self.error("unexpected keyword")
            matchers.append(("__name__", "=", name))
        if self.accept("{"):
            while not self.accept("}"):
                label = self.take(kind="ident")[1]
                optok = self.take(kind="op")
                if optok[1] not in ("=", "!=", "=~", "!~"):
                    self.i -= 1
                    self.error("expected a label matcher operator (=, !=, =~, !~)")
                raw = self.take(kind="string")[1]
                matchers.append((label, optok[1], _unquote(raw)))
                if not self.accept(","):
                    self.take("}")
                    break
        if not matchers:
            self.error("a selector needs a metric name or label matchers")
        compiled = []
        for label, op, value in matchers:
            if op in ("=~", "!~"):
                try:
                    value = re.compile("^(?:%s)$" % value, re.DOTALL)
                except re.error as exc:
                    raise QueryError("prometheus_text: invalid regex %r for label %s: %s" % (value, label, exc))
            compiled.append((label, op, value))
        window = None
        if self.accept("["):
            window = parse_duration(self.take(kind="duration")[1], "range")
            self.take("]")
        tok = self.peek()
        if tok and tok[1] in ("offset", "@"):
            self.error("%s is not supported" % tok[1])
        return ("sel", name, compiled, window)


def _unquote(raw):
    q = raw[0]
    body = raw[1:-1]
    if q == "`":
        return body
    out = []
    i = 0
    escapes = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a", "b": "\b", "f": "\f",
               "v": "\v"}
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append(escapes.get(nxt, "\\" + nxt))
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _matches(labels, matchers):
    for label, op, value in matchers:
        have = labels.get(label, "")
        if op == "=" and have != value:
            return False
        if op == "!=" and have == value:
            return False
        if op == "=~" and not value.match(have):
            return False
        if op == "!~" and value.match(have):
            return False
    return True


def _drop_name(labels):
    return dict((k, v) for k, v in labels.items() if k != "__name__")


def _div(a, b):
    if b == 0:
        if a == 0 or math.isnan(a):
            return float("nan")
        return math.copysign(float("inf"), a) * (1 if math.copysign(1, b) > 0 else -1)
    return a / b


_OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": _div}


def bucket_quantile(q, buckets):
    """Prometheus's histogram_quantile on ``[(upper_bound, cumulative_count), ...]``."""
    if math.isnan(q):
        return float("nan")
    if q < 0:
        return float("-inf")
    if q > 1:
        return float("inf")
    buckets = sorted(buckets)
    if len(buckets) < 2 or not math.isinf(buckets[-1][0]):
        return float("nan")
    fixed = []
    top = 0.0
    for ub, c in buckets:
        top = max(top, c)
        fixed.append((ub, top))
    observations = fixed[-1][1]
    if observations == 0 or math.isnan(observations):
        return float("nan")
    rank = q * observations
    b = 0
    while b < len(fixed) - 1 and fixed[b][1] < rank:
        b += 1
    if b == len(fixed) - 1:
        return fixed[-2][0]
    if b == 0 and fixed[0][0] <= 0:
        return fixed[0][0]
    start = 0.0
    end = fixed[b][0]
    count = fixed[b][1]
    if b > 0:
        start = fixed[b - 1][0]
        count -= fixed[b - 1][1]
        rank -= fixed[b - 1][1]
    if count == 0:
        return end
    return start + (end - start) * (rank / count)


class _Evaluator(object):
    def __init__(self, provider):
        self.p = provider

    def eval(self, node):
        kind = node[0]
        return getattr(self, "_" + kind)(node)

    def _num(self, node):
        return node[1]

    def _neg(self, node):
        v = self.eval(node[1])
        if isinstance(v, float):
            return -v
        return [(_drop_name(lab), -x) for lab, x in v]

    def _sel(self, node):
        dummy, name, matchers, window = node
        if window is not None:
            raise QueryError("prometheus_text: a range selector %s[...] must be inside rate(), irate() or increase()"
                             % (name or ""))
        return [(lab, v) for lab, v in self.p.current().samples if _matches(lab, matchers)]

    def _range(self, node):
        dummy, func, sel = node
        matchers, window = sel[2], sel[3]
        prev, cur = self.p.pair(window)
        elapsed = cur.t - prev.t
        out = []
        for lab, v1 in cur.samples:
            if not _matches(lab, matchers):
                continue
            v0 = prev.index.get(_key(lab), 0.0)
            delta = v1 - v0 if v1 >= v0 else v1       # counter reset: the new process counted from 0
            rate = delta / elapsed if elapsed > 0 else float("nan")
            out.append((_drop_name(lab), rate * window if func == "increase" else rate))
        return out

    def _agg(self, node):
        dummy, op, grouping, inner = node
        v = self.eval(inner)
        if isinstance(v, float):
            raise QueryError("prometheus_text: %s() needs a vector, got a number" % op)
        groups = {}
        order = []
        for lab, x in v:
            if grouping is None:
                g = {}
            elif grouping[0] == "by":
                g = dict((k, lab[k]) for k in grouping[1] if k in lab)
            else:
                g = dict((k, val) for k, val in lab.items() if k not in grouping[1] and k != "__name__")
            key = _key(g)
            if key not in groups:
                groups[key] = (g, [])
                order.append(key)
            groups[key][1].append(x)
        out = []
        for key in order:
            g, xs = groups[key]
            if op == "sum":
                val = math.fsum(xs)
            elif op == "min":
                val = min(xs)
            elif op == "max":
                val = max(xs)
            elif op == "avg":
                val = math.fsum(xs) / len(xs)
            else:
                val = float(len(xs))
            out.append((g, val))
        return out

    def _hq(self, node):
        phi = self.eval(node[1])
        if not isinstance(phi, float):
            raise QueryError("prometheus_text: histogram_quantile's first argument must be a number")
        v = self.eval(node[2])
        if isinstance(v, float):
            raise QueryError("prometheus_text: histogram_quantile needs a vector of buckets (with an le label)")
        groups = {}
        order = []
        for lab, x in v:
            if "le" not in lab:
                continue
            try:
                ub = float(lab["le"])
            except ValueError:
                continue
            g = dict((k, val) for k, val in lab.items() if k not in ("le", "__name__"))
            key = _key(g)
            if key not in groups:
                groups[key] = (g, [])
                order.append(key)
            groups[key][1].append((ub, x))
        return [(groups[k][0], bucket_quantile(phi, groups[k][1])) for k in order]

    def _vector(self, node):
        v = self.eval(node[1])
        if not isinstance(v, float):
            raise QueryError("prometheus_text: vector() needs a number")
        return [({}, v)]

    def _or(self, node):
        dummy, left, matching, right = node
        a = self.eval(left)
        b = self.eval(right)
        if isinstance(a, float) or isinstance(b, float):
            raise QueryError("prometheus_text: 'or' needs vectors on both sides (use vector(0) for a number)")
        sig = self._signature(matching)
        have = set(sig(lab) for lab, dummy_x in a)
        return list(a) + [(lab, x) for lab, x in b if sig(lab) not in have]

    @staticmethod
    def _signature(matching):
        def sig(lab):
            if matching is None:
                return _key(_drop_name(lab))
            if matching[0] == "on":
                return _key(dict((k, lab.get(k, "")) for k in matching[1]))
            return _key(dict((k, v) for k, v in lab.items() if k not in matching[1] and k != "__name__"))
        return sig

    def _binop(self, node):
        dummy, op, left, matching, right = node
        a = self.eval(left)
        b = self.eval(right)
        f = _OPS[op]
        if isinstance(a, float) and isinstance(b, float):
            return f(a, b)
        if isinstance(a, float):
            return [(_drop_name(lab), f(a, x)) for lab, x in b]
        if isinstance(b, float):
            return [(_drop_name(lab), f(x, b)) for lab, x in a]
        sig = self._signature(matching)
        right_index = {}
        for lab, x in b:
            s = sig(lab)
            if s in right_index:
                raise QueryError("prometheus_text: many-to-many matching not allowed: several series on the right "
                                 "side of %s match %s; aggregate them or use on(...)" % (op, dict(s)))
            right_index[s] = x
        out = []
        seen = set()
        for lab, x in a:
            s = sig(lab)
            if s in seen:
                raise QueryError("prometheus_text: many-to-many matching not allowed: several series on the left "
                                 "side of %s match %s" % (op, dict(s)))
            seen.add(s)
            if s not in right_index:
                continue
            if matching is None:
                res = _drop_name(lab)
            elif matching[0] == "on":
                res = dict((k, lab[k]) for k in matching[1] if k in lab)
            else:
                res = dict((k, v) for k, v in lab.items() if k not in matching[1] and k != "__name__")
            out.append((res, f(x, right_index[s])))
        return out


# ---------------------------------------------------------------------------

_BUILDERS = {"prometheus": PrometheusProvider, "prometheus_text": PrometheusTextProvider,
             "http_json": HttpJsonProvider}


def normalize_spec(spec, field="provider"):
    """Validate a provider spec (a dict as the ``provider`` option takes it); returns a clean copy with defaults."""
    if not isinstance(spec, dict):
        raise ProviderError("%s must be a dict such as {type: prometheus, url: http://127.0.0.1:9090}, got %r"
                            % (field, _redact_spec(spec)))
    clean = dict((k, v) for k, v in spec.items() if v is not None)
    unknown = set(clean) - set(PROVIDER_OPTIONS)
    if unknown:
        raise ProviderError("%s: unknown keys %s (accepted: %s)"
                            % (field, ", ".join(sorted(unknown)), ", ".join(sorted(PROVIDER_OPTIONS))))
    kind = clean.get("type", "prometheus")
    if kind not in PROVIDER_TYPES:
        raise ProviderError("%s.type: %r is not a provider type (accepted: %s)" % (field, kind, ", ".join(PROVIDER_TYPES)))
    clean["type"] = kind
    for key, default in (("timeout", 10.0), ("retry_backoff", 0.5)):
        v = clean.get(key, default)
        try:
            v = float(v)
        except (TypeError, ValueError):
            raise ProviderError("%s.%s: %r is not a number of seconds" % (field, key, v))
        if isinstance(clean.get(key), bool) or math.isnan(v) or v < 0 or (key == "timeout" and v <= 0) or v > 3600:
            raise ProviderError("%s.%s: %r must be %s seconds (at most 3600)"
                                % (field, key, clean.get(key), "> 0" if key == "timeout" else ">= 0"))
        clean[key] = v
    if "deadline" in clean:
        v = clean["deadline"]
        try:
            seconds = float(v)
        except (TypeError, ValueError):
            raise ProviderError("%s.deadline: %r is not a number of seconds" % (field, v))
        if isinstance(v, bool) or math.isnan(seconds) or seconds <= 0 or seconds > MAX_DEADLINE:
            raise ProviderError("%s.deadline: %r must be > 0 seconds (at most %d)" % (field, v, MAX_DEADLINE))
        clean["deadline"] = seconds
    retries = clean.get("retries", 2)
    if isinstance(retries, bool) or not isinstance(retries, int) and not (isinstance(retries, str) and retries.isdigit()):
        raise ProviderError("%s.retries: %r is not a whole number 0..%d" % (field, retries, MAX_RETRIES))
    retries = int(retries)
    if not 0 <= retries <= MAX_RETRIES:
        raise ProviderError("%s.retries: %r must be between 0 and %d (retries are bounded)" % (field, retries, MAX_RETRIES))
    clean["retries"] = retries
    for key in ("validate_certs", "use_proxy"):
        v = clean.get(key, True)
        if not isinstance(v, bool):
            raise ProviderError("%s.%s: %r must be true or false" % (field, key, v))
        clean[key] = v
    if clean.get("password") and not clean.get("username"):
        raise ProviderError("%s.password is set without %s.username" % (field, field))
    if clean.get("token") and clean.get("username"):
        raise ProviderError("%s: give token (bearer) or username/password (basic), not both" % field)
    if clean.get("targets") and kind != "prometheus_text":
        raise ProviderError("%s.targets is only used by type prometheus_text" % field)
    if clean.get("labels") and kind != "prometheus_text":
        raise ProviderError("%s.labels is only used by type prometheus_text" % field)
    if kind != "prometheus_text" and not clean.get("url"):
        raise ProviderError("%s.url is required for type %s" % (field, kind))
    if clean.get("url"):
        _check_url(clean["url"], "%s.url" % field)
    return clean


def _redact_spec(spec):
    if isinstance(spec, dict):
        return scrub(dict((k, REDACTED if k in SECRET_KEYS and v else v) for k, v in spec.items()),
                     provider_secrets(spec))
    return scrub(spec, url_secrets(spec))


def spec_key(spec):
    """A hashable identity of a normalized spec (providers with the same key can be shared)."""
    return json.dumps(spec, sort_keys=True, default=str)


def build_provider(spec, field="provider"):
    """Build a provider from its spec (``type`` defaults to prometheus). Raises ProviderError naming the field."""
    clean = normalize_spec(spec, field)
    return _BUILDERS[clean["type"]](clean)


def query_dialect(spec):
    """Template dialect of a provider spec: ``jmespath`` for http_json, else ``promql``."""
    kind = (spec or {}).get("type") or "prometheus"
    return "jmespath" if kind == "http_json" else "promql"


def jsonable(value):
    """Non-finite floats as Prometheus spells them ('NaN', '+Inf', '-Inf') so JSON output stays valid."""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "+Inf" if value > 0 else "-Inf"
        return value
    if isinstance(value, dict):
        return dict((k, jsonable(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value
