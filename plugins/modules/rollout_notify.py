#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: rollout_notify
short_description: POST a rollout notification (INFO, WARN, HIGH, CRITICAL) as JSON to a webhook without leaking its URL
version_added: "0.1.0"
description:
  - Sends one JSON message to a webhook (Slack-compatible C(text) field, plus C(severity), C(message) (the O(msg)) and any
    O(data)), or the exact O(body) given.
  - The webhook URL usually embeds a token, so O(url) is C(no_log) and is never echoed in results, warnings or
    errors; results show RV(url) with the path and query masked. O(headers) are C(no_log) too.
  - Retries connection failures, HTTP 429 and 5xx answers O(retries) times with an exponential back-off.
author:
  - stagegate.rollout contributors (@stagegate)
extends_documentation_fragment:
  - stagegate.rollout.action_group.evidence
options:
  url:
    description: Webhook URL (http or https). Treated as a secret.
    type: str
    required: true
  msg:
    description: The message text. Required unless O(body) is given.
    type: str
  severity:
    description: Severity of the event.
    type: str
    choices: [INFO, WARN, HIGH, CRITICAL]
    default: INFO
  min_severity:
    description: Send only when O(severity) is at least this (lower ones are reported as RV(sent=false), no change).
    type: str
    choices: [INFO, WARN, HIGH, CRITICAL]
    default: INFO
  data:
    description: Extra fields merged into the generated message (for example release, phase, verdict, evidence).
    type: dict
    default: {}
  body:
    description: Send exactly this JSON body instead of the generated one.
    type: dict
  headers:
    description: Extra HTTP headers (for example an C(Authorization) token). Treated as secrets.
    type: dict
    default: {}
  timeout:
    description: Seconds to wait for each attempt.
    type: float
    default: 10
  retries:
    description: Extra attempts after a connection failure, HTTP 429 or 5xx (0 sends once).
    type: int
    default: 3
  retry_delay:
    description: Seconds before the first retry; doubled after each retry.
    type: float
    default: 1
  status_code:
    description: HTTP status codes that mean the message was accepted.
    type: list
    elements: int
    default: [200, 201, 202, 204]
  validate_certs:
    description: Verify the TLS certificate of an https URL.
    type: bool
    default: true
  use_proxy:
    description: Use the proxy from the environment, if any.
    type: bool
    default: true
notes:
  - Supports check mode (the message is built and returned, nothing is sent).
  - A failed delivery fails the task; use C(ignore_errors) or C(failed_when) when a notification must not stop a rollback.
attributes:
  check_mode:
    description: Builds the message without sending it.
    support: full
  diff_mode:
    description: Nothing to diff.
    support: none
"""

EXAMPLES = r"""
- name: Tell the channel the canary rolled back
  stagegate.rollout.rollout_notify:
    url: "{{ vault_rollout_webhook_url }}"
    severity: HIGH
    msg: "canary {{ release_version }} rolled back: {{ failed_gate }}"
    data:
      release: "{{ release_version }}"
      phase: canary
      evidence: "{{ gate_result.checks }}"

- name: Page on a kill switch, with a bearer token
  stagegate.rollout.rollout_notify:
    url: https://events.example.com/v2/enqueue
    headers:
      Authorization: "Bearer {{ vault_pager_token }}"
    severity: CRITICAL
    msg: "kill switch: {{ reason }}"
    retries: 5
"""

RETURN = r"""
sent:
  description: Whether the message was delivered (false in check mode and below O(min_severity)).
  returned: always
  type: bool
status:
  description: HTTP status of the last attempt (-1 when no answer), or null when nothing was sent.
  returned: always
  type: int
attempts:
  description: Number of attempts made.
  returned: always
  type: int
url:
  description: The webhook URL with its credentials, path and query masked.
  returned: always
  type: str
  sample: https://hooks.example.com/***
body:
  description: The JSON body sent (or that would be sent).
  returned: always
  type: dict
response:
  description: The first 2,000 characters of the last answer.
  returned: always
  type: str
"""

import json
import time
from urllib.parse import parse_qsl, urlsplit

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native, to_text
from ansible.module_utils.urls import fetch_url

from ansible_collections.stagegate.rollout.plugins.module_utils.retries import backoff_delay

SEVERITIES = ["INFO", "WARN", "HIGH", "CRITICAL"]


def mask_url(url):
    """scheme://host[:port]/*** (credentials, path and query never shown)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = ":%d" % parts.port if parts.port else ""
    except ValueError:
        return "***"
    return "%s://%s%s/***" % (parts.scheme or "?", host, port)


