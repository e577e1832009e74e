#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: sentinel_probe
short_description: Run sentinel probes on a host and count the results each returned
version_added: "0.1.0"
description:
  - Each sentinel is an HTTP GET (O(sentinels[].url)) or a command (O(sentinels[].command)) run on the host the
    module runs on; a sentinel returns results when its answer holds at least O(sentinels[].min_results) of them.
  - Counting (module_utils/sentinel.py) - O(sentinels[].results) names where the results are in the JSON answer
    (dotted keys; a list or mapping counts its items, a number is the count). Without it a JSON list counts its
    items, any other JSON value that is not empty counts 1 and an answer that is not JSON counts its non-empty lines.
  - An HTTP answer other than 2xx, a connection error, a timeout or a command's non-zero exit code is an empty
    sentinel with its error.
  - Read-only; runs in check mode. URLs are shown with any password masked.
  - The role M(stagegate.rollout.sentinels) runs it on every app host, tallies the results, records them and acts on
    an empty sentinel (fail the phase, or the kill switch).
author:
  - stagegate.rollout contributors (@stagegate)
options:
  sentinels:
    description: The sentinels to run.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The sentinel's name.
        type: str
        required: true
      path:
        description: A path to GET from O(base_url). One of O(sentinels[].path), O(sentinels[].url) and
          O(sentinels[].command).
        type: str
      url:
        description: An http or https URL to GET.
        type: str
      command:
        description: An argv to run (no shell); its exit code must be 0 and its output is the answer.
        type: list
        elements: str
      results:
        description: Dotted keys into the JSON answer where the results are (for example C(data.items)).
        type: str
      min_results:
        description: Fewer results than this is an empty sentinel.
        type: int
        default: 1
  base_url:
    description: Where a sentinel's O(sentinels[].path) is fetched from (for example C(http://127.0.0.1:8101), a slot
      of this host). Required when a sentinel has a path.
    type: str
  timeout:
    description: Seconds each probe may take.
    type: int
    default: 5
"""

EXAMPLES = r"""
- name: Sentinels on the stable slot of this host
  stagegate.rollout.sentinel_probe:
    base_url: http://127.0.0.1:8080
    sentinels:
      - name: repositories
        path: /graph/repos
        results: repos
      - name: queue has consumers
        command: [nats, consumer, ls, EVENTS, --names]
  register: probed
"""

RETURN = r"""
sentinels:
  description: Each sentinel as run - C(name), C(target) (the URL with any password masked, or the command),
    C(results) (how many; null when it gave no answer), C(min_results), C(returned) (at least min_results) and C(error).
  type: list
  elements: dict
  returned: always
returned:
  description: How many sentinels returned results.
  type: int
  returned: always
total:
  description: How many sentinels ran.
  type: int
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import fetch_url

from ansible_collections.stagegate.rollout.plugins.module_utils.redact import redact_url, url_secrets
from ansible_collections.stagegate.rollout.plugins.module_utils.sentinel import count


def probe(module, sentinel, timeout):
    """One sentinel -> {name, target, results, min_results, returned, error}."""
    out = {"name": sentinel["name"], "results": None, "min_results": sentinel["min_results"], "error": None}
    if len([k for k in ("path", "url", "command") if sentinel.get(k)]) != 1:
        module.fail_json(msg="sentinels: %s needs exactly one of path, url and command" % sentinel["name"])
    if sentinel.get("path"):
        if not module.params["base_url"]:
            module.fail_json(msg="sentinels: %s has a path, base_url is required" % sentinel["name"])
        sentinel = dict(sentinel, url=module.params["base_url"].rstrip("/") + sentinel["path"])
    if sentinel.get("url"):
        out["target"] = redact_url(sentinel["url"])
        resp, info = fetch_url(module, sentinel["url"], method="GET", timeout=timeout)
        status = info.get("status", -1)
        if resp is None or not 200 <= status < 300:
            out["error"] = "HTTP %s: %s" % (status, str(info.get("msg", ""))[:200])
        else:
            out["results"] = count(resp.read(), sentinel.get("results"))
    else:
        out["target"] = " ".join(sentinel["command"])
        rc, stdout, stderr = module.run_command(sentinel["command"])
        if rc != 0:
            out["error"] = "exit code %d: %s" % (rc, (stderr or stdout).strip()[:200])
        else:
            out["results"] = count(stdout, sentinel.get("results"))
    out["returned"] = out["error"] is None and out["results"] >= sentinel["min_results"]
    return out


def run(module):
    for url in [module.params["base_url"]] + [s.get("url") for s in module.params["sentinels"]]:
        module.no_log_values.update(url_secrets(url or ""))  # a password in a URL never lands in the output
    probed = [probe(module, s, module.params["timeout"]) for s in module.params["sentinels"]]
    module.exit_json(changed=False, sentinels=probed, returned=sum(1 for p in probed if p["returned"]),
                     total=len(probed))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            sentinels=dict(type="list", elements="dict", required=True, options=dict(
                name=dict(type="str", required=True),
                path=dict(type="str"),
                url=dict(type="str"),
                command=dict(type="list", elements="str"),
                results=dict(type="str"),
                min_results=dict(type="int", default=1),
            )),
            base_url=dict(type="str"),
            timeout=dict(type="int", default=5),
        ),
        supports_check_mode=True,
    )
    run(module)


if __name__ == "__main__":
    main()
