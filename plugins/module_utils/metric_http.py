# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""HTTP for the metric providers: :class:`HttpClient`, GET/POST with a timeout, bounded retries with
exponential backoff on connection errors and HTTP 5xx, a per-round breaker and the evaluation's deadline.

* A 5xx that persists through the retries is :class:`UnreachableError`, never a result; once a round's
  endpoint is down every further request of the round fails at once (the breaker), until ``reset()``.
* Deadline: ``deadline`` (seconds, spec) or a caller's ``budget`` bounds one evaluation - from ``reset()``
  until the next one. Every attempt waits at most ``min(timeout, time left)``, no retry starts once the
  deadline has passed, and a request cut by it (or not sent because of it) raises :class:`DeadlineError`
  naming the budget.
* 2xx and 4xx are returned as ``(status, body)``: the provider reads the source's own error text.
* Every message is scrubbed of the spec's secrets (``redact.scrub``) before any truncation.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import socket
import ssl
import time

from http.client import HTTPException
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode

from ansible.module_utils.urls import Request, SSLValidationError, make_context
from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.stagegate.rollout.plugins.module_utils.metric_base import (
    DeadlineError, ProviderError, UnreachableError, seconds_text, short)
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_spec import provider_secrets
from ansible_collections.stagegate.rollout.plugins.module_utils.redact import redact_url, scrub
from ansible_collections.stagegate.rollout.plugins.module_utils.retries import backoff_delay

MAX_PAUSE = 30.0        # seconds, the longest pause between two attempts
GET_LIMIT = 4000        # longer queries are POSTed (form-encoded), as the Prometheus API accepts both


def _open(url, method="GET", context=None, **kw):
    """``ansible.module_utils.urls.open_url`` with a TLS context made once per provider.

    open_url builds a new SSL context (loading the CA store, ~60 ms) for every request, even
    over plain HTTP, and a 10-check gate makes 14 requests. ``Request().open`` is what open_url
    calls; here it gets the provider's context.
    """
    return Request().open(method, url, context=context, **kw)


def _plural(n, one, many):
    return one if n == 1 else many


class HttpClient(object):
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

    def scrubbed(self, text):
        """``text`` (an exception, a payload) scrubbed of this provider's secrets - before any truncation, so a
        secret is never cut in half and shown in part."""
        if not isinstance(text, (bytes, str)):
            text = to_native(text)
        return scrub(text, self.secrets)

    def _deadline_error(self, shown, made, attempts, started, last):
        where = "%s %s" % (self.name, redact_url(shown))
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
                last = "HTTP %d %s" % (exc.code, short(self.scrubbed(payload or exc.reason or b"")))
            except SSLValidationError as exc:
                raise ProviderError("%s %s: TLS certificate verification failed: %s (set ca_path to the CA that "
                                    "signed it; validate_certs: false only for testing)"
                                    % (self.name, redact_url(shown), self.scrubbed(exc)))
            except URLError as exc:
                reason = getattr(exc, "reason", exc)
                if isinstance(reason, ssl.SSLError):
                    raise ProviderError("%s %s: TLS error: %s (check ca_path / validate_certs)"
                                        % (self.name, redact_url(shown), self.scrubbed(reason)))
                last = self.scrubbed(reason)
                if isinstance(reason, socket.timeout) or "timed out" in str(reason):
                    last = "timed out after %.1f s" % timeout
            except (socket.timeout, ConnectionError, UrlsConnectionError, HTTPException, OSError) as exc:
                last = self.scrubbed("%s: %s" % (type(exc).__name__, exc) if not str(exc) else exc)
                if isinstance(exc, socket.timeout) or "timed out" in str(exc):
                    last = "timed out after %.1f s" % timeout
            if attempt + 1 < attempts:
                pause = backoff_delay(attempt, self.backoff, cap=MAX_PAUSE)
                left = self.left()
                if left is not None and left <= pause:
                    # the retry could not start before the deadline: do not wait for nothing
                    raise self._deadline_error(shown, made, attempts, started, last)
                self.sleep(pause)
        if self.expired():
            raise self._deadline_error(shown, made, attempts, started, last)
        self.down = ("%s %s unreachable after %d attempt(s) in %.1f s (timeout %.1f s each): %s"
                     % (self.name, redact_url(shown), attempts, self.clock() - started, self.timeout, last))
        raise UnreachableError(self.down)
