# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""stagegate.rollout.report end to end: a real ledger written by rollout_ledger while a real exporter is scraped
by a real Prometheus, the report playbook run by FQCN with an inventory's rollout_target, the HTML rendered in
headless Chromium. Also: an unreachable Prometheus (the report still renders, with a note), check mode and
idempotence."""
import json
import os
import subprocess
import sys

import pytest
import yaml

from demo.stack.ports import free_port, port_open
from demo.stack.prometheus import Prometheus
from tests.integration.metrics.gatekit import HEALTHY, Exporter, wait_for_data
from tests.integration.report.reportkit import CHROMIUM, check_rendered_report

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
BIN = os.path.dirname(sys.executable)
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


def env_for(tmp_path):
    return dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"), ANSIBLE_NOCOLOR="1",
                ANSIBLE_FORCE_COLOR="0", ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_DEPRECATION_WARNINGS="0",
                ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-local"),
                ANSIBLE_HOME=str(tmp_path / "ansible-home"), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
                PYTHONDONTWRITEBYTECODE="1")


def run(tmp_path, argv, timeout=300):
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook")] + argv, cwd=str(tmp_path), env=env_for(tmp_path),
                          capture_output=True, text=True, timeout=timeout, check=False)
    start = proc.stdout.find("{")
    doc = json.loads(proc.stdout[start:]) if start >= 0 else None
    return proc, doc


def task(doc, name):
    for play in doc["plays"]:
        for t in play["tasks"]:
            if t["task"]["name"] == name:
                return t["hosts"]["localhost"]
    raise KeyError(name)


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
    proc, doc = run(tmp_path, ["-i", "localhost,", "-c", "local", os.path.join(HERE, "playbooks", "ledger_story.yml"),
                               "-e", json.dumps({"ledger": ledger, "release": RELEASE, "pause_seconds": pause,
                                                 "ansible_python_interpreter": sys.executable})])
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return ledger


def report(tmp_path, inv, *extra):
    return run(tmp_path, ["-i", inv, "stagegate.rollout.report", "-e", "rollout_version=%s" % RELEASE] + list(extra))


def test_report_with_prometheus_renders_every_section_and_plot(stack, tmp_path):
    write_ledger(tmp_path)
    inv = inventory(tmp_path, stack["prometheus"].url)

    proc, doc = report(tmp_path, inv, "--check")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    checked = task(doc, "Report | write the report")
    assert checked["changed"] is True and not os.path.exists(checked["html_path"])

    proc, doc = report(tmp_path, inv)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    res = task(doc, "Report | write the report")
    assert res["changed"] is True
    assert res["html_path"] == str(tmp_path / "state" / "reports" / RELEASE / "report.html")
    assert res["metrics_available"] is True and res["ledger_valid"] is True, res
    assert res["summary"]["outcome"] == "rolled back (canary)" and res["summary"]["phases_passed"] == ["staging"]
    assert res["summary"]["rollbacks"] == 1 and res["summary"]["judge_steps"] == 2
    assert res["html_path"] in task(doc, "Report | where it is")["msg"]
    assert TOKEN not in proc.stdout + proc.stderr

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
    proc, doc = report(tmp_path, inv)
    again = open(res["json_path"]).read()
    diff = [(a, b) for a, b in zip(first.splitlines(), again.splitlines()) if a != b][:5]
    assert proc.returncode == 0 and task(doc, "Report | write the report")["changed"] is False, "not idempotent: %s" % diff


def test_report_without_a_reachable_prometheus_still_renders(tmp_path):
    write_ledger(tmp_path, pause=1)
    inv = inventory(tmp_path, "http://reporter:pw-NOT-SHOWN-55@127.0.0.1:%d" % free_port())
    proc, doc = report(tmp_path, inv, "-e", "rollout_report_dir=%s" % (tmp_path / "out"))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    res = task(doc, "Report | write the report")
    assert res["html_path"] == str(tmp_path / "out" / "report.html")
    assert res["metrics_available"] is False and "unreachable" in " ".join(res["metrics_notes"])
    assert "no metrics" in task(doc, "Report | where it is")["msg"]
    for secret in (TOKEN, "pw-NOT-SHOWN-55"):
        assert secret not in proc.stdout + proc.stderr
    check_rendered_report(res["html_path"], tmp_path, plots=("error-rate", "p99-latency-ms", "judge", "timeline-canary"),
                          secrets=[TOKEN, "pw-NOT-SHOWN-55"], texts=("unreachable", "No metric series"), screenshot=False)
    proc, doc = report(tmp_path, inv, "-e", "rollout_report_dir=%s" % (tmp_path / "out"))
    assert task(doc, "Report | write the report")["changed"] is False


def test_report_of_an_unknown_release_fails_naming_it(tmp_path):
    write_ledger(tmp_path, pause=0)
    inv = inventory(tmp_path, "http://127.0.0.1:%d" % free_port())
    proc, doc = run(tmp_path, ["-i", inv, "stagegate.rollout.report", "-e", "rollout_version=v7",
                               "-e", "rollout_report_metrics=false"])
    assert proc.returncode != 0
    res = task(doc, "Report | write the report")
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
