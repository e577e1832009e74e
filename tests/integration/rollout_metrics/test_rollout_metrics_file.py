"""rollout_metrics through ansible-playbook; the file is checked by promtool and scraped by a real Prometheus."""
import functools
import http.server
import json
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from demo.stack.prometheus import Prometheus
from tests.integration.http_standin import HttpStandIn
from tests.integration.playbook_run import run_tasks

RECORD = "Record a rollback"


def record(weight_update):
    """The task under test: a rollback counted, the canary weight updated with ``weight_update``."""
    return [{"name": RECORD, "stagegate.rollout.rollout_metrics": {"path": "{{ metrics_path }}", "metrics": [
        {"name": "stagegate_rollout_rollbacks_total", "labels": {"release": "v3", "phase": "canary", "reason": "gate"},
         "inc": 1},
        dict({"name": "stagegate_rollout_canary_weight_percent", "labels": {"service": "org-brain"}}, **weight_update),
    ]}}]


def play(tmp_path, path, weight, check=False, diff=False):
    """rollout_metrics through ansible-playbook (tests/integration/playbook_run.py) -> its result."""
    run = run_tasks(record({"set": "{{ weight }}"}), tmp_path, extra_vars={"metrics_path": str(path), "weight": weight},
                    check=check, diff=diff, timeout=120)
    return run.ok(0)


def test_check_mode_then_change_then_increment(tmp_path):
    path = tmp_path / "stagegate_rollout.prom"
    r = play(tmp_path, path, 0, check=True, diff=True)
    assert r["changed"] and not path.exists()
    assert "stagegate_rollout_rollbacks_total" in r["diff"]["after"]
    r = play(tmp_path, path, 0)
    assert r["changed"] and r["updated"][0]["after"] == 1.0
    r = play(tmp_path, path, 0)
    assert r["updated"][0]["before"] == 1.0 and r["updated"][0]["after"] == 2.0
    assert r["updated"][1]["before"] == r["updated"][1]["after"] == 0.0
    res = subprocess.run(["promtool", "check", "metrics"], input=path.read_text(), capture_output=True, text=True,
                         check=False)
    assert res.returncode == 0, res.stdout + res.stderr


def test_bad_update_is_refused_naming_the_field(tmp_path):
    path = tmp_path / "m.prom"
    # the weight metric given as a second update of the counter, by -1
    run = run_tasks(record({"name": "stagegate_rollout_rollbacks_total", "inc": -1}), tmp_path,
                    extra_vars={"metrics_path": str(path)}, timeout=120)
    assert run.rc != 0, run
    assert "metrics[1]" in run.task(RECORD)["msg"] and "counter" in run.task(RECORD)["msg"], run
    assert not path.exists()


@pytest.fixture
def file_server(tmp_path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    with HttpStandIn(handler) as srv:
        yield srv.port


def test_real_prometheus_scrapes_the_file(tmp_path, file_server):
    path = tmp_path / "metrics"
    play(tmp_path, path, 25)
    prom = Prometheus(str(tmp_path / "prom"), {"rollout": [("127.0.0.1:%d" % file_server, {})]}).start()
    try:
        q = urllib.parse.quote('stagegate_rollout_canary_weight_percent{service="org-brain"}')
        deadline = time.time() + 30
        result = []
        while time.time() < deadline and not result:
            with urllib.request.urlopen("%s/api/v1/query?query=%s" % (prom.url, q), timeout=5) as r:
                result = json.load(r)["data"]["result"]
            time.sleep(0.5)
        assert result and float(result[0]["value"][1]) == 25.0
    finally:
        prom.stop()
