# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bad-input table: each bad value, across the module_utils every module and phase validates with, is refused
with an error that names the field and the value (and, where it says so, what is accepted), and the cases that
touch files leave them byte for byte as they were. The phases' own refusals on real hosts (plans, order, lock,
approval) are in tests/integration/hosts/test_phases_hosts.py; docs/reliability.md lists both."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import os

import pytest

from ansible_collections.stagegate.rollout.plugins.module_utils import (
    atomic_file, canary_judge, drift_monitor, durations, feature_flags, haproxy_runtime, jetstream_config,
    judge_session, ledger, metric_checks, query_template, rollout_lock, rollout_target, supervisord_program)

TARGET = {
    "kind": "hosts", "name": "codex",
    "hosts": {"group": "app", "command": "/opt/codex/bin/codex --port {port}", "ports": {"stable": 8101, "canary": 8102}},
    "load_balancer": {"type": "haproxy", "host": "lb1", "socket": "/run/haproxy/admin.sock", "backend": "app"},
    "metrics": {"provider": {"type": "prometheus", "url": "http://prom:9090"}, "requests": "http_requests_total",
                "latency_bucket": "http_request_duration_seconds_bucket"},
}
GROUPS = {"app": ["app1", "app2"], "all": ["app1", "app2", "lb1"]}
INVENTORY_HOSTS = ["app1", "app2", "lb1"]
SCHEMA = {"CODEX_PUBLISH_ENABLED": {"type": "bool", "default": False},
          "GRAPH_API_ENABLED": {"type": "bool", "default": False, "min_phase": "advanced"},
          "LIMIT": {"type": "int", "default": 1, "min": 1, "max": 10},
          "PORTAL": {"type": "enum", "choices": ["external", "build-only"], "default": "external"},
          "REPOS": {"type": "list", "default": [], "pattern": "^[a-z-]+/[a-z-]+$"}}
PROVIDER = {"type": "prometheus", "url": "http://prom:9090"}


def target(path, value):
    t = copy.deepcopy(TARGET)
    node = t
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return lambda: rollout_target.validate(t, GROUPS, INVENTORY_HOSTS)


def gate(**check):
    return lambda: metric_checks.validate_checks([dict({"name": "g", "query": "vector(0)"}, **check)], provider=PROVIDER)


def judge_analyses(*analyses):
    """The canary judge's O(analyses) check (run before any read): raises what it finds."""
    queries = {arm: {"requests": "sum(events_total{track=\"%s\"})" % arm} for arm in ("baseline", "canary")}
    items = [dict({"name": "events", "queries": queries, "canary_share": 0.2}, **a) for a in analyses]

    def call():
        problem = judge_session.analyses_problem(items)
        if problem:
            raise ValueError(problem)
    return call


def consumer(**params):
    return lambda: jetstream_config.build_consumer_config(dict({"stream": "EVENTS", "name": "codex"}, **params))


