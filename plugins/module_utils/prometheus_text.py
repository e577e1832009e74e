# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``prometheus_text`` provider: scrapes one or more ``/metrics`` endpoints (Prometheus text exposition
format, parsed with ``prometheus_client.parser``) and evaluates the PromQL subset of ``promql_subset`` on the
scrapes - for setups with no Prometheus server.

The first range query waits its window ``W`` for the second scrape (a deliberate wait, which does not eat the
evaluation's deadline); later ones reuse the scrape history, so a gate of ten checks over ``[60s]`` waits
60 s once. Every scraped series gets an ``instance`` label (host:port of the endpoint) and the ``labels`` of
the provider / target. A target that cannot be scraped is an error (fail closed), never "no data".
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import time

from urllib.parse import urlsplit

from ansible.module_utils.common.text.converters import to_text

from ansible_collections.stagegate.rollout.plugins.module_utils.metric_base import (
    Provider, ProviderError, Sample, short)
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_http import HttpClient
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_spec import check_url
from ansible_collections.stagegate.rollout.plugins.module_utils.promql_subset import Evaluator, Scrape, parse
from ansible_collections.stagegate.rollout.plugins.module_utils.redact import redact_url


def _text_parser():
    """prometheus_client's text-format parser, imported when a prometheus_text provider is built: the import takes
    about 0.2 s of CPU, which every run of a module that can use this provider (metric_gate, canary_judge, ...)
    would pay otherwise, whatever its provider."""
    from prometheus_client.parser import text_string_to_metric_families  # pylint: disable=import-outside-toplevel
    return text_string_to_metric_families


class PrometheusTextProvider(Provider):
    kind = "prometheus_text"

    def __init__(self, spec):
        Provider.__init__(self, spec)
        try:
            self._families = _text_parser()
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ProviderError("the prometheus_text provider needs the Python library prometheus_client on the "
                                "controller (pip install prometheus_client): %s" % exc)
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
                url = check_url(t.get("url"), "provider.targets[%d].url" % i)
                labels = dict(base_labels)
                labels.update(_labels_option(t.get("labels"), "provider.targets[%d].labels" % i))
                targets.append((url, labels))
        if spec.get("url"):
            targets.insert(0, (check_url(spec["url"], "provider.url"), dict(base_labels)))
        if not targets:
            raise ProviderError("provider.url (or provider.targets) is required for prometheus_text: the /metrics "
                                "endpoint to scrape")
        for url, labels in targets:
            labels.setdefault("instance", urlsplit(url).netloc.rsplit("@", 1)[-1])
        self.targets = targets
        self.http = HttpClient(spec, "metrics endpoint")
        self.history = []
        self.cache_seconds = 0.5
        self.clock = time.monotonic
        self.sleep = time.sleep
        self._fresh = False
        self._parsed = {}
        self.waited = 0.0

    def describe(self):
        return {"type": self.kind, "url": ", ".join(redact_url(u) for u, dummy in self.targets)}

    def begin_round(self, budget=None):
        Provider.begin_round(self, budget)
        self._fresh = False

    def _fetch(self, url):
        status, payload = self.http.request(url, accept="text/plain;version=0.0.4;q=1,*/*;q=0.1")
        if status >= 400:
            raise ProviderError("metrics endpoint %s: HTTP %d: %s"
                                % (redact_url(url), status, short(self.http.scrubbed(payload))))
        return payload

    def _scrape(self):
        samples = []
        for url, extra in self.targets:
            payload = self._fetch(url)
            try:
                for family in self._families(to_text(payload, errors="replace")):
                    for s in family.samples:
                        labels = dict(extra)
                        labels.update(s.labels)
                        labels["__name__"] = s.name
                        samples.append((labels, float(s.value)))
            except Exception as exc:  # pylint: disable=broad-except  # the parser raises ValueError/TypeError/...
                raise ProviderError("metrics endpoint %s: not in Prometheus text format: %s"
                                    % (redact_url(url), self.http.scrubbed(exc)))
        scrape = Scrape(self.clock(), samples)
        self.history.append(scrape)
        self._fresh = True
        return scrape

    def current(self):
        if self.history and self._fresh and self.clock() - self.history[-1].taken < self.cache_seconds:
            return self.history[-1]
        return self._scrape()

    def scrapes_apart(self, window):
        """(earlier scrape, current scrape) about ``window`` seconds apart (waits for it the first time)."""
        cur = self.current()
        slack = min(0.1, window * 0.05)
        prev = None
        for s in reversed(self.history[:-1]):
            if cur.taken - s.taken >= window - slack:
                prev = s
                break
        if prev is None:
            oldest = self.history[0]
            wait = window - (self.clock() - oldest.taken)
            if wait > 0:
                self.waited += wait
                # a deliberate wait for the window, not a server's: it does not eat the evaluation's deadline
                self.http.extend(wait)
                self.sleep(wait)
            cur = self._scrape()
            prev = oldest
        # drop what no window will need again
        keep_after = cur.taken - max(window, 1.0) * 2 - 60
        while len(self.history) > 2 and self.history[0].taken < keep_after and self.history[0] is not prev:
            self.history.pop(0)
        return prev, cur

    def query(self, expr, at=None):
        if at is not None:
            raise ProviderError("prometheus_text provider: 'at' (a past time) is not supported; it reads the "
                                "endpoint now")
        ast = self._parsed.get(expr)
        if ast is None:
            ast = parse(expr)
            self._parsed[expr] = ast
        result = Evaluator(self).eval(ast)
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