def url_secrets(url):
    """Pieces of the URL that may carry a token, so they are masked wherever they would appear."""
    out = [url]
    try:
        parts = urlsplit(url)
    except ValueError:
        return out
    if parts.password:
        out.append(parts.password)
    if parts.username:
        out.append(parts.username)
    tail = parts.path + ("?" + parts.query if parts.query else "")
    if len(tail) > 1:
        out.append(tail)
    for segment in parts.path.split("/"):
        if len(segment) >= 12:
            out.append(segment)
    for dummy, value in parse_qsl(parts.query):
        if len(value) >= 6:
            out.append(value)
    return out


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", required=True, no_log=True),
            msg=dict(type="str"),
            severity=dict(type="str", default="INFO", choices=SEVERITIES),
            min_severity=dict(type="str", default="INFO", choices=SEVERITIES),
            data=dict(type="dict", default={}),
            body=dict(type="dict"),
            headers=dict(type="dict", default={}, no_log=True),
            timeout=dict(type="float", default=10),
            retries=dict(type="int", default=3),
            retry_delay=dict(type="float", default=1),
            status_code=dict(type="list", elements="int", default=[200, 201, 202, 204]),
            validate_certs=dict(type="bool", default=True),
            use_proxy=dict(type="bool", default=True),
        ),
        required_one_of=[("msg", "body")],
        mutually_exclusive=[("msg", "body")],
        supports_check_mode=True,
    )
    p = module.params
    for secret in url_secrets(p["url"]):
        module.no_log_values.add(secret)
    masked = mask_url(p["url"])
    result = dict(changed=False, sent=False, status=None, attempts=0, url=masked, body=None, response="")

    scheme = urlsplit(p["url"]).scheme.lower() if "://" in p["url"] else ""
    if scheme not in ("http", "https"):
        module.fail_json(msg="url must be an http:// or https:// URL (got scheme %r; the URL itself is not shown)"
                             % scheme, **result)
    if p["timeout"] <= 0:
        module.fail_json(msg="timeout must be more than 0 seconds, got %s" % p["timeout"], **result)
    if p["retries"] < 0:
        module.fail_json(msg="retries must be 0 or more, got %d" % p["retries"], **result)
    if p["retry_delay"] < 0:
        module.fail_json(msg="retry_delay must be 0 or more, got %s" % p["retry_delay"], **result)
    for name, value in p["headers"].items():
        if not isinstance(value, str) or "\n" in value or "\r" in value:
            module.fail_json(msg="headers.%s must be a single-line string" % name, **result)

    if p["body"] is not None:
        body = p["body"]
    else:
        body = dict(p["data"])
        body.update(severity=p["severity"], message=p["msg"],
                    text="[%s] %s" % (p["severity"], p["msg"]))
    try:
        payload = json.dumps(body, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        module.fail_json(msg="body is not JSON data: %s" % to_native(exc), **result)
    result["body"] = body

    if SEVERITIES.index(p["severity"]) < SEVERITIES.index(p["min_severity"]):
        result["skipped_reason"] = "severity %s is below min_severity %s" % (p["severity"], p["min_severity"])
        module.exit_json(**result)
    if module.check_mode:
        result["changed"] = True
        module.exit_json(**result)

    headers = {"Content-Type": "application/json"}
    headers.update(dict((str(k), v) for k, v in p["headers"].items()))
    status, reason, text = -1, "", ""
    for attempt in range(1, p["retries"] + 2):
        result["attempts"] = attempt
        resp, info = fetch_url(module, p["url"], data=payload, headers=headers, method="POST",
                               timeout=p["timeout"], use_proxy=p["use_proxy"])
        status = info.get("status", -1)
        reason = to_text(info.get("msg", ""), errors="surrogate_or_replace")
        raw = b""
        if resp is not None:
            try:
                raw = resp.read()
            except Exception:  # pylint: disable=broad-except
                raw = b""
        elif info.get("body"):
            raw = info["body"]
        text = to_text(raw, errors="surrogate_or_replace")[:2000]
        if status in p["status_code"]:
            break
        retryable = status == -1 or status == 429 or status >= 500
        if not retryable or attempt > p["retries"]:
            break
        time.sleep(backoff_delay(attempt - 1, p["retry_delay"]))
    result.update(status=status, response=text)
    if status not in p["status_code"]:
        module.fail_json(msg="webhook %s did not accept the message after %d attempt(s): status %s %s"
                             % (masked, result["attempts"], status, reason), **result)
    result.update(changed=True, sent=True)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
