"""The phase playbooks (FQCN, stagegate.rollout.<phase>) against the real local stack (NATS JetStream,
Prometheus, HAProxy, the demo service in a stable and a canary slot under supervisord), through the demo's
inventory (inventories/demo: kind hosts on localhost), as a user runs them.

A good release v2 is promoted through staging, canary, production and advanced (weights, flags in
the env files, JetStream retention per phase, ledger verified); a bad release v3 (20 % errors once it
publishes externally, from the stack's faults file) is rolled back at the canary: canary weight 0,
canary slot stopped, the failed gate with its observed value in the ledger, the ledger still valid;
editing one ledger line makes verify fail. ``rollout_shortened`` keeps it to a few minutes.
"""
import asyncio
import json
import os
import shutil
import sys
import time

import pytest

from demo.loadgen import LoadGen
from demo.stack import playbook
from demo.stack.local import LocalStack
from demo.stack import slot as slots
from demo.testkit import read_env_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
HAS_RETENTION_ROLE = os.path.isdir(os.path.join(ROOT, "roles", "jetstream_retention"))
CANARY_REPOS = ["gitguard/platform-core", "gitguard/api-gateway", "gitguard/auth-service",
                "gitguard/notification-service", "gitguard/metrics-collector"]
ROLLOUT_RETENTION = {"max_age": 72 * 3600, "max_msgs": -1, "max_bytes": -1}
STEADY_RETENTION = {"max_age": 24 * 3600, "max_msgs": 1000000, "max_bytes": 10 * 10 ** 9}

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not shutil.which("ansible-playbook", path=os.path.dirname(sys.executable)
                                                  + os.pathsep + os.environ.get("PATH", "")),
                                 reason="ansible-playbook not installed")]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    wd = tmp_path_factory.mktemp("phases")
    with LocalStack(str(wd)) as st:
        assert st.wait_scraped(30), "Prometheus did not scrape the stable slot"
        info = st.info
        with open(info["faults_file"], "w", encoding="utf-8") as fh:
            fh.write("DEMO_FAULT_ERROR_RATE__V3=0.2\nDEMO_FAULT_SCOPE__V3=external\n")
        lg = LoadGen(info["haproxy"]["frontend_url"], rate=40, workers=24, nats_url=info["nats"]["url"],
                     subject=info["nats"]["subject_prefix"], events_rate=5,
                     events_log=os.path.join(str(wd), "events.jsonl"), run_id="phases%x" % int(time.time())).start()
        time.sleep(3)
        try:
            yield info
        finally:
            lg.stop()


def run(info, name, version, timeout=600, extra=None):
    """ansible-playbook -i <stack>/inventory stagegate.rollout.<name> -e rollout_version=<version> ..."""
    ev = {"rollout_auto_approve": True, "demo_shortened": True}
    ev.update(extra or {})
    args = () if HAS_RETENTION_ROLE else ("--skip-tags", "retention")
    return playbook.run(info, name, version, extra=ev, args=args, timeout=timeout,
                        log=os.path.join(info["workdir"], "log-%s-%s.txt" % (version, name)))


def weights(info):
    from demo.run_demo import haproxy_weights
    return haproxy_weights(info)


def env_of(info, slot):
    return read_env_file(info["slots"][slot]["env_file"])


def retention(info):
    import nats

    async def go():
        nc = await nats.connect(info["nats"]["url"])
        try:
            c = (await nc.jetstream().stream_info(info["nats"]["stream"])).config
            return {"max_age": int(c.max_age or 0), "max_msgs": c.max_msgs, "max_bytes": c.max_bytes}
        finally:
            await nc.close()
    return asyncio.run(go())


