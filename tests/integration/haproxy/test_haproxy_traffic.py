# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""stagegate.rollout.haproxy_traffic against a real HAProxy (Debian 2.6) and real HTTP servers on loopback.

The module runs through ``ansible-playbook`` (ansible_connection=local, the
collection from .collections).  Every split is measured by sending requests
through HAProxy and counting which server answered; the state is checked with a
raw ``show servers state`` on the runtime socket.
"""

import math
import os
import threading
import time

import pytest

from ansible_collections.stagegate.rollout.plugins.module_utils import haproxy_runtime as hr
from tests.integration.haproxy.haproxy_kit import Load, Relay, count, request, run_module, wait_for

pytestmark = pytest.mark.slow

GROUPS = {"stable": ["s1", "s2"], "canary": ["c1"]}
INITIAL = {"s1": 50, "s2": 50, "c1": 0}
N = 400  # requests per measured split


def assert_share(counts, n, servers, pct):
    """The share of ``servers`` among n requests is pct within 4 binomial standard deviations (+2 requests)."""
    got = sum(counts.get(s, 0) for s in servers)
    p = pct / 100.0
    tol = 4 * math.sqrt(n * p * (1 - p)) + 2
    assert abs(got - n * p) <= tol, "%s got %d of %d requests, expected %.0f +- %.0f (%s)" % (
        servers, got, n, n * p, tol, counts)


def traffic(lb, args, tmp_path, **kw):
    args = dict({"socket": lb.socket_path, "backend": "app"}, **args)
    res, wall = run_module(str(tmp_path / "ansible"), args, **kw)
    return res


# --------------------------------------------------------------------------- check mode, splits, idempotence

def test_check_mode_split_idempotence_and_measured_shares(lb, tmp_path):
    before = lb.servers_state()
    res = traffic(lb, {"groups": GROUPS, "split": {"stable": 90, "canary": 10}}, tmp_path, check=True, diff=True)
    assert not res.get("failed"), res.get("msg")
    assert res["changed"] is True
    assert res["commands"] == ["set server app/c1 weight 10", "set server app/s1 weight 45",
                               "set server app/s2 weight 45"]
    assert res["after"]["c1"]["weight"] == 10 and res["before"]["c1"]["weight"] == 0
    assert "app/c1 weight=10 state=ready" in res["diff"]["after"]
    assert lb.servers_state() == before, "check mode changed HAProxy"
    counts, failures = count(lb.port, 100)
    assert not failures and "c1" not in counts

    res = traffic(lb, {"groups": GROUPS, "split": {"stable": 90, "canary": 10}}, tmp_path, diff=True)
    assert not res.get("failed"), res.get("msg")
    assert res["changed"] is True and res["changed_servers"] == ["c1", "s1", "s2"]
    assert res["effective_split"] == {"stable": 90.0, "canary": 10.0}
    assert 0 < res["elapsed_ms"] < 1000 and res["timings"]["apply_ms"] > 0
    # verified independently of the module: a raw 'show servers state' on the socket
    assert lb.weights() == {"s1": 45, "s2": 45, "c1": 10}
    assert res["after"]["c1"] == dict(res["after"]["c1"], weight=10, admin_state="ready", op_state="running",
                                      status="UP", serving=True)
    counts, failures = count(lb.port, N)
    assert not failures
    assert_share(counts, N, ["c1"], 10)

    again = traffic(lb, {"groups": GROUPS, "split": {"stable": 90, "canary": 10}}, tmp_path)
    assert not again.get("failed") and again["changed"] is False and again["commands"] == []
    assert again["before"] == again["after"]

    for stable, canary, expected in ((75, 25, {"s1": 75, "s2": 75, "c1": 50}),
                                     (50, 50, {"s1": 25, "s2": 25, "c1": 50}),
                                     (0, 100, {"s1": 0, "s2": 0, "c1": 100})):
        res = traffic(lb, {"groups": GROUPS, "split": {"stable": stable, "canary": canary}}, tmp_path)
        assert not res.get("failed"), res.get("msg")
        assert lb.weights() == expected
        counts, failures = count(lb.port, N)
        assert not failures
        if canary == 100:
            assert set(counts) == {"c1"}
        else:
            assert_share(counts, N, ["c1"], canary)
            assert_share(counts, N, ["s1", "s2"], stable)


# --------------------------------------------------------------------------- blue-green under load

def test_blue_green_flip_under_load_loses_nothing(lb, tmp_path):
    """stable 100 -> canary 100 in one module call while two clients send requests without pause.

    Zero failed requests; every client sees stable answers, then canary answers, never one after the other again
    (one switch); a runtime-API poller never sees a moment where no server takes traffic.
    """
    res = traffic(lb, {"groups": GROUPS, "split": {"stable": 100, "canary": 0}}, tmp_path)
    assert not res.get("failed") and lb.weights() == {"s1": 50, "s2": 50, "c1": 0}

    snapshots = []
    stop = threading.Event()

    def poll():
        client = hr.RuntimeClient(lb.socket_path, timeout=2)
        while not stop.is_set():
            try:
                snap = hr.read_servers(client, "app")
            except hr.HAProxyError:
                continue
            snapshots.append(sorted(n for n, s in snap.items() if hr.is_serving(s)))

    poller = threading.Thread(target=poll, daemon=True)
    load = Load(lb.port, clients=2).start()
    poller.start()
    time.sleep(0.5)
    flip = traffic(lb, {"groups": GROUPS, "split": {"stable": 0, "canary": 100}}, tmp_path)
    time.sleep(0.5)
    load.stop()
    stop.set()
    poller.join(5)

    assert not flip.get("failed"), flip.get("msg")
    assert flip["commands"][0] == "set server app/c1 weight 100", "capacity must be added first"
    assert lb.weights() == {"s1": 0, "s2": 0, "c1": 100}
    assert load.failed() == [], "requests failed during the flip"
    assert len(load.all) > 200, "too little load to mean anything: %d requests" % len(load.all)
    for res_one in load.results:
        sides = ["canary" if who == "c1" else "stable" for (t0, t1, status, who) in res_one]
        switches = sum(1 for a, b in zip(sides, sides[1:]) if a != b)
        assert sides[0] == "stable" and sides[-1] == "canary" and switches == 1, sides
    # across clients too: no request that started after a canary answer had arrived was answered by stable
    first_canary_end = min(t1 for (t0, t1, status, who) in load.all if who == "c1")
    late_stable = [r for r in load.all if r[3] != "c1" and r[0] > first_canary_end]
    assert late_stable == [], late_stable[:5]
    assert snapshots and all(snapshots), "a poller saw no server taking traffic"
    both = sum(1 for snap in snapshots if "c1" in snap and ("s1" in snap or "s2" in snap))
    print("flip: %d requests, %d runtime-API snapshots, %d with both sides serving, elapsed_ms %.2f"
          % (len(load.all), len(snapshots), both, flip["elapsed_ms"]))
    assert flip["elapsed_ms"] < 100


# --------------------------------------------------------------------------- bad input

def test_unknown_server_and_bad_split_are_refused_and_change_nothing(lb, tmp_path):
    before = lb.servers_state()
    res = traffic(lb, {"groups": {"stable": ["s1", "s2"], "canary": ["c9"]}, "split": {"stable": 90, "canary": 10}},
                  tmp_path)
    assert res["failed"] and not res["changed"]
    assert "groups.canary: 'c9' is not a server of backend 'app'; its servers are: c1, s1, s2" in res["msg"]

    res = traffic(lb, {"groups": GROUPS, "split": {"stable": 95, "canary": 10}}, tmp_path)
    assert res["failed"] and not res["changed"]
    assert "split: the shares must add up to 100, got 105 (stable=95, canary=10)" in res["msg"]

    res = traffic(lb, {"weights": {"c1": -5}}, tmp_path)
    assert res["failed"] and "weights.c1: -5 is not accepted; weights are integers from 0 to 256" in res["msg"]

    res = traffic(lb, {"backend": "nope", "weights": {"c1": 5}}, tmp_path)
    assert res["failed"] and "backend: 'nope' is not a backend" in res["msg"] and "app" in res["msg"]

    res = traffic(lb, {"state": {"c1": "off"}}, tmp_path)
    assert res["failed"] and "state.c1: 'off' is not accepted; states are ready, drain, maint" in res["msg"]
    assert lb.servers_state() == before


def test_flip_to_a_down_server_is_refused(lb, backends, tmp_path):
    backends.servers["c1"].shutdown()
    backends.servers["c1"].server_close()
    wait_for(lambda: lb.stat_status()["c1"].startswith("DOWN"), 10, "c1 DOWN")
    res = traffic(lb, {"groups": GROUPS, "split": {"stable": 0, "canary": 100}}, tmp_path)
    assert res["failed"] and "no server taking traffic (c1 would get traffic but is DOWN" in res["msg"]
    assert lb.weights() == INITIAL
    counts, failures = count(lb.port, 50)
    assert not failures


def test_wait_running_gives_a_server_traffic_once_its_health_check_sees_it_up(lb, backends, tmp_path):
    """c1 is DOWN; it comes back on its port about 2 s into the module run: wait_running waits for HAProxy's
    health check and the change lands in the same run (without the wait the same change gives a DOWN server a
    weight: not_running says so). ansible-playbook takes a second or two to start: c1 comes back 4 s after it."""
    from tests.integration.haproxy.haproxy_kit import _Handler, _Server
    port = backends.servers["c1"].server_address[1]
    backends.servers["c1"].shutdown()
    backends.servers["c1"].server_close()
    wait_for(lambda: lb.stat_status()["c1"].startswith("DOWN"), 10, "c1 DOWN")
    res = traffic(lb, {"weights": {"s1": 45, "s2": 45, "c1": 10}}, tmp_path, check=True)
    assert res["not_running"] == ["c1"] and res["waited"] == 0

    def come_back():
        time.sleep(4)
        srv = _Server(("127.0.0.1", port), _Handler)
        srv.name = "c1"
        backends.servers["c1"] = srv
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    threading.Thread(target=come_back, daemon=True).start()
    res = traffic(lb, {"weights": {"s1": 45, "s2": 45, "c1": 10}, "wait_running": 20}, tmp_path)
    assert res["changed"] and res["not_running"] == [] and res["waited"] >= 1, res
    assert res["before"]["c1"]["op_state"] == "running" and lb.weights() == {"s1": 45, "s2": 45, "c1": 10}
    counts, failures = count(lb.port, 200)
    assert not failures and counts.get("c1", 0) > 0, counts


# --------------------------------------------------------------------------- states, TCP socket, levels

def test_drain_maint_ready_and_tcp_socket(lb, tmp_path):
    lb.set_weights({"s1": 45, "s2": 45, "c1": 10})
    res = traffic(lb, {"socket": lb.tcp, "state": {"c1": "drain"}}, tmp_path)
    assert not res.get("failed"), res.get("msg")
    assert res["address"] == lb.tcp and res["after"]["c1"]["admin_state"] == "drain"
    assert res["after"]["c1"]["status"] == "DRAIN" and res["serving"] == ["s1", "s2"]
    counts, failures = count(lb.port, 100)
    assert not failures and "c1" not in counts

    res = traffic(lb, {"groups": GROUPS, "state": {"stable": "maint", "canary": "ready"}}, tmp_path)
    assert not res.get("failed"), res.get("msg")
    assert lb.servers_state()["s1"][1] & 1 and lb.servers_state()["c1"][1] == 0
    counts, failures = count(lb.port, 50)
    assert not failures and set(counts) == {"c1"}

    res = traffic(lb, {"groups": GROUPS, "state": {"stable": "ready"}}, tmp_path)
    assert not res.get("failed") and res["changed_servers"] == ["s1", "s2"]

    res = traffic(lb, {"socket": "tcp:127.0.0.1:%d" % lb.tcp_operator_port, "weights": {"c1": 0}}, tmp_path)
    assert res["failed"] and "level 'operator'" in res["msg"] and "level admin" in res["msg"]
    assert lb.weights()["c1"] == 10


# --------------------------------------------------------------------------- failing closed

def test_socket_removed_fails_closed(lb, tmp_path):
    lb.set_weights({"s1": 45, "s2": 45, "c1": 10})
    os.unlink(lb.socket_path)
    res = traffic(lb, {"weights": {"c1": 0}}, tmp_path)
    assert res["failed"] and not res["changed"]
    assert "cannot connect to the HAProxy runtime API at unix:%s" % lb.socket_path in res["msg"]
    assert "nothing was sent" in res["msg"]
    # HAProxy still runs with the weights it had (read through the HTTP stats page and the TCP socket)
    assert lb.http_stats_weights() == {"s1": 45, "s2": 45, "c1": 10}
    assert lb.servers_state(("127.0.0.1", lb.tcp_port)) == {"s1": (45, 0, 2), "s2": (45, 0, 2), "c1": (10, 0, 2)}
    counts, failures = count(lb.port, 200)
    assert not failures
    assert_share(counts, 200, ["c1"], 10)


def test_haproxy_stopped_fails_closed(lb, tmp_path):
    lb.stop()
    res = traffic(lb, {"socket": lb.tcp, "groups": GROUPS, "split": {"stable": 0, "canary": 100}}, tmp_path)
    assert res["failed"] and not res["changed"]
    assert "cannot connect to the HAProxy runtime API at %s" % lb.tcp in res["msg"]
    assert "is HAProxy running" in res["msg"] and "nothing was sent" in res["msg"]


@pytest.mark.parametrize("mode,expect", [
    ("drop", "nothing changed"),
    ("partial:1", "servers changed: c1; they were put back"),
])
def test_connection_dies_mid_apply_leaves_weights_as_they_were(lb, tmp_path, mode, expect):
    """A relay in front of the real runtime socket breaks the change session (module run via ansible-playbook)."""
    relay = Relay(lb.socket_path, str(tmp_path / "relay.sock"), mode=mode)
    try:
        res = traffic(lb, {"socket": relay.path, "groups": GROUPS, "split": {"stable": 0, "canary": 100}}, tmp_path)
    finally:
        relay.close()
    assert res["failed"], res
    assert "lost during the change" in res["msg"] and expect in res["msg"], res["msg"]
    assert lb.weights() == INITIAL
    if mode == "partial:1":
        assert res["changed_servers"] == ["c1"] and res["restored"] is True
        assert any("set server app/c1 weight 0" in s for s in relay.sessions), relay.sessions


def test_connection_cut_after_haproxy_applied_everything(lb, tmp_path):
    relay = Relay(lb.socket_path, str(tmp_path / "relay.sock"), mode="cut")
    try:
        res = hr.change_traffic(relay.path, "app", groups=GROUPS, split={"stable": 0, "canary": 100})
    finally:
        relay.close()
    assert res["changed"] and "every change applied" in res["warnings"][0]
    assert lb.weights() == {"s1": 0, "s2": 0, "c1": 100}


def test_socket_removed_between_read_and_apply(lb, tmp_path):
    """The socket disappears after the state was read: nothing is sent, weights stay."""
    client = hr.RuntimeClient(lb.socket_path)
    real_execute = client.execute

    def execute(commands):
        if any(c.startswith("set ") for c in commands):
            os.unlink(lb.socket_path)
        return real_execute(commands)

    client.execute = execute
    with pytest.raises(hr.SocketUnavailable, match="the state was read but the change could not be sent; "
                                                   "nothing changed"):
        hr.change_traffic(None, "app", groups=GROUPS, split={"stable": 0, "canary": 100}, client=client)
    assert lb.servers_state(("127.0.0.1", lb.tcp_port)) == {"s1": (50, 0, 2), "s2": (50, 0, 2), "c1": (0, 0, 2)}
    status, who = request(lb.port)
    assert status == 200 and who in ("s1", "s2")
