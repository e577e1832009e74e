# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""HAProxy runtime API client: parsing real answers, split rounding, validation, the change protocol.

The answers below are verbatim HAProxy 2.6.12 output.  ``FakeHAProxy`` speaks the
same text protocol (one ';'-separated line per session) so that the change
protocol -- read, validate, one apply session, restore -- is exercised without a
socket; tests/integration/haproxy/ runs the same against a real HAProxy.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.stagegate.rollout.plugins.module_utils import haproxy_runtime as hr

STATE_HEADER = ("# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight "
                "srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state "
                "srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl "
                "srv_check_port srv_check_addr srv_agent_addr srv_agent_port")
REAL_STATE = ("1\n" + STATE_HEADER + "\n"
              "4 app 1 s1 127.0.0.1 0 1 50 100 0 15 3 0 14 0 0 0 - 32779 - 0 0 - - 0\n"
              "4 app 2 s2 127.0.0.1 2 0 100 100 2 15 3 2 6 0 0 0 - 34801 - 0 0 - - 0\n"
              "4 app 3 c1 127.0.0.1 2 8 0 0 0 15 3 2 6 0 0 0 - 38615 - 0 0 - - 0\n\n")
STAT_HEADER = ("# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,"
               "weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,"
               "rate_lim,rate_max,check_status,check_code\n")


def stat_line(backend, server, status, weight, bck=0):
    return "%s,%s,0,0,0,0,,0,0,0,,0,,0,0,0,0,%s,%d,%d,%d,0,0,2,0,,1,4,1,,0,,2,0,,0,L7OK,200\n" % (
        backend, server, status, weight, 0 if bck else 1, bck)


# --------------------------------------------------------------------------- a fake HAProxy speaking the protocol

class FakeHAProxy:
    """Emulates the runtime API answers of HAProxy 2.6 for one backend."""

    def __init__(self, servers, backend="app", level="admin"):
        # servers: {name: [weight, admin_flags, op_state]}
        self.backend = backend
        self.servers = dict((n, list(v)) for n, v in servers.items())
        self.level = level
        self.where = "unix:/fake.sock"
        self.sessions = 0
        self.lines = []
        self.fail_connect = False
        self.break_after_apply = None   # None, "before" (nothing runs) or an int (run this many commands, then break)
        self.unreachable_after = None   # sessions after which connecting fails
        self.reject = {}                # command -> error text

    def _state(self):
        rows = ["1", STATE_HEADER]
        for i, (n, (w, adm, op)) in enumerate(sorted(self.servers.items()), 1):
            rows.append("4 %s %d %s 127.0.0.1 %d %d %d 100 2 15 3 2 6 0 0 0 - %d - 0 0 - - 0"
                        % (self.backend, i, n, op, adm, w, 8000 + i))
        return "\n".join(rows) + "\n\n"

    def _stat(self):
        out = STAT_HEADER
        for n, (w, adm, op) in sorted(self.servers.items()):
            status = "MAINT" if adm & 1 else ("DRAIN" if adm & 8 else ("UP" if op == 2 else "DOWN"))
            out += stat_line(self.backend, n, status, w)
        return out + "\n\n"

    def _run(self, cmd):
        if cmd in self.reject:
            return self.reject[cmd] + "\n\n"
        parts = cmd.split()
        if cmd == "show cli level":
            return self.level + "\n\n"
        if parts[:3] == ["show", "servers", "state"]:
            return self._state() if parts[3] == self.backend else "Can't find backend.\n\n"
        if parts[:2] == ["show", "stat"]:
            return self._stat() if parts[2] == self.backend else ""
        if parts[:2] == ["show", "backend"]:
            return "# name\n%s\n\n" % self.backend
        if parts[:2] == ["set", "server"]:
            if self.level != "admin":
                return "Permission denied\n\n"
            be, srv = parts[2].split("/")
            if be != self.backend or srv not in self.servers:
                return "No such server.\n\n"
            if parts[3] == "weight":
                w = int(parts[4])
                if not 0 <= w <= 256:
                    return "Absolute weight can only be between 0 and 256 inclusive.\n\n"
                self.servers[srv][0] = w
            elif parts[3] == "state":
                self.servers[srv][1] = {"ready": 0, "drain": 8, "maint": 1}[parts[4]]
            return "\n"
        return "Unknown command.\n\n"

    def execute(self, commands):
        if self.fail_connect or (self.unreachable_after is not None and self.sessions >= self.unreachable_after):
            raise hr.SocketUnavailable("cannot connect to the HAProxy runtime API at %s: [Errno 2] No such file or "
                                       "directory; nothing was sent" % self.where)
        self.sessions += 1
        self.lines.append(";".join(commands))
        is_change = any(c.startswith("set ") for c in commands)
        if is_change and self.break_after_apply is not None:
            brk = self.break_after_apply
            self.break_after_apply = None
            if brk != "before":
                for c in commands[:brk]:
                    self._run(c)
            raise hr.ConnectionLost("connection broke before the answer was complete: [Errno 104] Connection reset "
                                    "by peer", partial="", sent=True)
        return "".join(self._run(c) for c in commands)


