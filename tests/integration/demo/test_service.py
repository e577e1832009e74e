"""The demo service against a real nats-server: flags, metrics, faults, exactly-once publishing."""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from demo.repos import REPOSITORIES
from demo.service import Config, ConfigError, parse_env_file

from demo.testkit import (
    ROOT, STREAM, consumer_info, js_call, publish_events, read_published, run, wait_for)

EXTERNAL = {"CODEX_PUBLISH_ENABLED": "true", "CODEX_PUBLISH_PORTAL": "external"}


# ----- flags ----------------------------------------------------------------------------------
def test_env_file_parsing_and_version_specific_faults(tmp_path):
    path = tmp_path / "svc.env"
    path.write_text("# comment\n\nexport CODEX_PUBLISH_PORTAL=external\nCODEX_REPO_INCLUDE_LIST=\"a/b, c/d\"\n"
                    "GRAPH_API_ENABLED=yes\nDEMO_FAULT_ERROR_RATE=0.01\nDEMO_FAULT_ERROR_RATE__V3=0.2\n")
    values = parse_env_file(str(path))
    v2, v3 = Config(values, "v2"), Config(values, "v3")
    assert v2.flags["CODEX_PUBLISH_PORTAL"] == "external"
    assert v2.flags["CODEX_REPO_INCLUDE_LIST"] == ["a/b", "c/d"]
    assert v2.flags["GRAPH_API_ENABLED"] is True and v2.flags["CHAOS_ENGINEERING_ENABLED"] is False
    assert v2.flags["CODEX_PUBLISH_ENABLED"] is True  # default on, as in the seed's staging
    assert (v2.error_rate, v3.error_rate) == (0.01, 0.2)
    assert v2.action_for("a/b") == "published" and v2.action_for("x/y") == "skipped"
    empty = Config({"CODEX_REPO_INCLUDE_LIST": ""}, "v1")
    assert empty.action_for("x/y") == "built"  # empty include list = all repos; build-only by default


@pytest.mark.parametrize("key,value,words", [
    ("CODEX_PUBLISH_PORTAL", "internal", ["CODEX_PUBLISH_PORTAL", "internal", "build-only, external"]),
    ("GRAPH_API_ENABLED", "maybe", ["GRAPH_API_ENABLED", "maybe", "boolean"]),
    ("DEMO_FAULT_ERROR_RATE", "1.5", ["DEMO_FAULT_ERROR_RATE", "1.5", "0..1"]),
    ("DEMO_FAULT_LATENCY_MS", "fast", ["DEMO_FAULT_LATENCY_MS", "fast"]),
])
def test_bad_flag_values_are_refused_naming_field(key, value, words):
    with pytest.raises(ConfigError) as err:
        Config({key: value}, "v1")
    for w in words:
        assert w in str(err.value)


def test_service_refuses_bad_env_file_before_serving(tmp_path):
    env = tmp_path / "bad.env"
    env.write_text("CODEX_PUBLISH_PORTAL=sometimes\n")
    res = subprocess.run([sys.executable, "-m", "demo.service", "--env-file", str(env), "--port", "1",
                          "--version", "v9"], cwd=ROOT, capture_output=True, text=True, check=False, timeout=30)
    assert res.returncode == 2
    assert "CODEX_PUBLISH_PORTAL" in res.stderr and "sometimes" in res.stderr


# ----- HTTP and metrics --------------------------------------------------------------------------
def test_api_health_metrics_and_version_header(services):
    svc = services("v1", {"POLICY_TRANSPARENCY_ENABLED": "true", "MERMAID_GRAPHS_ENABLED": "true"}).start()
    code, headers, body = svc.get("/api/ping")
    assert code == 200 and headers["X-Version"] == "v1"
    code, dummy, body = svc.get("/api/docs/gitguard/platform-core")
    doc = json.loads(body)
    assert code == 200 and doc["repo"] == "gitguard/platform-core" and doc["status"] == "pending"
    assert doc["policy_refs"] and doc["mermaid"].startswith("graph LR")
    assert svc.get("/api/docs/nobody/nothing")[0] == 404
    assert svc.get("/api/slo")[0] == 404  # SLO_MONITORING_ENABLED off
    assert svc.health()["status"] == "ok"
    text = svc.metrics()
    assert 'demo_build_info{version="v1"} 1.0' in text
    assert 'demo_http_requests_total{code="200",route="/api/ping",version="v1"} 1.0' in text
    assert 'demo_http_requests_total{code="404",route="/api/docs",version="v1"} 1.0' in text
    assert 'demo_http_request_duration_seconds_bucket{le="0.005",version="v1"}' in text
    assert 'demo_http_request_duration_seconds_bucket{le="10.0",version="v1"}' in text
    assert 'demo_events_processed_total{outcome="published",version="v1"} 0.0' in text
    assert 'demo_publish_lag_seconds_bucket{le="10.0",version="v1"}' in text
    assert 'demo_flag_enabled{flag="POLICY_TRANSPARENCY_ENABLED",version="v1"} 1.0' in text
    assert "_created" not in text
    # no Graph API while the flag is off
    assert svc.health()["graph_api"] is None


