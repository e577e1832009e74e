# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secret scrubbing: the one function every message and result with a secret in reach passes through.

* :func:`url_secrets` - the secrets a URL carries in its userinfo (``scheme://user:pass@host``): the userinfo,
  the password as written and percent-decoded, and the base64 ``user:pass`` a basic ``Authorization``
  header made from it would carry.
* :func:`scrub` - ``value`` (a string, or dicts and lists of them) with every given secret and the userinfo
  of any URL replaced by ``********``. Longest secrets first, so a secret that contains another is never
  left half shown.
* :func:`redact_url` - a URL without its ``user:password@`` (for messages).

``no_log`` hides a secret only where Ansible knows it; scrubbing also covers what a server echoes back and
secrets derived from the ones given (an ``Authorization`` header). Plain Python, no I/O.

``nats_connection`` scrubs its messages with :func:`scrub` and :func:`url_secrets`.
``rollout_notify.url_secrets`` is a different policy on purpose: a webhook URL carries its
token in the path, so the whole URL, its path and its query values are secrets there.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import re

from urllib.parse import unquote, urlsplit, urlunsplit

from ansible.module_utils.common.text.converters import to_bytes, to_text

REDACTED = "********"

# ``scheme://userinfo@`` anywhere in a text (the userinfo never holds / @ or spaces; a ``?`` or ``#`` written in a
# password unencoded is taken as part of it: scrubbing a little too much is safe, showing a password half is not)
URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")


def redact_url(url):
    """The URL without user:password@ (for messages); ``<invalid url>`` when it cannot be parsed."""
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


def basic_forms(username, password):
    """The base64 ``user:pass`` of a basic Authorization header (with and without padding)."""
    raw = base64.b64encode(to_bytes("%s:%s" % (username, password), errors="surrogate_or_strict"))
    text = to_text(raw)
    return [text, text.rstrip("=")]


def url_secrets(url):
    """The secrets carried in the userinfo of every URL in ``url`` (see the module docstring); [] for a
    value that is not a string."""
    if not isinstance(url, str):
        return []
    out = []
    for m in URL_USERINFO.finditer(url):
        userinfo = m.group("userinfo")
        out.append(userinfo)
        user, sep, password = userinfo.partition(":")
        if sep and password:
            out.extend([password, unquote(password)])
        out.extend(basic_forms(unquote(user), unquote(password)))
        out.extend(basic_forms(user, password))
    return out


def longest_first(secrets):
    """The distinct non-empty secrets, longest first (the order :func:`scrub` replaces them in)."""
    return sorted(set(s for s in secrets if s), key=lambda s: (-len(s), s))


def scrub(value, secrets=()):
    """``value`` without secrets: in every string (also inside dicts and lists) each of ``secrets`` and the
    userinfo of any URL become ``********``. Bytes are decoded; other values are returned as they are."""
    if isinstance(value, dict):
        return dict((k, scrub(v, secrets)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [scrub(v, secrets) for v in value]
    if isinstance(value, bytes):
        value = to_text(value, errors="replace")
    if not isinstance(value, str):
        return value
    text = URL_USERINFO.sub(lambda m: m.group("scheme") + REDACTED + "@", value)
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text
