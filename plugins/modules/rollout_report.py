#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: rollout_report
short_description: Write the report of one release (self-contained HTML with plots, and its JSON) from the ledger
version_added: "0.1.0"
description:
  - Reads the ledger of M(stagegate.rollout.rollout_ledger), verifies its whole chain, keeps the entries of
    O(release) and writes two files into O(dest), C(report.html) and C(report.json).
  - C(report.html) is one self-contained file (inline CSS, plots drawn as inline SVG, no JavaScript, nothing
    fetched from the network); it opens in any browser, also offline or as a CI artifact.
  - "The report has these sections - summary cards (release, phases passed, outcome, ledger verified,
    rollbacks); per phase a timeline of its ledger entries; stable vs canary error rate and p99 latency over
    time with the canary weight steps; the canary judge's e-values against its boundaries per step and the
    fast abort (verdict to weight 0 in ms); each gate's observed value against its threshold; rollbacks with
    their timing, what was left to do and the events replayed; JetStream retention per phase; chaos drills and
    sentinels (ledger events C(chaos) and C(sentinel)); the result of the ledger verification."
  - The metric series are read with range queries through O(provider) over the time from the first to the last
    ledger entry of the release. A provider that cannot be reached, or queries that return nothing, never fail
    the task; the report then says so (RV(metrics_notes)) and shows the weight steps alone.
  - Every field of a ledger entry is optional, so a release that only ran staging gives a report too.
  - Provider tokens, passwords and the userinfo of every URL are removed from the files and the result; the
    ledger itself already redacts secret-looking evidence keys.
  - Each file is written atomically and only when its content changes; the report holds no time of its own, so
    a second run on the same ledger (and the same metrics) reports no change.
author:
  - stagegate.rollout contributors (@stagegate)
extends_documentation_fragment:
  - stagegate.rollout.metric_provider
options:
  ledger_path:
    description: The ledger file (JSON Lines) written by M(stagegate.rollout.rollout_ledger).
    type: path
    required: true
    aliases: [path]
  release:
    description: The release (the version, C(rollout_version)) the report is about.
    type: str
    required: true
  dest:
    description: Directory the report is written to (created when missing), as C(report.html) and C(report.json).
    type: path
    required: true
  key:
    description:
      - Key of a keyed ledger, to check every entry's HMAC too. Falls back to the environment variable
        E(STAGEGATE_LEDGER_KEY). Never written nor returned.
    type: str
  queries:
    description:
      - "The range queries of the plots, per slot (V(stable), V(canary)) and series (V(error_rate) as a ratio 0..1,
        V(p99_latency_ms)), for example the C(queries.gates) that M(stagegate.rollout.rollout_target) derives from
        the target. C($window) in a query is replaced with O(window)."
      - Without it (or without O(provider)) the report has no metric series.
    type: dict
  window:
    description: The range of C(rate()) and C(increase()) in the queries (the C($window) placeholder).
    type: str
    default: 1m
  step:
    description: Seconds between two points of the series; by default the time span divided into about 500 points.
    type: float
  title:
    description: Title of the report (default C(Rollout report) and the release).
    type: str
notes:
  - Supports check mode (the report is built, the metrics read, nothing written; C(changed) says whether the
    files would change).
seealso:
  - module: stagegate.rollout.rollout_ledger
  - module: stagegate.rollout.rollout_target
  - module: stagegate.rollout.metric_query
attributes:
  check_mode:
    description: Builds the report and writes nothing.
    support: full
  diff_mode:
    description: No diff of the HTML is shown.
    support: none
"""

EXAMPLES = r"""
- name: Report of v2 with the plots of the target's default queries
  stagegate.rollout.rollout_report:
    ledger_path: /var/lib/stagegate/ledger.jsonl
    release: v2
    dest: /var/lib/stagegate/reports/v2
    provider:
      type: prometheus
      url: http://prometheus.example:9090
    queries: "{{ target_plan.queries.gates }}"
    window: 1m
  register: report

- name: Where the report is
  ansible.builtin.debug:
    msg: "{{ report.html_path }}"

- name: Report from the ledger alone (no metrics)
  stagegate.rollout.rollout_report:
    ledger_path: /var/lib/stagegate/ledger.jsonl
    release: v2
    dest: /tmp/report-v2
    title: Checkout service v2
"""

RETURN = r"""
html_path:
  description: The HTML report (written, or that would be written in check mode).
  returned: always
  type: str
  sample: /var/lib/stagegate/reports/v2/report.html
json_path:
  description: The report model as JSON (the same data as the HTML).
  returned: always
  type: str
summary:
  description:
    - The summary of the report - C(release), C(outcome), C(phases_started), C(phases_passed),
      C(ledger_verified), C(ledger_problem), C(rollbacks), C(gates), C(gate_checks_failed), C(judge_steps),
      C(drills), C(entries).
  returned: always
  type: dict
  sample: {"release": "v2", "outcome": "promoted (canary)", "phases_passed": ["staging", "canary"],
           "ledger_verified": true, "rollbacks": 0}
ledger_valid:
  description: Whether every link of the ledger's chain verified.
  returned: always
  type: bool
metrics_available:
  description: Whether at least one metric series has data (false without a provider, or when it could not be read).
  returned: always
  type: bool
metrics_notes:
  description: What could not be read (an unreachable provider, a query without data), one text each, without secrets.
  returned: always
  type: list
  elements: str
span:
  description: First and last ledger entry of the release (C(start_ts), C(end_ts) in UTC, C(start), C(end) in Unix seconds).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule, env_fallback
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.stagegate.rollout.plugins.module_utils.ledger import KEY_ENV, LedgerError
from ansible_collections.stagegate.rollout.plugins.module_utils.metric_spec import PROVIDER_OPTIONS, protect_module
from ansible_collections.stagegate.rollout.plugins.module_utils.redact import scrub
from ansible_collections.stagegate.rollout.plugins.module_utils.rollout_report import (
    ReportError, make_report, write_report)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            ledger_path=dict(type="path", required=True, aliases=["path"]),
            release=dict(type="str", required=True),
            dest=dict(type="path", required=True),
            key=dict(type="str", no_log=True, fallback=(env_fallback, [KEY_ENV])),
            provider=dict(type="dict", options=PROVIDER_OPTIONS),
            queries=dict(type="dict"),
            window=dict(type="str", default="1m"),
            step=dict(type="float"),
            title=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    secrets = protect_module(module)
    try:
        model, html_text, json_text = make_report(p["ledger_path"], p["release"], key=p["key"], provider=p["provider"],
                                                  queries=p["queries"], window=p["window"], step=p["step"],
                                                  title=p["title"], secrets=secrets)
        changed, paths = write_report(p["dest"], {"report.html": html_text, "report.json": json_text},
                                      check_mode=module.check_mode, module=module)
    except (ReportError, LedgerError, OSError, ValueError) as exc:
        module.fail_json(msg=scrub(to_native(exc), secrets))
    module.exit_json(changed=changed, html_path=paths["report.html"], json_path=paths["report.json"],
                     summary=model["summary"], ledger_valid=bool(model["ledger"].get("valid")),
                     metrics_available=model["metrics"]["available"], metrics_notes=model["metrics"]["notes"],
                     span=model["span"])


if __name__ == "__main__":
    main()