# (case, what is called, the error class, what the message must contain: the field and the value)
CASES = [
    # the rollout target (rollout_target module, every phase's first check)
    ("target: unknown kind", target(["kind"], "vms"), rollout_target.TargetError, ["kind", "vms", "hosts"]),
    ("target: service name", target(["name"], "Codex Service"), rollout_target.TargetError,
     ["rollout_target.name", "'Codex Service'", "accepted"]),
    ("target: no app host group", target(["hosts", "group"], KeyError), rollout_target.TargetError, ["group", "hosts"]),
    ("target: group not in the inventory", target(["hosts", "group"], "web"), rollout_target.TargetError,
     ["rollout_target.hosts.group", "'web'", "app"]),
    ("target: one port for both slots", target(["hosts", "ports"], {"stable": 8101, "canary": 8101}),
     rollout_target.TargetError, ["rollout_target.hosts.ports", "8101"]),
    ("target: port 0", target(["hosts", "ports"], {"stable": 0, "canary": 8102}), rollout_target.TargetError,
     ["rollout_target.hosts.ports.stable", "0", "1..65535"]),
    ("target: load balancer not in the inventory", target(["load_balancer", "host"], "lb9"),
     rollout_target.TargetError, ["rollout_target.load_balancer.host", "'lb9'", "accepted"]),
    ("target: load balancer type", target(["load_balancer", "type"], "nginx"), rollout_target.TargetError,
     ["type", "nginx", "haproxy"]),
    ("target: metrics provider type", target(["metrics", "provider"], {"type": "graphite", "url": "http://x"}),
     rollout_target.TargetError, ["type", "graphite", "prometheus"]),
    ("target: misspelt option", target(["hosts", "comand"], "x"), rollout_target.TargetError, ["hosts.comand", "command"]),
    ("target: command without {port}", target(["hosts", "command"], "/opt/codex --port {prot}"),
     rollout_target.TargetError, ["rollout_target.hosts.command", "{prot}", "{port}"]),
    ("target: NATS without stream", target(["nats"], {"servers": ["nats://n:4222"]}), rollout_target.TargetError,
     ["stream", "nats"]),
    ("target: not a mapping", lambda: rollout_target.validate(["codex"], GROUPS, INVENTORY_HOSTS),
     rollout_target.TargetError, ["rollout_target", "list"]),
    ("batches: size 0", lambda: rollout_target.batches(["a", "b"], [0, "100%"]), rollout_target.TargetError,
     ["rollout_production.batches[0]", "0", "accepted"]),
    ("batches: 150 %", lambda: rollout_target.batches(["a", "b"], ["150%"]), rollout_target.TargetError,
     ["rollout_production.batches[0]", "150%"]),
    ("canary weight 120 %", lambda: rollout_target.weights({"a": {"stable": "a_s", "canary": "a_c"}}, 120),
     rollout_target.TargetError, ["120", "0..100"]),
    # feature flags (feature_flags module; every phase's preflight, deploy_hosts)
    ("flags: unknown flag", lambda: feature_flags.resolve(SCHEMA, {"CODEX_TELEPORT": True}, phase="canary"),
     feature_flags.FlagError, ["flags.CODEX_TELEPORT", "unknown", "CODEX_PUBLISH_ENABLED"]),
    ("flags: not a bool", lambda: feature_flags.resolve(SCHEMA, {"CODEX_PUBLISH_ENABLED": "maybe"}, phase="canary"),
     feature_flags.FlagError, ["flags.CODEX_PUBLISH_ENABLED", "'maybe'", "bool"]),
    ("flags: on before its phase", lambda: feature_flags.resolve(SCHEMA, {"GRAPH_API_ENABLED": True}, phase="canary"),
     feature_flags.FlagError, ["flags.GRAPH_API_ENABLED", "advanced", "canary"]),
    ("flags: int above max", lambda: feature_flags.resolve(SCHEMA, {"LIMIT": 11}, phase="canary"),
     feature_flags.FlagError, ["flags.LIMIT", "11", "10"]),
    ("flags: enum value", lambda: feature_flags.resolve(SCHEMA, {"PORTAL": "intranet"}, phase="canary"),
     feature_flags.FlagError, ["flags.PORTAL", "'intranet'", "external"]),
    ("flags: list item pattern", lambda: feature_flags.resolve(SCHEMA, {"REPOS": ["Not A Repo"]}, phase="canary"),
     feature_flags.FlagError, ["flags.REPOS", "Not A Repo"]),
    ("flags: schema type", lambda: feature_flags.validate_schema({"X": {"type": "float"}}), feature_flags.FlagError,
     ["schema.X.type", "'float'", "bool"]),
    ("flags: unknown phase", lambda: feature_flags.resolve(SCHEMA, {}, phase="prod"), feature_flags.FlagError,
     ["phase", "'prod'", "staging"]),
    # JetStream retention and replay (jetstream_stream, jetstream_consumer, the phases' retention step)
    ("retention: max_age in words", lambda: jetstream_config.parse_duration("72 hours", "max_age"),
     jetstream_config.JetStreamConfigError, ["max_age", "'72 hours'", "72h"]),
    ("retention: max_bytes unit", lambda: jetstream_config.parse_size("10 gigs", "max_bytes"),
     jetstream_config.JetStreamConfigError, ["max_bytes", "'10 gigs'", "10GB"]),
    ("retention: max_msgs -5", lambda: jetstream_config.parse_count(-5, "max_msgs"),
     jetstream_config.JetStreamConfigError, ["max_msgs", "-5", "-1 for unlimited"]),
    ("stream name with a dot", lambda: jetstream_config.check_name("bad.name", "name"),
     jetstream_config.JetStreamConfigError, ["name", "'bad.name'", "'.'"]),
    ("subject with an empty token", lambda: jetstream_config.check_subject("a..b", "subjects[0]"),
     jetstream_config.JetStreamConfigError, ["subjects[0]", "'a..b'"]),
    ("replay from 'yesterday'", lambda: jetstream_config.parse_rfc3339("yesterday", "replay.from_time"),
     jetstream_config.JetStreamConfigError, ["replay.from_time", "'yesterday'", "RFC 3339"]),
    ("consumer name with a space", consumer(name="my consumer"), jetstream_config.JetStreamConfigError,
     ["name", "'my consumer'"]),
    ("consumer deliver policy", consumer(deliver_policy="sometimes"), jetstream_config.JetStreamConfigError,
     ["deliver_policy", "sometimes"]),
    # HAProxy traffic (haproxy_traffic, the phases' weight changes)
    ("weight 300", lambda: haproxy_runtime.validate_request("app", weights={"canary": 300}),
     haproxy_runtime.ValidationError, ["weights.canary", "300", "0 to 256"]),
    ("weight 'ten'", lambda: haproxy_runtime.validate_request("app", weights={"canary": "ten"}),
     haproxy_runtime.ValidationError, ["weights.canary", "'ten'", "0 to 256"]),
    ("server state 'paused'", lambda: haproxy_runtime.validate_request("app", states={"canary": "paused"}),
     haproxy_runtime.ValidationError, ["state.canary", "'paused'", "ready, drain, maint"]),
    ("runtime socket 'tcp:host'", lambda: haproxy_runtime.parse_address("tcp:host"),
     haproxy_runtime.ValidationError, ["socket", "'tcp:host'", "tcp:host:port"]),
    ("server address port 99999", lambda: haproxy_runtime.parse_server_address("10.0.0.1:99999"),
     haproxy_runtime.ValidationError, ["addresses", "'10.0.0.1:99999'"]),
    ("wait_running -1", lambda: haproxy_runtime.change_traffic("unix:/nonexistent", "app", weights={"c": 1},
                                                               wait_running=-1),
     haproxy_runtime.ValidationError, ["wait_running", "-1", "0 or more"]),
    ("split adding up to 120", lambda: haproxy_runtime.validate_request(
        "app", groups={"stable": ["s1"], "canary": ["c1"]}, split={"stable": 60, "canary": 60}),
     haproxy_runtime.ValidationError, ["split", "120", "100"]),
    # metric gates (metric_gate, the phases' gates)
    ("gate: no checks", lambda: metric_checks.validate_checks([], provider=PROVIDER), metric_checks.CheckSpecError,
     ["checks", "[]"]),
    ("gate: between with min above max", gate(between=[5, 1]), metric_checks.CheckSpecError,
     ["checks[0] (g).between", "5", "1"]),
    ("gate: window '5 minutes'", gate(lt=1, window="5 minutes"), metric_checks.CheckSpecError,
     ["checks[0] (g).window", "'5 minutes'", "5m"]),
    ("gate: provider URL ftp://", lambda: metric_checks.validate_checks(
        [{"name": "g", "query": "vector(0)", "lt": 1}], provider={"type": "prometheus", "url": "ftp://x"}),
     metric_checks.CheckSpecError, ["provider.url", "'ftp://x'", "http://"]),
    ("gate: no threshold", gate(), metric_checks.CheckSpecError, ["checks[0] (g)", "no criterion", "lt"]),
    ("gate: threshold 'low'", gate(lt="low"), metric_checks.CheckSpecError, ["checks[0] (g).lt", "'low'", "number"]),
    ("gate: unknown variable", lambda: metric_checks.validate_checks(
        [{"name": "g", "query": "rate(x[${windw}])", "lt": 1}], provider=PROVIDER),
     metric_checks.CheckSpecError, ["checks[0] (g).query", "${windw}"]),
    ("gate: on_no_data 'ignore'", lambda: metric_checks.validate_checks(
        [{"name": "g", "query": "vector(0)", "lt": 1}], provider=PROVIDER, on_no_data="ignore"),
     metric_checks.CheckSpecError, ["on_no_data", "'ignore'", "fail"]),
    ("query window '5 minutes'", lambda: durations.parse_duration("5 minutes"), ValueError,
     ["window", "'5 minutes'", "5m"]),
    ("timeout -3 s", lambda: durations.parse_seconds(-3, "timeout"), ValueError, ["timeout", "-3"]),
    ("query variable injection", lambda: query_template.validate_variables({"window": "5m; drop"}), ValueError,
     ["vars.window", "'5m; drop'"]),
    # the canary judge and the drift monitor
    ("judge: alpha 1.5", lambda: canary_judge.CanaryJudge(alpha=1.5), canary_judge.JudgeError,
     ["alpha", "1.5", "between 0 and 1"]),
    ("judge: canary share 0", lambda: canary_judge.CanaryJudge(canary_share=0), canary_judge.JudgeError,
     ["canary_share", "0"]),
    ("judge: misspelt option", lambda: canary_judge.CanaryJudge(margni=2), canary_judge.JudgeError,
     ["margni", "accepted"]),
    ("judge: analyses name 'x y'", judge_analyses({"name": "x y"}), ValueError,
     ["analyses[0].name", "'x y'", "letters, digits, _ and -"]),
    ("judge: analyses name twice", judge_analyses({}, {}), ValueError, ["analyses[1].name", "'events'", "unique"]),
    ("judge: analyses share 1.5", judge_analyses({}, {"name": "jobs", "canary_share": 1.5}), ValueError,
     ["analyses[1].canary_share", "1.5", "(0, 1)"]),
    ("judge: analyses queries without canary", judge_analyses({"queries": {"baseline": {"requests": "r"}}}),
     ValueError, ["analyses[0].queries.canary", "None", "requests"]),
    ("drift: k -1", lambda: drift_monitor.Cusum(target=0.01, sigma=0.005, k=-1), drift_monitor.DriftError,
     ["k", "-1"]),
    ("drift: h 0", lambda: drift_monitor.Cusum(target=0.01, sigma=0.005, h=0), drift_monitor.DriftError, ["h", "0"]),
    ("judge: max_requests -1", lambda: canary_judge.CanaryJudge(max_requests=-1), canary_judge.JudgeError,
     ["max_requests", "-1"]),
    ("flags: requires an undeclared flag", lambda: feature_flags.validate_schema(
        {"A": {"type": "bool", "requires": ["B"]}}), feature_flags.FlagError, ["schema.A.requires", "'B'"]),
    ("drift: sigma 0", lambda: drift_monitor.Cusum(target=0.01, sigma=0), drift_monitor.DriftError, ["sigma", "0"]),
    # the ledger, the lock, supervisord
    ("ledger: empty release", lambda: ledger.build_record("", "canary", "gate"), ledger.LedgerError, ["release"]),
    ("ledger: evidence a list", lambda: ledger.build_record("v2", "canary", "gate", evidence=["x"]),
     ledger.LedgerError, ["evidence", "list"]),
    ("ledger: reason of 5000 characters", lambda: ledger.build_record("v2", "canary", "gate", reason="x" * 5000),
     ledger.LedgerError, ["reason", "5000", "4096"]),
    ("ledger: step a number", lambda: ledger.build_record("v2", "canary", "gate", step=1.5), ledger.LedgerError,
     ["step", "1.5"]),
    ("lock: ttl 0", lambda: rollout_lock.acquire("/nonexistent/l.lock", "t", {}, 0), rollout_lock.LockError,
     ["ttl", "0"]),
    ("lock: empty token", lambda: rollout_lock.acquire("/nonexistent/l.lock", "", {}, 60), rollout_lock.LockError,
     ["token"]),
    ("supervisord: state 'running'", lambda: supervisord_program.program_steps("running", True, "RUNNING", False,
                                                                               False),
     ValueError, ["state", "'running'", "started, stopped, absent"]),
]