def fake(**servers):
    return FakeHAProxy(servers or {"s1": [100, 0, 2], "s2": [100, 0, 2], "c1": [0, 0, 2]})


# --------------------------------------------------------------------------- addresses

@pytest.mark.parametrize("text,expected", [
    ("/run/haproxy/admin.sock", ("unix", "/run/haproxy/admin.sock")),
    ("unix:/tmp/a.sock", ("unix", "/tmp/a.sock")),
    ("tcp:127.0.0.1:9999", ("tcp", ("127.0.0.1", 9999))),
    ("127.0.0.1:9999", ("tcp", ("127.0.0.1", 9999))),
    ("tcp:[::1]:9999", ("tcp", ("::1", 9999))),
    ("ipv4@10.0.0.1:80", ("tcp", ("10.0.0.1", 80))),
    ("tcp:lb.example.com:9999", ("tcp", ("lb.example.com", 9999))),
])
def test_parse_address(text, expected):
    assert hr.parse_address(text) == expected


@pytest.mark.parametrize("text", ["", "tcp:host", "tcp:host:0", "tcp:host:70000", "host port", None])
def test_parse_address_rejects(text):
    with pytest.raises(hr.ValidationError, match="socket: .*tcp:host:port"):
        hr.parse_address(text)


def test_unreachable_unix_socket_says_nothing_was_sent(tmp_path):
    client = hr.RuntimeClient(str(tmp_path / "gone.sock"), timeout=0.5)
    with pytest.raises(hr.SocketUnavailable, match="nothing was sent") as err:
        client.execute(["show cli level"])
    assert "stats socket" in err.value.msg and "gone.sock" in err.value.msg


def test_commands_with_separators_are_refused():
    client = hr.RuntimeClient("/nonexistent.sock")
    with pytest.raises(ValueError):
        client.execute(["set server app/s1 weight 1;shutdown sessions server app/s1"])


# --------------------------------------------------------------------------- parsing real answers

def test_parse_servers_state_real_answer():
    rows = hr.parse_servers_state(REAL_STATE)
    by = dict((r["server"], r) for r in rows)
    assert set(by) == {"s1", "s2", "c1"}
    assert by["s1"]["admin_state"] == "maint" and by["s1"]["op_state"] == "stopped" and by["s1"]["weight"] == 50
    assert by["s1"]["initial_weight"] == 100
    assert by["s2"]["admin_state"] == "ready" and by["s2"]["op_state"] == "running" and by["s2"]["weight"] == 100
    assert by["c1"]["admin_state"] == "drain" and by["c1"]["weight"] == 0 and by["c1"]["port"] == 38615
    assert all(r["backend"] == "app" for r in rows)


@pytest.mark.parametrize("flags,name", [(0, "ready"), (0x01, "maint"), (0x02, "maint"), (0x04, "maint"),
                                        (0x08, "drain"), (0x10, "drain"), (0x20, "maint"), (0x09, "maint")])
def test_admin_state_bits(flags, name):
    assert hr.admin_state_name(flags) == name


@pytest.mark.parametrize("text", ["", "Can't find backend.\n\n", "1\nno header\n", "2\n# be_id\n"])
def test_parse_servers_state_rejects_other_answers(text):
    with pytest.raises(ValueError):
        hr.parse_servers_state(text)


