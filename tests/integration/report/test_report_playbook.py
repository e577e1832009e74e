# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""stagegate.rollout.report end to end: a real ledger written by rollout_ledger while a real exporter is scraped
by a real Prometheus, the report playbook run by FQCN with an inventory's rollout_target, the HTML rendered in
headless Chromium. Also: an unreachable Prometheus (the report still renders, with a note), check mode and
idempotence."""
import os
import sys

import pytest
import yaml

from demo.stack.ports import free_port, port_open
from demo.stack.prometheus import Prometheus
from tests.integration.metrics.gatekit import HEALTHY, Exporter, wait_for_data
from tests.integration.playbook_run import ansible_env, run_playbook
from tests.integration.report.reportkit import CHROMIUM, check_rendered_report

HERE = os.path.dirname(os.path.abspath(__file__))
TOKEN = "tok-REPORT-secret-7319"
RELEASE = "v2"

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium is installed by make setup")]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The exporter (v1 = the stable slot, v2 = the canary with 3 % errors and a slower tail), scraped every
    second by a real Prometheus."""
    work = str(tmp_path_factory.mktemp("report-stack"))
    app = Exporter(work, "app", {"v1": HEALTHY, "v2": dict(HEALTHY, error_rate=0.03, latency_ms=140, tail=0.05)}).start()
    prom = Prometheus(os.path.join(work, "prometheus"), {"app": [(app.target, {"service": "shop"})]})
    prom.start()
    try:
        wait_for_data(prom.url, 'sum(rate(app_requests_total{service="shop",version="v2"}[3s])) > 0')
        yield {"prometheus": prom, "app": app, "work": work}
    finally:
        prom.stop()
        app.stop()
        for port in (prom.port, app.port):
            assert not port_open(port), "port %d still open" % port


def run(tmp_path, playbook, inventory="localhost,", **kwargs):
    """ansible-playbook through tests/integration/playbook_run.py -> PlaybookRun."""
    env = ansible_env(tmp_path, ANSIBLE_DEPRECATION_WARNINGS="0")
    return run_playbook(playbook, tmp_path, inventory=inventory, env=env, **kwargs)


def inventory(tmp_path, prom_url):
    """A user's inventory: localhost, one app host, the target with its Prometheus (with a token)."""
    target = {
        "kind": "hosts", "name": "shop",
        "hosts": {"group": "app", "command": "/opt/shop/{version}/bin/shop --port {port}",
                  "ports": {"stable": 18101, "canary": 18102}},
        "load_balancer": {"host": "localhost", "socket": str(tmp_path / "haproxy.sock"), "backend": "app"},
        "metrics": {"provider": {"type": "prometheus", "url": prom_url, "token": TOKEN, "timeout": 3, "retries": 0},
                    "requests": "app_requests_total", "latency_bucket": "app_request_duration_seconds_bucket",
                    "selector": 'service="shop"', "stable_selector": 'version="v1"', "canary_selector": 'version="v2"'},
    }
    inv = {"all": {"hosts": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}},
                   "children": {"app": {"hosts": {"web1": {"ansible_host": "127.0.0.1"}}}},
                   "vars": {"rollout_target": target, "rollout_state_dir": str(tmp_path / "state"),
                            "rollout_report_window": "5s", "rollout_report_step": 1}}}
    path = tmp_path / ("inventory-%d.yml" % free_port())
    path.write_text(yaml.safe_dump(inv))
    return str(path)


def write_ledger(tmp_path, pause=3):
    (tmp_path / "state").mkdir(exist_ok=True)
    ledger = str(tmp_path / "state" / "ledger.jsonl")
    story = run(tmp_path, os.path.join(HERE, "playbooks", "ledger_story.yml"), connection="local",
                extra_vars={"ledger": ledger, "release": RELEASE, "pause_seconds": pause})
    assert story.rc == 0, story
    return ledger


def report(tmp_path, inv, check=False, **extra_vars):
    return run(tmp_path, "stagegate.rollout.report", inv, check=check,
               extra_vars=dict({"rollout_version": RELEASE}, **extra_vars))


