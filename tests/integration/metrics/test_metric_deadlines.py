# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The evaluation deadline and the secrets of provider URLs, through ansible-playbook against the real Prometheus
of the conftest (its own stack: this module SIGSTOPs it)."""
import base64
import re
import threading
import time
import urllib.request

import pytest

from gatekit import wait_for_data

pytestmark = pytest.mark.slow

ERROR_RATE = ('(sum(rate(app_requests_total{service="shop",version="v2",code=~"5.."}[3s])) or vector(0)) '
              '/ sum(rate(app_requests_total{service="shop",version="v2"}[3s]))')
REQUESTS = 'sum(increase(app_requests_total{service="shop",version="v2"}[3s]))'
API_QUERIES = re.compile(r'^prometheus_http_requests_total\{[^}]*handler="/api/v1/query"[^}]*\} (\S+)$', re.M)


def api_queries(prom_url):
    """How many /api/v1/query requests Prometheus has answered (read from its own /metrics, which is not one)."""
    with urllib.request.urlopen(prom_url + "/metrics", timeout=2) as r:
        text = r.read().decode()
    return sum(float(v) for v in API_QUERIES.findall(text))


def test_sigstopped_prometheus_fails_the_gate_within_its_timeout(stack, playbook):
    """A gate evaluating every 0.2 s; Prometheus is SIGSTOPped while the gate runs: the task fails closed within
    its timeout (5 s) + 2 s of the stop, not after the provider's 3 tries x 10 s."""
    prom = stack["prometheus"]
    budget = 5
    task = {"name": "gate", "ignore_errors": True, "stagegate.rollout.metric_gate": {
        "provider": {"type": "prometheus", "url": prom.url},      # defaults: timeout 10 s, 2 retries
        "checks": [{"name": "error_rate", "query": ERROR_RATE, "lt": 0.05},
                   {"name": "requests", "query": REQUESTS, "gt": 0},
                   {"name": "stable_requests", "query": REQUESTS.replace("v2", "v1"), "gt": 0}],
        "interval": 0.2, "duration": 120, "timeout": budget}}
    stopped = {}
    before = api_queries(prom.url)

    def stop_once_the_gate_runs():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "at" not in stopped:
            if api_queries(prom.url) >= before + 6:             # two rounds of three checks answered
                prom.pause()                                    # SIGSTOP: accepts connections, never answers
                stopped["at"] = time.monotonic()
                stopped["wall"] = time.time()
                return
            time.sleep(0.1)

    watcher = threading.Thread(target=stop_once_the_gate_runs, daemon=True)
    watcher.start()
    try:
        run = playbook([task], timeout=150)
        ended = time.monotonic()
    finally:
        watcher.join(5)
        prom.resume()                                           # SIGCONT
    assert "at" in stopped, run
    res = run.task("gate")
    assert res["failed"] and res["verdict"] == "fail", run
    waited = run.ended("gate") - stopped["wall"]                # SIGSTOP -> the task's result
    assert waited < budget + 2, (waited, res["msg"])
    assert ended - stopped["at"] < budget + 5                   # and ansible-playbook is done soon after
    assert res["evaluations"] >= 2 and res["stopped_early"]
    assert set(res["history"][0]["verdicts"].values()) == {"pass"}     # it ran fine before the stop
    assert res["deadline_passed"] is True
    msg = res["msg"]
    assert "deadline (5 s) passed" in msg and "left undone: requests, stable_requests" in msg, msg
    assert "deadline (5 s) passed after 1 attempt(s)" in res["checks"][0]["reason"]
    # the last round took the budget, not 3 x 10 s
    assert res["elapsed"] - res["history"][-1]["elapsed"] < budget + 1
    # Prometheus answers again after SIGCONT
    wait_for_data(prom.url, 'sum(rate(app_requests_total{service="shop"}[3s])) > 0')


def test_url_userinfo_never_in_verbose_output(stack, playbook):
    """``http://user:pw@...`` provider URLs: the invocation at -vvv shows ********, messages never the password."""
    password = "pw-7c1e-url-secret"
    basic = base64.b64encode(("ops:%s" % password).encode()).decode()
    prom_url = stack["prometheus"].url.replace("http://", "http://ops:%s@" % password)
    closed = "http://ops:%s@127.0.0.1:9/" % password            # nothing listens on port 9: connection refused
    checks = [{"name": "error_rate", "query": ERROR_RATE, "lt": 0.05},
              {"name": "unreachable", "query": "up", "gt": 0, "provider": {"url": closed, "retries": 0}}]
    queries = {arm: {"requests": 'sum(app_requests_total{version="%s"})' % v}
               for arm, v in (("baseline", "v1"), ("canary", "v2"))}
    run = playbook([
        {"name": "gate", "ignore_errors": True, "stagegate.rollout.metric_gate": {
            "provider": {"url": prom_url}, "checks": checks}},
        {"name": "query", "stagegate.rollout.metric_query": {"provider": {"url": prom_url}, "query": "sum(up)"}},
        {"name": "text", "stagegate.rollout.metric_query": {"provider": {
            "type": "prometheus_text", "targets": [{"url": stack["app"].url.replace("http://", "http://ops:%s@"
                                                                                    % password)}]},
            "query": "sum(app_requests_total)"}},
        {"name": "judge", "stagegate.rollout.canary_judge": {"provider": {"url": prom_url}, "queries": queries}},
    ], verbose=True)
    out = run.output
    # the runs really happened: the gate judged, failed on the unreachable check only, the others succeeded
    assert "error_rate" in out and "unreachable after 1 attempt(s)" in out and "Connection refused" in out, run
    assert "origin of the analysis recorded" in out, run
    assert "http://********@127.0.0.1" in out, run             # -vvv invocation: module_args.provider.url
    assert password not in out and basic not in out, run