def test_graph_api_on_its_own_port_with_cors(services):
    svc = services("v4", {"GRAPH_API_ENABLED": "true", "GRAPH_API_CORS_ORIGINS": "https://portal.example"}).start()
    wait_for(lambda: svc.health()["graph_api"] == svc.graph_port, what="graph API")
    code, headers, body = svc.get("/graph/repos/gitguard/platform-core", port=svc.graph_port,
                                  headers={"Origin": "https://portal.example"})
    assert code == 200
    assert headers["Access-Control-Allow-Origin"] == "https://portal.example"
    assert len(json.loads(body)["depends_on"]) == 3
    code, headers, dummy = svc.get("/graph/repos", port=svc.graph_port, method="OPTIONS",
                                   headers={"Origin": "https://portal.example",
                                            "Access-Control-Request-Method": "GET"})
    assert code == 204 and "GET" in headers["Access-Control-Allow-Methods"]
    code, headers, dummy = svc.get("/graph/repos", port=svc.graph_port, headers={"Origin": "https://evil.example"})
    assert code == 200 and "Access-Control-Allow-Origin" not in headers
    assert 'route="/graph"' in svc.metrics()


# ----- faults ---------------------------------------------------------------------------------------
def test_error_rate_fault(services):
    bad = services("v3", {"DEMO_FAULT_ERROR_RATE": "0.3"}).start()
    good = services("v2", {"DEMO_FAULT_ERROR_RATE__V3": "1.0"}).start()  # only v3 would fail
    codes_bad = [bad.get("/api/ping")[0] for dummy in range(300)]
    codes_good = [good.get("/api/ping")[0] for dummy in range(100)]
    assert set(codes_good) == {200}
    rate = codes_bad.count(500) / len(codes_bad)
    assert 0.2 < rate < 0.4, rate
    assert bad.health()["status"] == "ok"  # health checks stay green: only gates catch it
    assert 'demo_http_requests_total{code="500",route="/api/ping",version="v3"} %d.0' % codes_bad.count(500) \
        in bad.metrics()