def test_parse_show_stat_and_merge():
    text = STAT_HEADER + stat_line("app", "s1", "MAINT", 50) + stat_line("app", "s2", "UP", 100) \
        + stat_line("app", "c1", "DRAIN", 0) + stat_line("app", "bk", "UP", 1, bck=1) + "\n\n"
    rows = hr.parse_show_stat(text)
    assert rows[("app", "s2")]["status"] == "UP" and rows[("app", "bk")]["bck"] == "1"
    servers = hr.merge_stat(hr.parse_servers_state(REAL_STATE), rows)
    by = dict((r["server"], r) for r in servers)
    assert by["s1"]["status"] == "MAINT" and by["c1"]["status"] == "DRAIN" and by["s2"]["backup"] is False
    view = hr.server_view(by["s2"])
    assert set(view) >= {"backend", "server", "weight", "admin_state", "op_state", "status"}
    assert view["serving"] is True and hr.server_view(by["c1"])["serving"] is False


def test_merge_stat_keeps_each_servers_counters():
    rows = {("app", "s2"): {"status": "UP", "weight": "100", "bck": "0", "stot": "1200", "hrsp_5xx": "7",
                            "econ": "1", "eresp": "2", "wretr": "3", "wredis": "1"},
            ("app", "s1"): {"status": "MAINT", "weight": "50", "bck": "0", "stot": "", "hrsp_5xx": "x"}}
    by = dict((r["server"], r) for r in hr.merge_stat(hr.parse_servers_state(REAL_STATE), rows))
    expected = {"sessions": 1200, "responses_5xx": 7, "connection_errors": 1, "response_errors": 2, "retries": 3,
                "redispatches": 1}
    assert hr.server_view(by["s2"])["counters"] == expected
    # a counter HAProxy left empty (or a header without it) is None, never a made-up 0
    assert hr.server_view(by["s1"])["counters"]["sessions"] is None
    assert hr.server_view(by["s1"])["counters"]["responses_5xx"] is None


def test_split_responses_real_answer():
    # verbatim answer to: set s1 weight 50; set zz weight 3; set c1 weight 300; set c1 state drain; get weight s1
    text = ("\nNo such server.\n\nAbsolute weight can only be between 0 and 256 inclusive.\n\n\n"
            "50 (initial 100)\n\n")
    answers, rest = hr.split_responses(text, 4)
    assert answers == ["", "No such server.", "Absolute weight can only be between 0 and 256 inclusive.", ""]
    assert rest == "50 (initial 100)\n\n"


def test_split_responses_truncated_is_connection_lost():
    with pytest.raises(hr.ConnectionLost):
        hr.split_responses("\n\n", 3)


# --------------------------------------------------------------------------- split rounding

def groups_of(**sizes):
    return dict((g, ["%s%d" % (g, i) for i in range(n)]) for g, n in sizes.items())


def test_split_90_10_over_two_plus_one():
    w, eff, m = hr.compute_split_weights({"stable": ["s1", "s2"], "canary": ["c1"]}, {"stable": 90, "canary": 10})
    assert w == {"s1": 45, "s2": 45, "c1": 10} and eff == {"stable": 90.0, "canary": 10.0} and m == 1


@pytest.mark.parametrize("stable,canary", [(90, 10), (75, 25), (50, 50), (0, 100), (100, 0), (95, 5), (99, 1)])
def test_split_one_server_each_is_exact(stable, canary):
    w, eff, m = hr.compute_split_weights({"stable": ["s"], "canary": ["c"]}, {"stable": stable, "canary": canary})
    assert eff == {"stable": float(stable), "canary": float(canary)}
    assert (w["s"] == 0) == (stable == 0) and (w["c"] == 0) == (canary == 0)


def test_every_whole_percent_split_is_exact_for_groups_of_up_to_two():
    for ns in (1, 2):
        for nc in (1, 2):
            g = groups_of(stable=ns, canary=nc)
            for p in range(101):
                w, eff, m = hr.compute_split_weights(g, {"stable": 100 - p, "canary": p})
                assert eff["canary"] == p, (ns, nc, p, w)
                assert all(0 <= x <= 256 for x in w.values())