def test_the_table_has_at_least_sixty_cases():
    assert len(CASES) >= 60, len(CASES)
    assert len(set(c[0] for c in CASES)) == len(CASES), "case names are unique"


@pytest.mark.parametrize("call,error,needles", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_refused_naming_the_field_and_the_value(call, error, needles):
    with pytest.raises(error) as raised:
        call()
    message = str(raised.value)
    missing = [n for n in needles if n not in message]
    assert not missing, "%r does not name %s" % (message, missing)


# ----- refusals that touch files leave them as they were ------------------------------------------------------
def _snapshot(directory):
    out = {}
    for root, dummy, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, directory)] = fh.read()
    return out


def test_a_refused_ledger_append_changes_no_byte(tmp_path):
    path = str(tmp_path / "ledger.jsonl")
    book = ledger.Ledger(path)
    book.append(ledger.build_record("v2", "canary", "phase_start", decision="start")[0])
    before = _snapshot(str(tmp_path))
    with pytest.raises(ledger.LedgerError):
        book.append(ledger.build_record("v2", "canary", "gate", reason="x" * 5000)[0])
    with open(path, "ab") as fh:  # a torn tail: appends are refused until a person repairs it
        fh.write(b'{"seq": 2, "torn')
    torn = _snapshot(str(tmp_path))
    with pytest.raises(ledger.LedgerError):
        book.append(ledger.build_record("v2", "canary", "gate", decision="pass")[0])
    assert _snapshot(str(tmp_path)) == torn and torn != before


def test_a_refused_lock_leaves_the_holders_lock(tmp_path):
    path = str(tmp_path / "codex.lock")
    rollout_lock.acquire(path, "run-a", {"release": "v2", "phase": "canary"}, 600)
    before = _snapshot(str(tmp_path))
    with pytest.raises(rollout_lock.LockError, match="held by canary of v2"):
        rollout_lock.acquire(path, "run-b", {"release": "v4", "phase": "staging"}, 600)
    with pytest.raises(rollout_lock.LockError, match="ttl"):
        rollout_lock.acquire(path, "run-b", {}, -1)
    assert _snapshot(str(tmp_path)) == before


def test_a_refused_flag_set_writes_no_env_file(tmp_path):
    path = str(tmp_path / "service.env")
    with open(path, "w") as fh:
        fh.write("CODEX_PUBLISH_ENABLED=true\n")
    before = _snapshot(str(tmp_path))
    with pytest.raises(feature_flags.FlagError):
        flags = feature_flags.resolve(SCHEMA, {"CODEX_PUBLISH_ENABLED": "maybe"}, phase="canary")
        atomic_file.atomic_write(path, feature_flags.render_env(flags))
    assert _snapshot(str(tmp_path)) == before
