"""The local stack: up (the stable v1 installed by stagegate.rollout.install under supervisord), slots, down;
nothing left running, supervisord included."""
import json
import os
import signal
import subprocess
import sys
import urllib.request

import yaml

from demo.stack import slot as slots
from demo.stack.local import LocalStack, pids, prom_query
from demo.testkit import ROOT, processes_mentioning, wait_for


def _cli(*args):
    res = subprocess.run([sys.executable, "-m"] + list(args), cwd=ROOT, capture_output=True, text=True,
                         check=False, timeout=300)
    return res.returncode, res.stdout, res.stderr


def _ping(url):
    with urllib.request.urlopen(url + "/api/ping", timeout=5) as r:
        return r.headers["X-Version"]


def _ping_soon(url):
    """The version that answers, or None while HAProxy has no server up (503) or the connection fails."""
    try:
        return _ping(url)
    except OSError:     # urllib.error.HTTPError (503) and URLError are OSErrors
        return None


def test_cli_up_slots_status_down_leaves_nothing(tmp_path):
    wd = str(tmp_path / "run")
    recorded = {}
    rc, out, err = _cli("demo.stack.local", "up", "--workdir", wd)
    try:
        assert rc == 0, out + err
        up = json.loads(out)
        assert set(up["pids"]) == {"nats", "prometheus", "haproxy", "supervisord", "slot:stable"}
        info = json.load(open(os.path.join(wd, "stack.json")))
        for key in ("nats", "prometheus", "haproxy", "slots", "supervisor", "inventory", "faults_file", "publish_dir",
                    "publish_file", "python", "repo_root"):
            assert key in info
        assert info["haproxy"]["backend"] == "app" and os.path.exists(info["haproxy"]["socket_path"])
        # the inventory the playbooks run against: inventories/demo plus the two generated files
        inv = info["inventory"]
        for name in ("target.yml", "phases.yml", "flags.yml", "rollout.yml", "stack.yml"):
            assert os.path.exists(os.path.join(inv, "group_vars", "all", name)), name
        hosts = yaml.safe_load(open(os.path.join(inv, "hosts.yml")))
        assert "localhost" in hosts["all"]["children"]["demo_app"]["hosts"]
        stack_vars = yaml.safe_load(open(os.path.join(inv, "group_vars", "all", "stack.yml")))["demo_stack"]
        assert stack_vars["slots"]["canary"]["port"] == info["slots"]["canary"]["port"]
        fe = info["haproxy"]["frontend_url"]
        assert _ping(fe) == "v1"
        # the install playbook ran the stable slot under supervisord with the install flags
        assert "CODEX_PUBLISH_PORTAL=external" in open(info["slots"]["stable"]["env_file"]).read()
        # Prometheus scrapes the stable slot with its slot label
        res = prom_query(info["prometheus"]["url"], 'demo_build_info{slot="stable"}')
        assert res and res[0]["metric"]["version"] == "v1"
        rc, out, err = _cli("demo.stack.slot", "status", "--stack", os.path.join(wd, "stack.json"))
        assert rc == 0, out + err
        st = json.loads(out)["slots"]
        assert st["stable"]["version"] == "v1" and st["stable"]["healthy"] and st["stable"]["pid"]
        assert st["canary"]["running"] is False and st["canary"]["pid"] is None
        # a killed slot is started again by supervisord (autorestart), healthy, same version
        killed = slots.kill(info, "stable", signal.SIGKILL)
        assert killed == st["stable"]["pid"]
        wait_for(lambda: slots.pid(info, "stable") not in (None, killed) and slots.status(info, "stable")["healthy"],
                 timeout=30, what="supervisord to restart the stable slot")
        assert not slots.alive(killed)
        wait_for(lambda: _ping_soon(fe) == "v1", timeout=15, what="HAProxy to route to the restarted slot")
        rc, out, dummy = _cli("demo.stack.local", "status", "--workdir", wd)
        st = json.loads(out)
        assert st["slots"]["stable"]["version"] == "v1" and st["slots"]["stable"]["healthy"]
        assert all(st["components_listening"].values())
        recorded = dict(pids(info))
        assert set(recorded) == {"nats", "prometheus", "haproxy", "supervisord", "slot:stable"}
    finally:
        rc, out, err = _cli("demo.stack.local", "down", "--workdir", wd)
    assert rc == 0, out + err
    assert json.loads(out)["left"] == {}
    for name, pid in recorded.items():
        assert not slots.alive(pid), "%s (pid %d) still running" % (name, pid)
    assert processes_mentioning(wd) == []
    # down twice is fine
    rc, out, dummy = _cli("demo.stack.local", "down", "--workdir", wd)
    assert rc == 0 and json.loads(out)["changed"] is False


def test_library_restart_in_same_workdir_cleans_an_orphaned_stack(tmp_path):
    """An "up" that was never brought down (a crashed runner) is stopped by the next start, supervisord too."""
    wd = str(tmp_path / "run")
    s1 = LocalStack(wd).start()
    orphan = dict(pids(s1.info))
    assert {"supervisord", "slot:stable"} <= set(orphan)
    s1.info = None  # forget the objects' state: like a crashed runner
    s2 = LocalStack(wd).start()
    try:
        wait_for(lambda: all(not slots.alive(p) for p in orphan.values()), timeout=20, what="orphans gone")
        assert _ping(s2.info["haproxy"]["frontend_url"]) == "v1"
        now = dict(pids(s2.info))
        assert {"supervisord", "slot:stable"} <= set(now) and not set(now.values()) & set(orphan.values())
    finally:
        s2.stop()
        for comp in (s1.nats, s1.haproxy, s1.prometheus):
            comp.stop()  # reap our own children
    assert pids(s2.info) == {}
    assert processes_mentioning(wd) == []