def test_split_bounds_and_documented_worst_case():
    """Weights stay in 0..256, positive shares never get weight 0; 1 % over 4 servers vs 1 is 1.98 % (docstring)."""
    worst = 0.0
    for ns in range(1, 5):
        for nc in range(1, 5):
            g = groups_of(stable=ns, canary=nc)
            for p in range(101):
                w, eff, m = hr.compute_split_weights(g, {"stable": 100 - p, "canary": p})
                assert all(0 <= x <= 256 for x in w.values())
                if p > 0:
                    assert all(w[s] >= 1 for s in g["canary"])
                else:
                    assert all(w[s] == 0 for s in g["canary"])
                worst = max(worst, abs(eff["canary"] - p))
    assert worst == pytest.approx(0.98, abs=0.01)
    w, eff, m = hr.compute_split_weights(groups_of(stable=1, canary=4), {"stable": 99, "canary": 1})
    assert eff["canary"] == pytest.approx(1.98, abs=0.01) and w["stable0"] == 198


def test_split_three_groups_and_fractions():
    w, eff, m = hr.compute_split_weights(groups_of(a=1, b=1, c=1), {"a": 33.4, "b": 33.3, "c": 33.3})
    assert max(abs(eff["a"] - 33.4), abs(eff["b"] - 33.3)) < 0.05
    w, eff, m = hr.compute_split_weights(groups_of(a=1, b=1), {"a": 12.5, "b": 87.5})
    assert eff == {"a": 12.5, "b": 87.5}


def test_split_groups_get_equal_weights_per_server():
    w, eff, m = hr.compute_split_weights(groups_of(stable=3, canary=2), {"stable": 75, "canary": 25})
    assert len({w["stable0"], w["stable1"], w["stable2"]}) == 1 and w["canary0"] == w["canary1"]
    assert abs(eff["canary"] - 25) < 0.2


# --------------------------------------------------------------------------- validation

def errors_of(**kw):
    with pytest.raises(hr.ValidationError) as err:
        hr.validate_request(kw.pop("backend", "app"), **kw)
    return err.value.msg


def test_split_not_adding_up_to_100_names_field_value_and_rule():
    msg = errors_of(groups={"stable": ["s1"], "canary": ["c1"]}, split={"stable": 95, "canary": 10})
    assert "split" in msg and "105" in msg and "add up to 100" in msg and "stable=95" in msg and "canary=10" in msg


@pytest.mark.parametrize("value", [-1, 257, "ten", True, 1.5, None])
def test_bad_weights_named_with_accepted_range(value):
    msg = errors_of(weights={"s1": value})
    assert "weights.s1" in msg and repr(value) in msg and "0 to 256" in msg


def test_weights_as_numeric_strings_are_accepted():
    assert hr.validate_request("app", weights={"s1": "10", "s2": 20.0})["weights"] == {"s1": 10, "s2": 20}


def test_bad_state_names_the_accepted_states():
    msg = errors_of(states={"s1": "off"})
    assert "state.s1" in msg and "'off'" in msg and "ready, drain, maint" in msg


def test_split_structure_errors():
    assert "needs groups" in errors_of(split={"a": 100})
    assert "split.blue" in errors_of(groups={"stable": ["s1"]}, split={"stable": 100, "blue": 0})
    msg = errors_of(groups={"stable": ["s1"], "canary": ["c1"]}, split={"stable": 100})
    assert "no percentage for group(s) canary" in msg
    assert "split.canary" in errors_of(groups={"stable": ["s1"], "canary": ["c1"]},
                                       split={"stable": 110, "canary": -10})
    assert "already in group" in errors_of(groups={"stable": ["s1"], "canary": ["s1"]},
                                           split={"stable": 50, "canary": 50})
    assert "one place only" in errors_of(groups={"stable": ["s1"], "canary": ["c1"]},
                                         split={"stable": 50, "canary": 50}, weights={"c1": 3})
    assert "non-empty list" in errors_of(groups={"stable": []})


def test_names_that_could_inject_commands_are_refused():
    assert "backend" in errors_of(backend="app;shutdown sessions server app/s1")
    assert "weights key" in errors_of(weights={"s1 weight 0;set server app/s2": 1})
    assert "groups.g" in errors_of(groups={"g": ["a\nb"]})


