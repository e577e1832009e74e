"""The local stack: up, slots, down; nothing left running."""
import json
import os
import subprocess
import sys
import urllib.request

from demo.stack import slot as slots
from demo.stack.local import LocalStack, pids, prom_query
from demo.testkit import ROOT, wait_for


def _processes_mentioning(text):
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if text in cmd and "pytest" not in cmd:
            found.append((int(pid), cmd))
    return found


def _cli(*args):
    res = subprocess.run([sys.executable, "-m"] + list(args), cwd=ROOT, capture_output=True, text=True,
                         check=False, timeout=90)
    return res.returncode, res.stdout, res.stderr


def _ping(url):
    with urllib.request.urlopen(url + "/api/ping", timeout=5) as r:
        return r.headers["X-Version"]


def test_cli_up_slots_status_down_leaves_nothing(tmp_path):
    wd = str(tmp_path / "run")
    rc, out, err = _cli("demo.stack.local", "up", "--workdir", wd)
    try:
        assert rc == 0, err
        up = json.loads(out)
        assert set(up["pids"]) == {"nats", "prometheus", "haproxy", "slot:stable"}
        info = json.load(open(os.path.join(wd, "stack.json")))
        for key in ("nats", "prometheus", "haproxy", "slots", "publish_dir", "python", "repo_root"):
            assert key in info
        assert info["haproxy"]["backend"] == "app" and os.path.exists(info["haproxy"]["socket_path"])
        fe = info["haproxy"]["frontend_url"]
        assert _ping(fe) == "v1"
        # Prometheus scrapes the stable slot with its slot label
        res = prom_query(info["prometheus"]["url"], 'demo_build_info{slot="stable"}')
        assert res and res[0]["metric"]["version"] == "v1"
        # a canary in its slot: started, healthy, but weight 0 so it gets no traffic yet
        with open(info["slots"]["canary"]["env_file"], "w") as fh:
            fh.write("CODEX_PUBLISH_PORTAL=build-only\n")
        rc, out, err = _cli("demo.stack.slot", "start", "--stack", os.path.join(wd, "stack.json"),
                            "--slot", "canary", "--version", "v2")
        assert rc == 0, out + err
        started = json.loads(out)
        assert started["changed"] and started["healthy"] and started["version"] == "v2"
        rc, out, dummy = _cli("demo.stack.slot", "start", "--stack", os.path.join(wd, "stack.json"),
                              "--slot", "canary", "--version", "v2")
        assert json.loads(out)["changed"] is False and json.loads(out)["pid"] == started["pid"]  # idempotent
        assert {_ping(fe) for dummy in range(20)} == {"v1"}
        rc, out, dummy = _cli("demo.stack.local", "status", "--workdir", wd)
        st = json.loads(out)
        assert st["slots"]["canary"]["version"] == "v2" and st["slots"]["stable"]["healthy"]
        recorded = dict(pids(info))
        assert len(recorded) == 5
    finally:
        rc, out, err = _cli("demo.stack.local", "down", "--workdir", wd)
    assert rc == 0, out + err
    assert json.loads(out)["left"] == {}
    for name, pid in recorded.items():
        assert not slots.alive(pid), "%s (pid %d) still running" % (name, pid)
    assert _processes_mentioning(wd) == []
    # down twice is fine
    rc, out, dummy = _cli("demo.stack.local", "down", "--workdir", wd)
    assert rc == 0 and json.loads(out)["changed"] is False


def test_library_start_stop_and_restart_in_same_workdir(tmp_path):
    wd = str(tmp_path / "run")
    with LocalStack(wd) as stack:
        first = dict(pids(stack.info))
        assert _ping(stack.info["haproxy"]["frontend_url"]) == "v1"
    assert all(not slots.alive(p) for p in first.values())
    # an "up" that was never brought down is cleaned by the next start
    s1 = LocalStack(wd).start()
    orphan = dict(pids(s1.info))
    s1.info = None  # forget the objects' state: like a crashed runner
    s2 = LocalStack(wd).start()
    try:
        wait_for(lambda: all(not slots.alive(p) for p in orphan.values()), timeout=10, what="orphans gone")
        assert _ping(s2.info["haproxy"]["frontend_url"]) == "v1"
    finally:
        s2.stop()
        for comp in (s1.nats, s1.haproxy, s1.prometheus):
            comp.stop()  # reap our own children
    assert _processes_mentioning(wd) == []