def ledger(info):
    with open(os.path.join(info["workdir"], "ledger.jsonl"), encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def verify(path):
    from ansible_collections.stagegate.rollout.plugins.module_utils.ledger import verify_bytes
    with open(path, "rb") as fh:
        return verify_bytes(fh.read())


def check_retention(info, expected):
    if HAS_RETENTION_ROLE:
        assert retention(info) == expected


def test_good_release_promoted_through_all_phases(stack):
    info = stack
    rc, out = run(info, "staging", "v2")
    assert rc == 0, out[-3000:]
    assert weights(info)["canary"] == 0
    assert not slots.status(info, "canary")["running"], "staging leaves no build-only version running"
    assert env_of(info, "canary")["CODEX_PUBLISH_PORTAL"] == "build-only"
    check_retention(info, ROLLOUT_RETENTION)

    rc, out = run(info, "canary", "v2")
    assert rc == 0, out[-3000:]
    assert weights(info) == {"stable": 0, "canary": 100}
    env = env_of(info, "canary")
    assert env["CODEX_REPO_INCLUDE_LIST"] == ",".join(CANARY_REPOS)
    assert env["CODEX_PUBLISH_PORTAL"] == "external" and env["POLICY_TRANSPARENCY_ENABLED"] == "true"
    assert env["GRAPH_API_ENABLED"] == "false"
    check_retention(info, ROLLOUT_RETENTION)
    steps = [e for e in ledger(info) if e["release"] == "v2" and e["phase"] == "canary" and e["event"] == "gate"]
    assert len(steps) == 4 and all(e["decision"] == "pass" for e in steps)

    rc, out = run(info, "production", "v2")
    assert rc == 0, out[-3000:]
    assert weights(info) == {"stable": 100, "canary": 0}
    assert slots.status(info, "stable")["version"] == "v2"
    assert not slots.status(info, "canary")["running"]
    env = env_of(info, "stable")
    assert env["CODEX_REPO_INCLUDE_LIST"] == "" and env["MERMAID_GRAPHS_ENABLED"] == "true"
    check_retention(info, STEADY_RETENTION)

    rc, out = run(info, "advanced", "v2")
    assert rc == 0, out[-3000:]
    env = env_of(info, "stable")
    assert env["GRAPH_API_ENABLED"] == "true" and env["CHAOS_ENGINEERING_ENABLED"] == "true"
    assert weights(info) == {"stable": 100, "canary": 0}
    check_retention(info, STEADY_RETENTION)

    promoted = [e["phase"] for e in ledger(info) if e["release"] == "v2" and e["event"] == "promote"]
    assert promoted == ["staging", "canary", "production", "advanced"]
    with open(os.path.join(info["workdir"], "stagegate_rollout.prom"), encoding="utf-8") as fh:
        assert 'stagegate_rollout_progress_ratio{release="v2"} 1\n' in fh.read()
    assert verify(os.path.join(info["workdir"], "ledger.jsonl"))["valid"]


def test_bad_release_rolled_back_at_canary(stack):
    info = stack
    rc, out = run(info, "staging", "v3")
    assert rc == 0, "the fault only shows once v3 publishes externally: " + out[-3000:]
    rc, out = run(info, "canary", "v3")
    assert rc != 0, "the bad canary must fail the play"
    assert weights(info) == {"stable": 100, "canary": 0}
    assert not slots.status(info, "canary")["running"]
    assert slots.status(info, "stable")["version"] == "v2"
    entries = [e for e in ledger(info) if e["release"] == "v3" and e["phase"] == "canary"]
    events = [e["event"] for e in entries]
    assert "rollback" in events and "promote" not in events
    failed = [e for e in entries if e["event"] in ("gate", "judge") and e["decision"] == "rollback"]
    assert failed, "the failed gate or judge verdict is recorded"
    gate = next((e for e in failed if e["event"] == "gate"), None)
    if gate is not None:
        bad = [r for r in gate["evidence"]["results"] if not r["passed"]]
        assert bad and bad[0]["observed"] is not None
    rollback = next(e for e in entries if e["event"] == "rollback")
    assert rollback["evidence"]["replay"]["replay"]["recreated"]
    # the stable flags are back in the canary slot's env file
    assert env_of(info, "canary") == env_of(info, "stable")
    path = os.path.join(info["workdir"], "ledger.jsonl")
    assert verify(path)["valid"]
    # the rollback is counted in the rollout's own metrics
    with open(os.path.join(info["workdir"], "stagegate_rollout.prom"), encoding="utf-8") as fh:
        metrics = fh.read()
    assert 'stagegate_rollout_rollbacks_total{mode="emergency",phase="canary",release="v3"} 1' in metrics, metrics
    # editing one line breaks the chain
    with open(path, encoding="utf-8") as fh:
        lines = fh.readlines()
    tampered = os.path.join(info["workdir"], "ledger-tampered.jsonl")
    lines[1] = lines[1].replace('"decision":"pass"', '"decision":"fail"', 1).replace(
        '"decision":"start"', '"decision":"skip"', 1)
    with open(tampered, "w", encoding="utf-8") as fh:
        fh.writelines(lines)
    assert not verify(tampered)["valid"]


def test_status_and_killswitch(stack):
    info = stack
    rc, out = run(info, "status", "v2", timeout=120)
    assert rc == 0, out[-3000:]
    assert '"ledger_valid": true' in out or "'ledger_valid': True" in out or '"ledger_valid": True' in out
    rc, out = run(info, "killswitch", "v2", extra={"reason": "test"}, timeout=120)
    assert rc == 0, out[-3000:]
    assert env_of(info, "stable")["CODEX_PUBLISH_ENABLED"] == "false"
    assert ledger(info)[-1]["event"] == "killswitch"
    rc, out = run(info, "killswitch", "v2", extra={"reason": "back on", "killswitch_value": True},
                  timeout=120)
    assert rc == 0, out[-3000:]
    assert env_of(info, "stable")["CODEX_PUBLISH_ENABLED"] == "true"


def _canary_plan():
    import yaml
    with open(os.path.join(ROOT, "inventories", "demo", "group_vars", "all", "phases.yml"), encoding="utf-8") as fh:
        return yaml.safe_load(fh)["rollout_canary"]


def _bad_plans():
    plan = _canary_plan()
    steps = plan["steps"]
    descending = [dict(steps[1]), dict(steps[0])] + [dict(s) for s in steps[2:]]
    too_high = [dict(s) for s in steps[:-1]] + [dict(steps[-1], weight=150)]
    no_threshold = [{"name": "canary error rate", "query": "vector(0)"}]
    return [
        ("unknown flag", {"flags": dict(plan["flags"], CODEX_TELEPORT_ENABLED=True)}, "CODEX_TELEPORT_ENABLED"),
        ("flag before its phase", {"flags": dict(plan["flags"], GRAPH_API_ENABLED=True)}, "GRAPH_API_ENABLED"),
        ("weights not ascending", {"steps": descending}, "rollout_canary.steps"),
        ("weight above 100", {"steps": too_high}, "rollout_canary.steps"),
        ("gate without threshold", {"gates": no_threshold}, "rollout_canary.gates"),
        ("two thresholds", {"gates": [{"name": "g", "query": "vector(0)", "lt": 1, "gt": 0}]}, "rollout_canary.gates"),
        ("malformed retention", {"retention": {"max_age": "72 hours", "max_msgs": -1, "max_bytes": -1}}, "max_age"),
        ("unknown plan key", {"stpes": steps}, "stpes"),
        ("never staged", {"rollout_version": "v9"}, "fingerprint"),
    ]


@pytest.mark.parametrize("case", [c[0] for c in _bad_plans()])
def test_bad_inventory_refused_before_any_change(stack, case):
    """Each bad plan fails the canary playbook naming the variable, and nothing changed."""
    info = stack
    extra, needle = next((e, n) for c, e, n in _bad_plans() if c == case)

    def state():
        path = os.path.join(info["workdir"], "ledger.jsonl")
        return (len(ledger(info)) if os.path.exists(path) else 0, weights(info), env_of(info, "stable"),
                env_of(info, "canary"), slots.status(info, "canary")["running"])
    before = state()
    extra = dict(extra)
    version = extra.pop("rollout_version", "v2")
    rc, out = run(info, "canary", version, timeout=180,
                  extra={"rollout_rerun": True, "rollout_canary": dict(_canary_plan(), **extra)})
    assert rc != 0, out[-3000:]
    assert needle in out, out[-3000:]
    assert "rolled back" not in out, "a bad plan must be refused before anything runs: " + out[-3000:]
    assert state() == before


def test_monitor_sentinels_and_drift(stack):
    """stagegate.rollout.monitor: the sentinels answer on the stable slot, the CUSUM state is kept, nothing is killed."""
    info = stack
    rc, out = run(info, "monitor", "v2", timeout=180)
    assert rc == 0, out[-3000:]
    assert "3/3 returned results" in out, out[-3000:]
    assert os.path.exists(os.path.join(info["workdir"], "rollout-state", "drift-stable-error-ratio.json"))
    assert env_of(info, "stable")["CODEX_PUBLISH_ENABLED"] == "true"


def test_site_runs_the_phases_in_order_and_a_settled_release_changes_nothing(stack):
    """stagegate.rollout.site imports the four phases in order; for v2, promoted in every phase by the first test,
    each phase is settled: rc 0, nothing changes (no new ledger entry but none, weights and slots as they were)."""
    info = stack
    before = (len(ledger(info)), weights(info), slots.status(info, "stable")["version"], env_of(info, "stable"))
    rc, out = run(info, "site", "v2", timeout=600)
    assert rc == 0, out[-4000:]
    for phase in ("staging", "canary", "production", "advanced"):
        assert "%s of v2 is settled" % phase in out, out[-4000:]
    assert (len(ledger(info)), weights(info), slots.status(info, "stable")["version"], env_of(info, "stable")) == before
    assert verify(os.path.join(info["workdir"], "ledger.jsonl"))["valid"]