def test_all_errors_reported_together():
    with pytest.raises(hr.ValidationError) as err:
        hr.validate_request("app", weights={"s1": -5}, states={"s2": "off"})
    assert len(err.value.details["errors"]) == 2


def test_group_names_as_state_keys():
    req = hr.validate_request("app", groups={"blue": ["b1", "b2"]}, states={"blue": "drain", "g1": "ready"})
    assert req["states"] == {"b1": "drain", "b2": "drain", "g1": "ready"}


def test_unknown_servers_are_named_with_the_backend_servers():
    servers = fake()._state()
    servers = dict((s["server"], s) for s in hr.parse_servers_state(servers))
    req = hr.validate_request("app", groups={"stable": ["s1", "s2"], "canary": ["c9"]},
                              split={"stable": 90, "canary": 10})
    with pytest.raises(hr.ValidationError) as err:
        hr.resolve_targets(req, servers)
    assert "groups.canary: 'c9' is not a server of backend 'app'; its servers are: c1, s1, s2" in err.value.msg


def test_split_refuses_serving_servers_outside_the_groups():
    f = fake(s1=[100, 0, 2], s2=[100, 0, 2], c1=[0, 0, 2])
    servers = dict((s["server"], s) for s in hr.parse_servers_state(f._state()))
    req = hr.validate_request("app", groups={"stable": ["s1"], "canary": ["c1"]}, split={"stable": 90, "canary": 10})
    with pytest.raises(hr.ValidationError, match="s2 .*in no group"):
        hr.resolve_targets(req, servers)
    req = hr.validate_request("app", groups={"stable": ["s1"], "canary": ["c1"]}, split={"stable": 90, "canary": 10},
                              weights={"s2": 0})
    target, eff, m = hr.resolve_targets(req, servers)
    assert target["s2"]["weight"] == 0 and target["s1"]["weight"] == 90


# --------------------------------------------------------------------------- planning

def test_blue_green_flip_adds_capacity_before_removing_it():
    servers = {"b1": {"weight": 100, "admin_state": "ready"}, "g1": {"weight": 0, "admin_state": "maint"}}
    target = {"b1": {"weight": 0, "admin_state": "drain"}, "g1": {"weight": 100, "admin_state": "ready"}}
    assert hr.plan_commands("app", servers, target) == [
        "set server app/g1 weight 100", "set server app/g1 state ready",
        "set server app/b1 state drain", "set server app/b1 weight 0"]


def test_plan_is_empty_when_nothing_changes():
    servers = {"b1": {"weight": 100, "admin_state": "ready"}}
    assert hr.plan_commands("app", servers, {"b1": {"weight": 100, "admin_state": "ready"}}) == []


# --------------------------------------------------------------------------- the change protocol (fake HAProxy)

SPLIT = dict(groups={"stable": ["s1", "s2"], "canary": ["c1"]})


def run(f, **kw):
    return hr.change_traffic(None, "app", client=f, **kw)


def test_check_mode_reads_only():
    f = fake()
    res = run(f, split={"stable": 90, "canary": 10}, check_mode=True, **SPLIT)
    assert res["changed"] and f.sessions == 1 and not any("set " in ln for ln in f.lines)
    assert res["after"]["c1"]["weight"] == 10 and f.servers["c1"][0] == 0
    assert res["commands"] == ["set server app/c1 weight 10", "set server app/s1 weight 45",
                               "set server app/s2 weight 45"]


def test_apply_then_idempotent():
    f = fake()
    res = run(f, split={"stable": 90, "canary": 10}, **SPLIT)
    assert res["changed"] and f.sessions == 2
    assert [f.servers[n][0] for n in ("s1", "s2", "c1")] == [45, 45, 10]
    assert res["after"]["c1"]["weight"] == 10 and res["before"]["c1"]["weight"] == 0
    assert res["after"]["c1"]["status"] == "UP" and res["elapsed_ms"] >= 0
    assert len([ln for ln in f.lines if "set server" in ln]) == 1  # one session for every command
    again = run(f, split={"stable": 90, "canary": 10}, **SPLIT)
    assert not again["changed"] and again["commands"] == [] and f.sessions == 3


