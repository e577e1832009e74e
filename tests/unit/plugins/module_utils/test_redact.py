# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""redact: URL userinfo and known secrets scrubbed from text, dicts and lists."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64

from ansible_collections.stagegate.rollout.plugins.module_utils.redact import (
    REDACTED, basic_forms, longest_first, redact_url, scrub, url_secrets)


def test_redact_url_drops_the_userinfo_keeps_the_rest():
    assert redact_url("http://ops:pw@host:9090/api?q=1") == "http://host:9090/api?q=1"
    assert redact_url("https://host/x") == "https://host/x"
    assert redact_url("http://[bad") == "<invalid url>"


def test_url_secrets_cover_the_password_decoded_and_the_basic_header():
    found = url_secrets("see http://ops:p%40ss@host/ and nats://tok@h:4222")
    assert "ops:p%40ss" in found and "p%40ss" in found and "p@ss" in found and "tok" in found
    assert base64.b64encode(b"ops:p@ss").decode() in found
    assert url_secrets(None) == [] and url_secrets("http://host/") == []


def test_basic_forms_with_and_without_padding():
    full = base64.b64encode(b"u:p").decode()
    assert basic_forms("u", "p") == [full, full.rstrip("=")]


def test_scrub_walks_dicts_and_lists_and_replaces_longest_first():
    value = {"msg": "GET http://u:secret-long@h failed: secret-long", "list": ["a secret", b"bytes secret"],
             "n": 3, "none": None}
    out = scrub(value, ["secret", "secret-long"])
    assert out["msg"] == "GET http://%s@h failed: %s" % (REDACTED, REDACTED)
    assert out["list"] == ["a %s" % REDACTED, "bytes %s" % REDACTED]
    assert out["n"] == 3 and out["none"] is None
    assert "secret" not in repr(out)


def test_longest_first_drops_empties_and_duplicates():
    assert longest_first(["ab", "", None, "abc", "ab"]) == ["abc", "ab"]
