"""rollout_metrics through ansible-playbook; the file is checked by promtool and scraped by a real Prometheus."""
import functools
import http.server
import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

from demo.stack.prometheus import Prometheus
from tests.integration.http_standin import HttpStandIn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Record a rollback
      stagegate.rollout.rollout_metrics:
        path: "{{ metrics_path }}"
        metrics:
          - name: stagegate_rollout_rollbacks_total
            labels: {release: v3, phase: canary, reason: gate}
            inc: 1
          - name: stagegate_rollout_canary_weight_percent
            labels: {service: org-brain}
            set: "{{ weight }}"
      register: out
    - name: Show
      ansible.builtin.debug:
        var: out
"""


def play(tmp_path, path, weight, *extra):
    pb = tmp_path / "play.yml"
    pb.write_text(PLAY)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"), ANSIBLE_STDOUT_CALLBACK="json",
               ANSIBLE_NOCOLOR="1")
    res = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
                          "-e", "ansible_connection=local", "-e", "ansible_python_interpreter=%s" % sys.executable,
                          "-e", "metrics_path=%s" % path, "-e", "weight=%s" % weight, str(pb)] + list(extra),
                         capture_output=True, text=True, timeout=120, check=False, env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    return json.loads(res.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]


def test_check_mode_then_change_then_increment(tmp_path):
    path = tmp_path / "stagegate_rollout.prom"
    r = play(tmp_path, path, 0, "--check", "--diff")
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
    pb = tmp_path / "bad.yml"
    bad = PLAY.replace("set: \"{{ weight }}\"", "inc: -1")
    pb.write_text(bad.replace("stagegate_rollout_canary_weight_percent", "stagegate_rollout_rollbacks_total"))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"))
    res = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
                          "-e", "ansible_connection=local", "-e", "ansible_python_interpreter=%s" % sys.executable,
                          "-e", "metrics_path=%s" % path, str(pb)], capture_output=True, text=True, timeout=120,
                         check=False, env=env)
    assert res.returncode != 0
    assert "metrics[1]" in res.stdout and "counter" in res.stdout
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