def test_unknown_backend_lists_backends():
    with pytest.raises(hr.ValidationError, match="backend: 'nope' is not a backend .*backends there: app"):
        hr.change_traffic(None, "nope", weights={"s1": 1}, client=fake())


def test_operator_level_socket_is_refused_before_sending():
    f = fake()
    f.level = "operator"
    with pytest.raises(hr.ValidationError, match="level 'operator'.*level admin"):
        run(f, weights={"c1": 5})
    assert not any("set " in ln for ln in f.lines)


def test_no_traffic_guard_names_down_servers():
    f = fake(s1=[100, 0, 2], c1=[0, 0, 0])
    with pytest.raises(hr.ValidationError, match="no server taking traffic .*c1 would get traffic but is DOWN"):
        run(f, groups={"stable": ["s1"], "canary": ["c1"]}, split={"stable": 0, "canary": 100})
    assert f.servers["s1"][0] == 100
    res = run(f, groups={"stable": ["s1"], "canary": ["c1"]}, split={"stable": 0, "canary": 100},
              allow_no_traffic=True)
    assert res["changed"] and f.servers["s1"][0] == 0


def _comes_up_after(f, server, sleeps):
    """A sleep that brings ``server`` up (op_state 2) on its ``sleeps``-th call; returns (sleep, calls)."""
    calls = []

    def sleep(seconds):
        calls.append(seconds)
        if len(calls) == sleeps:
            f.servers[server][2] = 2
    return sleep, calls


def test_wait_running_waits_for_a_starting_server_then_changes_in_the_same_run():
    f = fake(s1=[100, 0, 2], c1=[0, 0, 0])
    sleep, calls = _comes_up_after(f, "c1", 2)
    res = run(f, weights={"s1": 90, "c1": 10}, wait_running=10, sleep=sleep)
    assert calls == [1.0, 1.0] and res["not_running"] == [] and res["waited"] >= 0
    assert res["before"]["c1"]["op_state"] == "running" and f.servers["c1"][0] == 10
    assert len([ln for ln in f.lines if "set server" in ln]) == 1


def test_wait_running_is_bounded_and_the_usual_checks_apply_after_it():
    f = fake(s1=[100, 0, 2], c1=[0, 0, 0])
    calls = []
    res = run(f, weights={"s1": 90, "c1": 10}, wait_running=0.05, sleep=calls.append)
    assert calls and res["not_running"] == ["c1"] and f.servers["c1"][0] == 10  # stable still serves: allowed
    f = fake(s1=[100, 0, 2], c1=[0, 0, 0])
    with pytest.raises(hr.ValidationError, match="c1 would get traffic but is DOWN"):
        run(f, weights={"s1": 0, "c1": 100}, wait_running=0.05, sleep=lambda s: None)
    assert f.servers["s1"][0] == 100 and f.servers["c1"][0] == 0


def test_wait_running_never_waits_in_check_mode_or_when_every_server_runs():
    for servers, check_mode in (({"s1": [100, 0, 2], "c1": [0, 0, 0]}, True),
                                ({"s1": [100, 0, 2], "c1": [0, 0, 2]}, False)):
        f = FakeHAProxy(servers)
        calls = []
        res = run(f, weights={"s1": 90, "c1": 10}, wait_running=10, sleep=calls.append, check_mode=check_mode)
        assert calls == [] and res["waited"] == 0 and f.sessions == (1 if check_mode else 2)


def test_socket_gone_before_reading_sends_nothing():
    f = fake()
    f.fail_connect = True
    with pytest.raises(hr.SocketUnavailable, match="nothing was sent"):
        run(f, weights={"c1": 5})


def test_socket_gone_between_read_and_apply():
    f = fake()
    f.unreachable_after = 1
    with pytest.raises(hr.SocketUnavailable, match="nothing changed") as err:
        run(f, weights={"c1": 5})
    assert err.value.details["changed_servers"] == [] and f.servers["c1"][0] == 0


def test_connection_lost_before_haproxy_ran_anything():
    f = fake()
    f.break_after_apply = "before"
    with pytest.raises(hr.ApplyError, match="lost during the change.*nothing changed") as err:
        run(f, split={"stable": 0, "canary": 100}, **SPLIT)
    assert err.value.details["changed_servers"] == []
    assert [f.servers[n][0] for n in ("s1", "s2", "c1")] == [100, 100, 0]


