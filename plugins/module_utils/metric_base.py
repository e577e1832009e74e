# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every metric provider shares: the errors it raises, the :class:`Sample` it returns, the
:class:`Provider` base class and the helpers that shape its messages.

Errors (every message says what and why, and is already scrubbed of secrets)::

    MetricError
    +-- NoDataError            the query returned no series (never a silent pass)
    +-- MultipleSeriesError    several series where one was expected
    +-- ProviderError          the source could not answer: bad configuration, rejected query, bad response
        +-- UnreachableError   connection errors, timeouts, HTTP 5xx through every retry
        |   +-- DeadlineError  the evaluation's deadline passed
        +-- QueryError         the source rejected the query (its own text, verbatim)

A provider (see ``metric_providers.build_provider``) subclasses :class:`Provider`, sets ``kind``, holds an
``http`` client (``metric_http.HttpClient``) and implements ``query(expr, at=None)``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math

from ansible.module_utils.common.text.converters import to_text

from ansible_collections.stagegate.rollout.plugins.module_utils.redact import redact_url


class MetricError(Exception):
    """Base class of every metric error; the message says what and why."""


class NoDataError(MetricError):
    """The query returned no series (or a value that is not a number of anything, such as NaN)."""


class MultipleSeriesError(MetricError):
    """More than one series where exactly one was expected."""

    def __init__(self, msg, series=None):
        MetricError.__init__(self, msg)
        self.series = series or []


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


def single_value(samples, expr):
    if not samples:
        raise NoDataError("no data: query returned no series: %s" % one_line(expr))
    if len(samples) > 1:
        shown = ", ".join(format_labels(s.labels) for s in samples[:5])
        raise MultipleSeriesError("query returned %d series where one was expected (%s%s); aggregate it, for example "
                                  "with sum(...) or max(...): %s"
                                  % (len(samples), shown, ", ..." if len(samples) > 5 else "", one_line(expr)),
                                  series=samples)
    return samples[0].value


def format_labels(labels):
    name = labels.get("__name__", "")
    rest = ",".join('%s="%s"' % (k, v) for k, v in sorted(labels.items()) if k != "__name__")
    return "%s{%s}" % (name, rest)


def one_line(expr, limit=200):
    text = " ".join(str(expr).split())
    return text if len(text) <= limit else text[:limit] + "..."


def short(payload, limit=300):
    """A response body for a message: text, stripped, at most ``limit`` characters."""
    text = to_text(payload or b"", errors="replace").strip()
    return text if len(text) <= limit else text[:limit] + "..."


def seconds_text(seconds):
    """A budget in seconds for messages (``1.5``, ``30``, ``0.25``)."""
    return "%g" % round(seconds, 2)


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
        """The secret values of this provider's spec (see ``metric_spec.provider_secrets``)."""
        http = getattr(self, "http", None)
        return list(http.secrets) if http is not None else []

    def describe(self):
        return {"type": self.kind, "url": redact_url(self.spec.get("url") or "")}
