# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``provider`` option of the metric modules: its argument spec, its validation and its secrets.

* ``PROVIDER_OPTIONS`` - the argument spec (documented in the ``metric_provider`` doc fragment); modules and
  the rollout target contract nest it.
* :func:`normalize_spec` - a provider spec as a dict (also one nested where no argument spec applies, such as
  ``checks[].provider``) checked and completed with the defaults; :class:`ProviderError` naming the field.
* :func:`provider_secrets`, :func:`params_secrets`, :func:`protect_module` - every secret a spec carries
  (token, password, URL userinfo and the ``Authorization`` header values made of them), to mark ``no_log``
  and to scrub (``redact.scrub``) from every message.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import math

from urllib.parse import urlsplit

from ansible_collections.stagegate.rollout.plugins.module_utils.metric_base import ProviderError
from ansible_collections.stagegate.rollout.plugins.module_utils.redact import (
    REDACTED, basic_forms, longest_first, redact_url, scrub, url_secrets)

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
MAX_RETRIES = 10
MAX_DEADLINE = 86400.0


def provider_secrets(spec):
    """Every secret value of a provider spec (to hide from any output): token and password, the
    ``Authorization`` header values made of them (``Bearer <token>``, base64 of ``user:pass``) and the
    userinfo of ``url`` and ``targets[].url`` (see ``redact.url_secrets``). Longest first."""
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
        found.update(basic_forms(spec["username"], spec.get("password") or ""))
    found.update(url_secrets(spec.get("url")))
    for target in spec.get("targets") or []:
        if isinstance(target, dict):
            found.update(url_secrets(target.get("url")))
    return longest_first(found)


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
    return longest_first(found)


def protect_module(module, params=None):
    """Register the provider secrets of ``module.params`` as ``no_log`` values (so the invocation shown at
    ``-vvv`` has ``********`` for them) and return them, for ``redact.scrub``."""
    secrets = params_secrets(module.params if params is None else params)
    module.no_log_values.update(secrets)
    return secrets


def check_url(url, field):
    """``url`` when it is an http:// or https:// URL; ProviderError naming ``field`` (the URL shown without
    its userinfo) otherwise."""
    if not isinstance(url, str) or not url:
        raise ProviderError("%s is required (an http:// or https:// URL)" % field)
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ProviderError("%s: %r is not a URL: %s" % (field, redact_url(url), exc))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ProviderError("%s: %r is not an http:// or https:// URL" % (field, redact_url(url)))
    return url


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
        check_url(clean["url"], "%s.url" % field)
    return clean


def _redact_spec(spec):
    if isinstance(spec, dict):
        return scrub(dict((k, REDACTED if k in SECRET_KEYS and v else v) for k, v in spec.items()),
                     provider_secrets(spec))
    return scrub(spec, url_secrets(spec))


def spec_key(spec):
    """A hashable identity of a normalized spec (providers with the same key can be shared)."""
    return json.dumps(spec, sort_keys=True, default=str)


def query_dialect(spec):
    """Template dialect of a provider spec: ``jmespath`` for http_json, else ``promql``."""
    kind = (spec or {}).get("type") or "prometheus"
    return "jmespath" if kind == "http_json" else "promql"