def test_connection_lost_half_way_is_restored_and_named():
    f = fake()
    f.break_after_apply = 1          # only the first command (c1 weight 100) ran
    with pytest.raises(hr.ApplyError) as err:
        run(f, split={"stable": 0, "canary": 100}, **SPLIT)
    assert "servers changed: c1" in err.value.msg and "put back" in err.value.msg
    assert err.value.details["changed_servers"] == ["c1"] and err.value.details["restored"] is True
    assert [f.servers[n][0] for n in ("s1", "s2", "c1")] == [100, 100, 0]


def test_connection_lost_after_everything_ran_is_success_with_warning():
    f = fake()
    f.break_after_apply = 3
    res = run(f, split={"stable": 0, "canary": 100}, **SPLIT)
    assert res["warnings"] and "every change applied" in res["warnings"][0]
    assert [f.servers[n][0] for n in ("s1", "s2", "c1")] == [0, 0, 100]


def test_connection_lost_and_haproxy_gone_reports_what_may_have_changed():
    f = fake()
    f.break_after_apply = 1
    f.unreachable_after = 2
    with pytest.raises(hr.ApplyError, match="could not be reached again.*may have applied") as err:
        run(f, split={"stable": 0, "canary": 100}, **SPLIT)
    assert "s1 weight=100 state=ready" in err.value.msg and err.value.details["changed_servers"] is None


def test_rejected_command_restores_the_servers_that_changed():
    f = fake()
    f.reject["set server app/s1 weight 0"] = ("Backend is using a static LB algorithm and only accepts weights "
                                              "'0%' and '100%'.")
    with pytest.raises(hr.ApplyError) as err:
        run(f, split={"stable": 0, "canary": 100}, **SPLIT)
    msg = err.value.msg
    assert "static LB algorithm" in msg and "servers changed: c1, s2" in msg and err.value.details["restored"]
    assert [f.servers[n][0] for n in ("s1", "s2", "c1")] == [100, 100, 0]


def test_rejected_command_without_restore_leaves_servers():
    f = fake()
    f.reject["set server app/s1 weight 0"] = "Permission denied"
    with pytest.raises(hr.ApplyError, match="left as they are"):
        run(f, split={"stable": 0, "canary": 100}, restore_on_failure=False, **SPLIT)
    assert f.servers["c1"][0] == 100


def test_states_drain_maint_ready():
    f = fake()
    res = run(f, groups={"stable": ["s1", "s2"]}, states={"stable": "drain", "c1": "maint"}, allow_no_traffic=True)
    assert res["after"]["s1"]["admin_state"] == "drain" and res["after"]["c1"]["admin_state"] == "maint"
    assert res["after"]["s1"]["status"] == "DRAIN"
    res = run(f, states={"s1": "ready", "s2": "ready", "c1": "ready"})
    assert all(f.servers[n][1] == 0 for n in f.servers)


def test_connection_lost_while_reading_says_nothing_changed():
    f = fake()

    def broken(commands):
        raise hr.ConnectionLost("connection broke before the answer was complete: timed out", partial="", sent=True)

    f.execute = broken
    with pytest.raises(hr.ConnectionLost, match="while reading the state; nothing was sent that changes anything"):
        run(f, weights={"c1": 5})


def test_client_sends_one_line_and_reads_to_eof(tmp_path):
    import socket
    import threading
    path = str(tmp_path / "rt.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    got = []

    def serve():
        conn, dummy = srv.accept()
        data = b""
        while not data.endswith(b"\n"):
            data += conn.recv(1024)
        got.append(data)
        conn.sendall(b"\n\n50 (initial 100)\n\n")
        conn.close()

    th = threading.Thread(target=serve)
    th.start()
    out = hr.RuntimeClient("unix:" + path, timeout=2).execute(["set server app/s1 weight 50", "get weight app/s1"])
    th.join(2)
    srv.close()
    assert got == [b"set server app/s1 weight 50;get weight app/s1\n"]
    assert out == "\n\n50 (initial 100)\n\n"