def test_latency_and_tail_faults(services):
    slow = services("v5", {"DEMO_FAULT_LATENCY_MS": "120"}).start()
    tail = services("v6", {"DEMO_FAULT_TAIL_MS": "150", "DEMO_FAULT_TAIL_FRACTION": "0.25"}).start()

    def timed(svc):
        t0 = time.perf_counter()
        assert svc.get("/api/ping")[0] == 200
        return time.perf_counter() - t0

    assert all(timed(slow) >= 0.12 for dummy in range(5))
    lat = sorted(timed(tail) for dummy in range(60))
    slow_ones = sum(1 for x in lat if x >= 0.15)
    assert 5 <= slow_ones <= 28, lat  # ~15 of 60
    assert lat[len(lat) // 2] < 0.1  # the median is untouched: a tail-only slowdown
    # healthz is not slowed: it stays usable for HAProxy checks
    t0 = time.perf_counter()
    slow.get("/healthz")
    assert time.perf_counter() - t0 < 0.1


def test_crash_on_start(tmp_path):
    env = tmp_path / "crash.env"
    env.write_text("DEMO_FAULT_CRASH_ON_START__V7=true\n")
    res = subprocess.run([sys.executable, "-m", "demo.service", "--env-file", str(env), "--port", "1",
                          "--version", "v7"], cwd=ROOT, capture_output=True, text=True, check=False, timeout=30)
    assert res.returncode == 3 and "DEMO_FAULT_CRASH_ON_START" in res.stderr


def test_sigterm_finishes_in_flight_requests_and_exits_0(services):
    svc = services("v1", {"DEMO_FAULT_LATENCY_MS": "700"}).start()
    results = []
    threads = [threading.Thread(target=lambda: results.append(svc.get("/api/ping")[0])) for dummy in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    svc.proc.proc.send_signal(signal.SIGTERM)
    rc = svc.proc.proc.wait(10)
    for t in threads:
        t.join(10)
    assert rc == 0
    assert results == [200, 200, 200, 200]


# ----- JetStream events ---------------------------------------------------------------------------
def test_events_published_exactly_once_across_two_versions(services, nats_url, tmp_path):
    pub = tmp_path / "pub"
    include = ",".join(REPOSITORIES[:5])
    env = dict(EXTERNAL, CODEX_REPO_INCLUDE_LIST=include)
    a = services("v1", env, nats_url=nats_url, publish_dir=pub).start()
    b = services("v2", env, nats_url=nats_url, publish_dir=pub).start()
    # both consumers bound to the durable before the first event (on a slow machine one could otherwise take all)
    wait_for(lambda: a.health()["consumer"] == b.health()["consumer"] == "consuming", what="both consumers consuming")
    events = [("e%04d" % i, REPOSITORIES[i % len(REPOSITORIES)]) for i in range(300)]
    seqs = publish_events(nats_url, events)
    wait_for(lambda: len(read_published(pub)) >= 300, what="300 records")
    time.sleep(0.5)
    recs = read_published(pub)
    assert len(recs) == 300
    assert sorted(r["event_id"] for r in recs) == sorted(e[0] for e in events)
    assert sorted(r["seq"] for r in recs) == sorted(seqs)
    assert {r["version"] for r in recs} == {"v1", "v2"}  # one durable, shared by both versions
    for r in recs:
        assert r["action"] == ("published" if r["repo"] in REPOSITORIES[:5] else "skipped")
        assert r["lag_s"] >= 0
    info = consumer_info(nats_url)
    assert info.num_ack_pending == 0 and info.num_pending == 0
    # the API shows the published document
    doc = json.loads(a.get("/api/docs/" + REPOSITORIES[0])[2]) if any(
        r["version"] == "v1" and r["repo"] == REPOSITORIES[0] for r in recs) else json.loads(
        b.get("/api/docs/" + REPOSITORIES[0])[2])
    assert doc["status"] == "published"
    total = sum(int(float(line.split()[-1])) for svc in (a, b) for line in svc.metrics().splitlines()
                if line.startswith("demo_events_processed_total") and ('"published"' in line or '"skipped"' in line))
    assert total == 300


def test_build_only_records_built(services, nats_url, tmp_path):
    pub = tmp_path / "pub"
    services("v1", {"CODEX_PUBLISH_PORTAL": "build-only"}, nats_url=nats_url, publish_dir=pub).start()
    publish_events(nats_url, [("b%d" % i, REPOSITORIES[i]) for i in range(20)])
    wait_for(lambda: len(read_published(pub)) == 20, what="20 records")
    assert {r["action"] for r in read_published(pub)} == {"built"}


def test_ack_only_after_record(services, nats_url, tmp_path):
    pub = tmp_path / "pub"
    svc = services("v1", EXTERNAL, nats_url=nats_url, publish_dir=pub).start()
    (pub / "published.jsonl").mkdir()  # recording fails: nothing may be acknowledged
    publish_events(nats_url, [("a%d" % i, REPOSITORIES[i]) for i in range(10)])
    wait_for(lambda: 'outcome="failed",version="v1"} 0.0' not in svc.metrics(), what="a failed record")
    time.sleep(1.0)
    info = consumer_info(nats_url)
    assert info.ack_floor.stream_seq == 0  # not one event acknowledged
    assert "cannot record" in svc.health()["last_error"]
    (pub / "published.jsonl").rmdir()  # recording works again: the redeliveries are recorded and acked
    wait_for(lambda: len(read_published(pub)) == 10, timeout=20, what="10 records after the fix")
    wait_for(lambda: consumer_info(nats_url).ack_floor.stream_seq == 10, what="all acked")
    recs = read_published(pub)
    assert sorted(r["event_id"] for r in recs) == ["a%d" % i for i in range(10)]
    assert all(r["delivered"] >= 2 for r in recs)


def test_kill_9_loses_nothing(services, nats_url, tmp_path):
    pub = tmp_path / "pub"
    env = dict(EXTERNAL, DEMO_FAULT_LATENCY_MS="5")
    svc = services("v1", env, nats_url=nats_url, publish_dir=pub).start()
    publish_events(nats_url, [("k%03d" % i, REPOSITORIES[i % 50]) for i in range(200)])
    wait_for(lambda: len(read_published(pub)) >= 30, what="some records")
    os.killpg(svc.proc.pid, signal.SIGKILL)
    svc.proc.proc.wait(5)
    n_before = len(read_published(pub))
    assert n_before < 200
    svc2 = services("v1", env, nats_url=nats_url, publish_dir=pub).start()
    wait_for(lambda: len({r["event_id"] for r in read_published(pub)}) == 200, timeout=45,
             what="all 200 events recorded after the restart")
    wait_for(lambda: consumer_info(nats_url).num_ack_pending == 0 and consumer_info(nats_url).num_pending == 0,
             timeout=45, what="everything acknowledged")
    recs = read_published(pub)
    assert len(recs) == 200, "an event was recorded twice by the same version"
    assert svc2.health()["consumer"] == "consuming"


def test_replay_after_rollback_reprocesses_only_what_the_bad_version_handled(services, nats_url, tmp_path):
    """The rollback replay: the stable version reprocesses what the canary handled, nothing twice."""
    from nats.js.api import ConsumerConfig, DeliverPolicy, AckPolicy
    pub = tmp_path / "pub"
    stable = services("v2", EXTERNAL, nats_url=nats_url, publish_dir=pub).start()
    canary = services("v3", EXTERNAL, nats_url=nats_url, publish_dir=pub).start()
    for svc in (stable, canary):
        wait_for(lambda s=svc: s.health().get("consumer") == "consuming", what="both versions pulling")
    for batch in range(10):  # in batches, so that both versions' pulls get a share even on a busy machine
        publish_events(nats_url, [("r%03d" % i, REPOSITORIES[i % 50]) for i in range(batch * 10, batch * 10 + 10)])
        time.sleep(0.2)
    wait_for(lambda: len(read_published(pub)) == 100, what="100 records")
    by_v3 = {r["event_id"] for r in read_published(pub) if r["version"] == "v3"}
    assert by_v3
    canary.stop()

    # replay: reposition the durable to the start of the rollout (here: the start of the stream)
    async def reposition(js):
        await js.delete_consumer(STREAM, "org-brain")
        await js.add_consumer(STREAM, ConsumerConfig(durable_name="org-brain", ack_policy=AckPolicy.EXPLICIT,
                                                     deliver_policy=DeliverPolicy.ALL))
    replay_at = time.time()
    run(js_call(nats_url, reposition))
    wait_for(lambda: 'outcome="duplicate",version="v2"} %d.0' % (100 - len(by_v3)) in stable.metrics(),
             timeout=20, what="v2 to skip what it had already processed")
    wait_for(lambda: {r["event_id"] for r in read_published(pub) if r["version"] == "v2"}
             == {"r%03d" % i for i in range(100)}, timeout=20, what="v2 to cover every event")
    recs = [r for r in read_published(pub) if r["version"] == "v2"]
    assert len(recs) == 100  # exactly once by the healthy version
    assert {r["event_id"] for r in recs if r["ts"] >= replay_at} == by_v3


def test_publishing_disabled_leaves_events_in_the_stream_until_sighup(services, nats_url, tmp_path):
    pub = tmp_path / "pub"
    svc = services("v1", {"CODEX_PUBLISH_ENABLED": "false"}, nats_url=nats_url, publish_dir=pub).start()
    publish_events(nats_url, [("d%d" % i, REPOSITORIES[i]) for i in range(15)])
    time.sleep(1.5)
    assert read_published(pub) == []
    assert svc.health()["consumer"] == "paused"
    svc.write_env(EXTERNAL)
    svc.proc.signal(signal.SIGHUP)
    wait_for(lambda: len(read_published(pub)) == 15, what="15 records after SIGHUP")
    assert 'demo_flag_enabled{flag="CODEX_PUBLISH_ENABLED",version="v1"} 1.0' in svc.metrics()


def test_faults_file_overrides_only_fault_knobs(services, tmp_path):
    faults = tmp_path / "faults.env"
    faults.write_text("DEMO_FAULT_ERROR_RATE__V3=1.0\nGRAPH_API_ENABLED=true\n")
    bad = services("v3", {}, extra=["--faults-file", str(faults)]).start()
    good = services("v2", {}, extra=["--faults-file", str(faults)]).start()
    assert {bad.get("/api/ping")[0] for dummy in range(10)} == {500}
    assert {good.get("/api/ping")[0] for dummy in range(10)} == {200}
    flags = json.loads(good.get("/api/flags")[2])["flags"]
    assert flags["GRAPH_API_ENABLED"] is False  # flags never come from the faults file
    faults.write_text("")
    bad.proc.signal(signal.SIGHUP)
    wait_for(lambda: bad.get("/api/ping")[0] == 200 and bad.get("/api/ping")[0] == 200, what="fault cleared")


def test_fault_scope_external_hides_the_bug_while_build_only():
    build_only = Config({"DEMO_FAULT_ERROR_RATE": "0.2", "DEMO_FAULT_SCOPE": "external"}, "v3")
    external = Config({"DEMO_FAULT_ERROR_RATE": "0.2", "DEMO_FAULT_SCOPE": "external",
                       "CODEX_PUBLISH_PORTAL": "external"}, "v3")
    assert build_only.error_rate == 0.0 and external.error_rate == 0.2
    with pytest.raises(ConfigError, match="DEMO_FAULT_SCOPE"):
        Config({"DEMO_FAULT_SCOPE": "sometimes"}, "v3")