def test_report_with_prometheus_renders_every_section_and_plot(stack, tmp_path):
    write_ledger(tmp_path)
    inv = inventory(tmp_path, stack["prometheus"].url)

    dry = report(tmp_path, inv, check=True)
    assert dry.rc == 0, dry
    checked = dry.task("Report | write the report")
    assert checked["changed"] is True and not os.path.exists(checked["html_path"])

    done = report(tmp_path, inv)
    assert done.rc == 0, done
    res = done.task("Report | write the report")
    assert res["changed"] is True
    assert res["html_path"] == str(tmp_path / "state" / "reports" / RELEASE / "report.html")
    assert res["metrics_available"] is True and res["ledger_valid"] is True, res
    assert res["summary"]["outcome"] == "rolled back (canary)" and res["summary"]["phases_passed"] == ["staging"]
    assert res["summary"]["rollbacks"] == 1 and res["summary"]["judge_steps"] == 2
    assert res["html_path"] in done.task("Report | where it is")["msg"]
    assert TOKEN not in done.output

    found = check_rendered_report(
        res["html_path"], tmp_path, plots=("error-rate", "p99-latency-ms", "judge", "timeline-staging",
                                           "timeline-canary", "gate-5-0", "gate-5-1"),
        series=("stable", "canary"), secrets=[TOKEN],
        texts=("rolled back (canary)", "kill the canary mid-step", "1.8 ms", "VERIFIED", "72h", "web1_stable"))
    model = found["model"]
    # the canary's series carry its 3 % errors and the stable's none; the p99 of the slower canary is higher
    canary_err = [v for dummy, v in model["metrics"]["series"]["canary"]["error_rate"]]
    stable_err = [v for dummy, v in model["metrics"]["series"]["stable"]["error_rate"]]
    assert max(stable_err) == 0.0 and 0.015 < sorted(canary_err)[len(canary_err) // 2] < 0.05
    p99 = dict((slot, sorted(v for dummy, v in model["metrics"]["series"][slot]["p99_latency_ms"])) for slot in ("stable", "canary"))
    assert p99["canary"][len(p99["canary"]) // 2] > p99["stable"][len(p99["stable"]) // 2]
    assert len(model["metrics"]["series"]["canary"]["error_rate"]) >= 6
    assert [w for dummy, w in model["weights"]] == [0, 10, 25, 0, 0]

    first = open(found["model"] and res["json_path"]).read()
    second = report(tmp_path, inv)
    again = open(res["json_path"]).read()
    diff = [(a, b) for a, b in zip(first.splitlines(), again.splitlines()) if a != b][:5]
    assert second.rc == 0 and second.task("Report | write the report")["changed"] is False, "not idempotent: %s" % diff


def test_report_without_a_reachable_prometheus_still_renders(tmp_path):
    write_ledger(tmp_path, pause=1)
    inv = inventory(tmp_path, "http://reporter:pw-NOT-SHOWN-55@127.0.0.1:%d" % free_port())
    done = report(tmp_path, inv, rollout_report_dir=str(tmp_path / "out"))
    assert done.rc == 0, done
    res = done.task("Report | write the report")
    assert res["html_path"] == str(tmp_path / "out" / "report.html")
    assert res["metrics_available"] is False and "unreachable" in " ".join(res["metrics_notes"])
    assert "no metrics" in done.task("Report | where it is")["msg"]
    for secret in (TOKEN, "pw-NOT-SHOWN-55"):
        assert secret not in done.output
    check_rendered_report(res["html_path"], tmp_path, plots=("error-rate", "p99-latency-ms", "judge", "timeline-canary"),
                          secrets=[TOKEN, "pw-NOT-SHOWN-55"], texts=("unreachable", "No metric series"), screenshot=False)
    again = report(tmp_path, inv, rollout_report_dir=str(tmp_path / "out"))
    assert again.task("Report | write the report")["changed"] is False


def test_report_of_an_unknown_release_fails_naming_it(tmp_path):
    write_ledger(tmp_path, pause=0)
    inv = inventory(tmp_path, "http://127.0.0.1:%d" % free_port())
    refused = report(tmp_path, inv, rollout_version="v7", rollout_report_metrics=False)
    assert refused.rc != 0
    res = refused.task("Report | write the report")
    assert "no entries of release 'v7'" in res["msg"] and "v2" in res["msg"]


def test_the_check_catches_a_missing_plot_and_a_leaked_secret(tmp_path):
    """check_rendered_report itself fails on a report without a plot, and on one with a secret in it."""
    from ansible_collections.stagegate.rollout.plugins.module_utils.rollout_report import make_report, write_report
    ledger = write_ledger(tmp_path, pause=0)
    dummy, html_text, json_text = make_report(ledger, RELEASE)
    out = tmp_path / "r"
    write_report(str(out), {"report.html": html_text, "report.json": json_text})
    html_path = str(out / "report.html")
    check_rendered_report(html_path, tmp_path, plots=("judge",), screenshot=False)
    with pytest.raises(AssertionError, match="plot judge not rendered"):
        (out / "report.html").write_text(html_text.replace('data-plot="judge"', 'data-plot="other"'))
        check_rendered_report(html_path, tmp_path, plots=("judge",), screenshot=False)
    with pytest.raises(AssertionError, match="a secret is in report.html"):
        (out / "report.html").write_text(html_text.replace("</body>", "%s</body>" % TOKEN))
        check_rendered_report(html_path, tmp_path, plots=("judge",), secrets=[TOKEN], screenshot=False)
