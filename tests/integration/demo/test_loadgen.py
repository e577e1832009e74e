"""The load generator against real service processes and a real nats-server."""
import json
import subprocess
import sys

from demo.loadgen import LoadGen
from demo.testkit import ROOT, STREAM, js_call, read_published, run, wait_for


def test_steady_rate_and_errors_by_version(services):
    svc = services("v3", {"DEMO_FAULT_ERROR_RATE": "0.5"}).start()
    lg = LoadGen(svc.url, rate=40, duration=3, workers=8, seed=1).start()
    report = lg.wait()
    assert 100 <= report["requests"] <= 125, report  # 40/s for 3 s
    v3 = report["by_version"]["v3"]
    assert v3["requests"] == report["requests"]
    assert 0.3 < v3["error_rate"] < 0.7
    assert v3["errors"] == v3["codes"]["500"]
    assert v3["latency_ms"]["p50"] is not None and report["shed"] == 0
    recent = lg.window(1.5)
    assert 40 <= recent["v3"]["requests"] <= 80


def test_bounded_workers_shed_instead_of_piling_up(services):
    svc = services("v1", {"DEMO_FAULT_LATENCY_MS": "400"}).start()
    report = LoadGen(svc.url, rate=50, duration=2, workers=2).start().wait()
    assert report["shed"] > 30  # 2 workers at 400 ms serve ~5/s of the 50/s asked
    assert report["requests"] <= 15


def test_connection_errors_count_as_version_none(tmp_path):
    from demo.stack.ports import free_port
    report = LoadGen("http://127.0.0.1:%d" % free_port(), rate=20, duration=1, timeout=1).start().wait()
    assert report["by_version"]["none"]["codes"]["conn_error"] == report["requests"] > 10
    assert report["error_rate"] == 1.0


def test_events_are_stored_and_consumed(services, nats_url, tmp_path):
    pub = tmp_path / "pub"
    services("v1", {"CODEX_PUBLISH_PORTAL": "external"}, nats_url=nats_url, publish_dir=pub).start()
    log = tmp_path / "events.jsonl"
    res = subprocess.run([sys.executable, "-m", "demo.loadgen", "--url", "http://127.0.0.1:9", "--rate", "1",
                          "--duration", "4", "--nats-url", nats_url, "--events-rate", "25",
                          "--events-log", str(log), "--run-id", "t1"],
                         cwd=ROOT, capture_output=True, text=True, check=False, timeout=60)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    n = report["events"]["published"]
    # 25 events/s for 4 s at most; far fewer on a busy machine (CI once saw none in 2 s): the rate is not what is
    # tested, that every event published is stored and consumed is
    assert 1 <= n <= 105, report
    sent = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["id"] for e in sent] == ["t1-%06d" % i for i in range(n)]
    info = run(js_call(nats_url, lambda js: js.stream_info(STREAM)))
    assert info.state.messages == n and report["events"]["last_seq"] == n
    wait_for(lambda: len(read_published(pub)) == n, what="every event recorded")
    assert sorted(r["event_id"] for r in read_published(pub)) == sorted(e["id"] for e in sent)
