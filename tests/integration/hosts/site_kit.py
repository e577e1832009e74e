# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A user's site for the phase tests: the INSTALLED collection, real SSH app hosts, NATS, HAProxy, Prometheus.

    site = Site(workdir, collections_path).start()        # app1..app3: sshd on 127.0.0.11-13
    rc, out = site.play("canary", "v2")                   # ansible-playbook stagegate.rollout.canary, as a user

``build_and_install_collection`` builds the collection from this checkout and installs it into a fresh
collections path; every playbook runs with ``ANSIBLE_COLLECTIONS_PATH`` pointing only there, from a working
directory outside the repository, against an inventory written the way docs/targets.md and
inventories/examples/hosts tell a user to. Each app host is an sshd on its own loopback address (root by key);
deploy_hosts runs the demo service (its code from this checkout by PYTHONPATH) in a stable (8101) and a canary
(8102) slot of each under supervisord. HAProxy (one server per host and slot, admin socket), Prometheus
(scraping every slot with ``slot`` labels, logging every query), nats-server with the JetStream stream, and a
load generator (HTTP through HAProxy, repository events to NATS) run on loopback. Used by tests/integration/hosts
(three hosts) and tests/integration/faults (one host, faults injected).

Not real: the hosts share this machine (one kernel, one filesystem: the services' publish log is one file)
and their code is the demo service rather than a released package.
"""
import asyncio
import http.client
import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import threading
import time

import pytest
import yaml

from demo.loadgen import LoadGen
from demo.stack.haproxy import HAProxy, runtime_command
from demo.stack.local import STREAM, SUBJECT_PREFIX, SUBJECTS, _ensure_stream
from demo.stack.nats import NatsServer
from demo.stack.prometheus import Prometheus
from demo.testkit import processes_mentioning, read_env_file
from tests.integration.hosts.ssh_hosts import SSHD, SshHosts, accepts, alive

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.path.dirname(sys.executable)
PORTS = {"stable": 8101, "canary": 8102}
GRAPH_OFFSET = 10  # the Graph API of a slot: its port + 10 (8111, 8112), clear of the other slot's port
SERVICE = "codex"
NATS_DURABLE = "codex"  # this inventory's own durable (the demo's is "org-brain")
JOB = "codex_hosts"  # this inventory's own Prometheus job: every query must carry it
CANARY_REPOS = ["gitguard/platform-core", "gitguard/api-gateway", "gitguard/auth-service"]
# A flag that only this inventory's schema knows: it must reach the env files.
MARKER = "CODEX_SSH_HOSTS_MARKER"


def skip_unless_a_site_can_run():
    """Skip the calling test when this machine cannot run the site (not root, a tool missing)."""
    if os.geteuid() != 0:
        pytest.skip("SSH app hosts need root (sshd on port 22, /run/sshd, root login)")
    if not os.access(SSHD, os.X_OK):
        pytest.skip("%s is missing: install Debian's openssh-server (scripts/setup.sh does)" % SSHD)
    for tool in ("haproxy", "prometheus", "nats-server", "supervisord"):
        if not (os.path.exists(os.path.join(BIN, tool)) or shutil.which(tool)):
            pytest.skip("%s is not installed" % tool)


def build_and_install_collection(tmp):
    """``<tmp>/collections``: the collection built from this checkout and installed there, nothing else."""
    t0 = time.monotonic()
    out = subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(tmp)],
                         cwd=ROOT, env=ansible_env(None), capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    tarballs = list(tmp.glob("stagegate-rollout-*.tar.gz"))
    assert len(tarballs) == 1, out.stdout
    path = tmp / "collections"
    out = subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", str(tarballs[0]), "-p",
                          str(path), "--no-deps", "--force"], cwd=str(tmp), env=ansible_env(None), capture_output=True, text=True,
                         timeout=300, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    installed = path / "ansible_collections" / "stagegate" / "rollout"
    assert (installed / "MANIFEST.json").is_file() and not installed.is_symlink()
    # with the collections path pointing only there, this copy is the only stagegate.rollout Ansible sees
    out = subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "list", "stagegate.rollout", "--format",
                          "json"], cwd=str(tmp), env=ansible_env(str(path)), capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert list(json.loads(out.stdout)) == [str(path / "ansible_collections")], out.stdout
    sys.stderr.write("collection built and installed in %.1fs\n" % (time.monotonic() - t0))
    return str(path)


def ansible_env(collections_path):
    """ansible's environment: no ANSIBLE_* or PYTHONPATH from outside; the collections path only ``collections_path``
    (site-packages is still scanned: the venv's ansible package gives community.general)."""
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith("ANSIBLE_") and k != "PYTHONPATH")
    env.update(PATH=BIN + os.pathsep + os.environ.get("PATH", ""), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="True", ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_PIPELINING="1",
               ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_LOCALHOST_WARNING="False", PYTHONUNBUFFERED="1")
    if collections_path:
        env["ANSIBLE_COLLECTIONS_PATH"] = collections_path
    if os.environ.get("STAGEGATE_PROFILE_TASKS"):  # a developer's knob: task times in the playbook logs
        env["ANSIBLE_CALLBACKS_ENABLED"] = "ansible.posix.profile_tasks"
    return env


# ----- the site: SSH hosts, NATS, HAProxy, Prometheus, load, the user's inventory ----------------------------
def _servers(hosts):
    return [("%s_%s" % (name, slot), "%s:%d" % (addr, PORTS[slot]), 100 if slot == "stable" else 0)
            for name, addr in sorted(hosts.items()) for slot in ("stable", "canary")]


class Site:
    """Everything the test starts, and stops again (``close``)."""

    def __init__(self, workdir, collections_path, addresses=("127.0.0.11", "127.0.0.12", "127.0.0.13"), analysis=8,
                 phases=None, rollout_vars=None):
        """``analysis``: seconds per canary step and per production/advanced batch; ``phases``: {rollout_<phase>:
        {key: value}} laid over the plan of each phase (None: the key taken out); ``rollout_vars``: more variables
        of the user's inventory."""
        self.workdir = str(workdir)
        self.collections_path = collections_path
        self.addresses = tuple(addresses)
        self.analysis = analysis
        self.phases_over = phases or {}
        self.rollout_vars = rollout_vars or {}
        self.inventory = os.path.join(self.workdir, "inventory")  # the user's inventory: nothing else in it
        self.logs = os.path.join(self.workdir, "logs")
        self.state_dir = os.path.join(self.workdir, "state")
        self.ledger_path = os.path.join(self.state_dir, "ledger.jsonl")
        self.publish_dir = os.path.join(self.workdir, "publish")
        self.faults_file = os.path.join(self.workdir, "faults.env")
        self.query_log = os.path.join(self.workdir, "prometheus", "queries.log")
        self.ssh = self.nats = self.haproxy = self.prometheus = self.loadgen = None
        self.timings = []
        self.lines = []                   # the last play's output: (seconds since its start, line)
        self.closed = False
        self.load_report = None

    # lifecycle
    def start(self):
        for d in (self.logs, self.publish_dir):
            os.makedirs(d, exist_ok=True)
        with open(self.faults_file, "w", encoding="utf-8") as fh:
            fh.write("# v3 is bad once it publishes externally\nDEMO_FAULT_ERROR_RATE__V3=0.2\n"
                     "DEMO_FAULT_SCOPE__V3=external\n")
        self.ssh = SshHosts(os.path.join(self.workdir, "ssh"), addresses=self.addresses).__enter__()
        taken = ["%s:%d" % (a, p) for a in self.ssh.hosts.values() for p in PORTS.values() if accepts(a, p)]
        assert not taken, "slot ports already taken: %s" % taken
        self.nats = NatsServer(os.path.join(self.workdir, "nats")).start()
        asyncio.run(_ensure_stream(self.nats.url))
        self.haproxy = HAProxy(os.path.join(self.workdir, "haproxy"), backends={"app": _servers(self.ssh.hosts)})
        self.haproxy.start()
        targets = [("%s:%d" % (addr, PORTS[slot]), {"slot": slot, "host": name})
                   for name, addr in sorted(self.ssh.hosts.items()) for slot in ("stable", "canary")]
        self.prometheus = Prometheus(os.path.join(self.workdir, "prometheus"), {JOB: targets})
        # every query Prometheus answers is logged: the gates' and the judge's queries can be read back
        cfg = os.path.join(self.workdir, "prometheus", "prometheus.yml")
        with open(cfg, encoding="utf-8") as fh:
            text = fh.read()
        with open(cfg, "w", encoding="utf-8") as fh:
            fh.write(text.replace("global:\n", "global:\n  query_log_file: %s\n" % self.query_log, 1))
        self.prometheus.start()
        self.write_inventory()
        return self

    def start_load(self):
        self.loadgen = LoadGen(self.haproxy.url, rate=20, workers=16, nats_url=self.nats.url, subject=SUBJECT_PREFIX,
                               events_rate=4, events_log=os.path.join(self.workdir, "events.jsonl"),
                               run_id="hosts%x" % int(time.time())).start()

    def stop_load(self):
        if self.loadgen is not None and self.load_report is None:
            self.load_report = self.loadgen.stop()
        return self.load_report

    def supervisor_conf(self, name):
        return os.path.join(self.base_dir(name), "supervisor", "supervisord.conf")

    def close(self):
        """Stop everything; returns what is still running (pids and command lines mentioning the work dir)."""
        if self.closed:
            return []
        self.closed = True
        errors = []
        self.stop_load()
        for name in sorted(self.ssh.hosts) if self.ssh else []:
            errors += shutdown_supervisord(self.supervisor_conf(name))
        if self.ssh is not None:
            try:
                self.ssh.__exit__(None, None, None)
            except AssertionError as err:
                errors.append(str(err))
        for comp in (self.prometheus, self.haproxy, self.nats):
            if comp is not None:
                comp.stop()
        deadline = time.monotonic() + 15
        while processes_mentioning(self.workdir) and time.monotonic() < deadline:
            time.sleep(0.2)
        return errors + ["left running: %d %s" % p for p in processes_mentioning(self.workdir)]

    # the user's inventory (docs/targets.md, inventories/examples/hosts)
    def base_dir(self, name):
        return os.path.join(self.workdir, "hosts", name)

    def write_inventory(self):
        group_vars = os.path.join(self.inventory, "group_vars", "all")
        os.makedirs(group_vars)
        app = self.ssh.inventory_hosts(sys.executable)
        for name in app:
            app[name]["codex_base_dir"] = self.base_dir(name)  # a host variable: where this host keeps codex
        write_yaml(os.path.join(self.inventory, "hosts.yml"), {"all": {"children": {"app": {"hosts": app}}}},
                   "# %d app host(s) over SSH (sshd on %s); HAProxy is on the controller (localhost)"
                   % (len(app), ", ".join(self.addresses)))
        command = ("%s -m demo.service --host {{ ansible_host }} --port {port} --graph-port-offset %d "
                   "--env-file {env_file} --version {version} --slot {instance} --nats-url %s --stream %s "
                   "--publish-dir %s --faults-file %s" % (sys.executable, GRAPH_OFFSET, self.nats.url, STREAM,
                                                          self.publish_dir, self.faults_file))
        target = {
            "kind": "hosts",
            "name": SERVICE,
            "hosts": {
                "group": "app",
                "base_dir": "{{ codex_base_dir }}",
                "command": command,
                "workdir": ROOT,
                "environment": {"PYTHONPATH": ROOT, "DEMO_DURABLE": NATS_DURABLE},
                "ports": dict(PORTS),
                "health_host": "{{ ansible_host }}",
                "health_retries": 30,
                "supervisor": "supervisord",
                "supervisord_bin": os.path.join(BIN, "supervisord"),
                "supervisorctl_bin": os.path.join(BIN, "supervisorctl"),
            },
            "load_balancer": {"type": "haproxy", "host": "localhost", "socket": self.haproxy.socket_path,
                              "backend": "app", "servers": "{host}_{slot}"},
            "metrics": {
                "provider": {"type": "prometheus", "url": self.prometheus.url},
                "requests": "demo_http_requests_total",
                "latency_bucket": "demo_http_request_duration_seconds_bucket",
                "selector": 'job="%s",route!="/healthz"' % JOB,
                "error_selector": 'code=~"5.."',
                "stable_selector": 'slot="stable"',
                "canary_selector": 'slot="canary"',
                "version_label": "version",
            },
            "nats": {"servers": [self.nats.url], "stream": STREAM, "subjects": list(SUBJECTS),
                     "durable": NATS_DURABLE, "ack_wait": "5s"},
        }
        write_yaml(os.path.join(group_vars, "target.yml"), {"rollout_target": target},
                   "# where codex runs: the app hosts of group app, HAProxy, Prometheus, NATS (docs/targets.md)")
        with open(os.path.join(ROOT, "inventories", "demo", "group_vars", "all", "flags.yml"), encoding="utf-8") as fh:
            schema = yaml.safe_load(fh)["rollout_flag_schema"]
        schema[MARKER] = {"type": "str", "default": "none", "pattern": "^[a-z0-9-]+$", "min_phase": "canary",
                          "description": "Only in this inventory: which phase wrote the env file."}
        write_yaml(os.path.join(group_vars, "rollout.yml"), dict({
            "rollout_state_dir": self.state_dir,
            "rollout_ledger_path": self.ledger_path,
            "rollout_metrics_path": os.path.join(self.state_dir, "stagegate_rollout.prom"),
            "rollout_flag_schema": schema,
            "rollout_install_flags": {"CODEX_PUBLISH_ENABLED": True, "CODEX_PUBLISH_PORTAL": "external",
                                      "CODEX_REPO_INCLUDE_LIST": []},
            "codex_canary_repositories": CANARY_REPOS,
            # sentinels (the advanced phase: every one on every host; monitor: zero results = kill switch)
            "rollout_sentinels": [{"name": "docs %s" % r, "path": "/api/docs/%s" % r, "results": "policy_refs"}
                                  for r in CANARY_REPOS[:2]],
            "rollout_killswitch_flag": "CODEX_PUBLISH_ENABLED",
        }, **self.rollout_vars), "# the controller's evidence and codex's flags")
        every = {"CODEX_PUBLISH_ENABLED": True, "CODEX_PUBLISH_PORTAL": "external", "CODEX_REPO_INCLUDE_LIST": [],
                 "POLICY_TRANSPARENCY_ENABLED": True, "MERMAID_GRAPHS_ENABLED": True, "SLO_MONITORING_ENABLED": True}
        window = 'job="%s",route!="/healthz",slot="stable",version="{{ rollout_version }}"' % JOB
        phases = {
            "rollout_staging": {
                "flags": {"CODEX_PUBLISH_ENABLED": True, "CODEX_PUBLISH_PORTAL": "build-only",
                          "CODEX_REPO_INCLUDE_LIST": []},
                "retention": {"max_age": "72h", "max_msgs": -1, "max_bytes": -1},
                # a shadow consumer of its own (new events only): staging takes no event from production
                "environment": {"DEMO_DURABLE": NATS_DURABLE + "-staging", "DEMO_DELIVER": "new"},
                "bake_seconds": 3,
                "probes": [{"name": "docs %s" % r, "path": "/api/docs/%s" % r, "status": "200-499"}
                           for r in CANARY_REPOS],
            },
            "rollout_canary": {
                "flags": dict(every, CODEX_REPO_INCLUDE_LIST="{{ codex_canary_repositories }}",
                              **{MARKER: "canary-on-three-hosts"}),
                "retention": {"max_age": "72h", "max_msgs": -1, "max_bytes": -1},
                "thresholds": {"error_rate": 0.05, "p99_latency_ms": 5000},
                "steps": [{"weight": 10, "analysis_seconds": self.analysis}, {"weight": 25, "analysis_seconds": self.analysis},
                          {"weight": 50, "analysis_seconds": self.analysis},
                          {"weight": 100, "analysis_seconds": self.analysis, "judge": False}],
                "judge": {"alpha": 0.01, "interval": 2},
            },
            "rollout_production": {
                "flags": dict(every, **{MARKER: "production-on-three-hosts"}),
                "retention": {"max_age": "72h", "max_msgs": -1, "max_bytes": -1},
                "retention_after": {"max_age": "24h", "max_msgs": 1000000, "max_bytes": "10GB"},
                "batches": [1, "100%"],
                "analysis_seconds": self.analysis,
                "thresholds": {"error_rate": 0.01, "p99_latency_ms": 3000},
            },
            "rollout_advanced": {
                "flags": dict(every, GRAPH_API_ENABLED=True, GRAPH_API_CORS_ORIGINS="*", CHAOS_ENGINEERING_ENABLED=True,
                              **{MARKER: "advanced-on-three-hosts"}),
                "retention": {"max_age": "24h", "max_msgs": 1000000, "max_bytes": "10GB"},
                # one batch (CI time: a batch is minutes of Ansible work; production shows batches and gates between)
                "batches": ["100%"],
                "analysis_seconds": self.analysis,
                "probes": [
                    {"name": "graph API repos", "path": "/graph/repos", "port_offset": GRAPH_OFFSET,
                     "headers": {"Origin": "https://portal.example.invalid"},
                     "require_headers": ["access-control-allow-origin"]},
                    {"name": "chaos endpoint", "path": "/api/chaos"},
                ],
                # on the last app host: its stable slot SIGKILLed, then frozen 3 s; a gate with its metrics unreachable
                "chaos": {"min_success": 0.95, "drills": [
                    {"name": "kill a stable slot", "kind": "kill_slot", "recovery_seconds": 30, "max_error_ratio": 0.02},
                    {"name": "freeze a consumer", "kind": "freeze_consumer", "seconds": 3, "recovery_seconds": 30,
                     "max_pending": 20},
                    {"name": "metrics unreachable", "kind": "metrics_unreachable"},
                ]},
                "gates": [
                    {"name": "advanced error rate",
                     "query": "(sum(increase(demo_http_requests_total{%s,code=~\"5..\"}[$window])) or vector(0)) / "
                              "sum(increase(demo_http_requests_total{%s}[$window]))" % (window, window),
                     "lt": 0.01},
                    {"name": "advanced API p99 latency",
                     "query": "1000 * histogram_quantile(0.99, sum by (le) (rate("
                              "demo_http_request_duration_seconds_bucket{%s}[$window])))" % window,
                     "lt": 500},
                ],
            },
        }
        for phase, over in self.phases_over.items():  # a key given as None is taken out of the plan
            phases[phase] = dict((k, v) for k, v in dict(phases[phase], **over).items() if v is not None)
        write_yaml(os.path.join(group_vars, "phases.yml"), phases, "# the plan of each phase")

    # running the collection's playbooks, as a user does
    def command(self, name, version, extra=None, approve=True):
        """argv of ``ansible-playbook stagegate.rollout.<name>`` for ``version`` (see :meth:`play` for ``approve``)."""
        ev_file = os.path.join(self.workdir, "extra-vars-%s-%s-%d.json" % (name, version, len(self.timings) + 1))
        ev = dict({"rollout_version": version}, **(extra or {}))
        if approve is True:
            ev["rollout_auto_approve"] = True
        with open(ev_file, "w", encoding="utf-8") as fh:
            json.dump(ev, fh)
        return [os.path.join(BIN, "ansible-playbook"), "-i", self.inventory, "stagegate.rollout.%s" % name,
                "-e", "@" + ev_file]

    def play(self, name, version, timeout=900, extra=None, approve=True):
        """Run ``stagegate.rollout.<name>``. ``approve``: True passes rollout_auto_approve (the approval happened
        elsewhere); False runs with no terminal (stdin /dev/null) and no approval; a string runs it on a terminal
        (a pty) where a person types that string at the approval prompt; None on a terminal where nobody types."""
        argv = self.command(name, version, extra, approve)
        t0 = time.monotonic()
        if approve is None or isinstance(approve, str):
            rc, out = on_a_terminal(argv, self.workdir, ansible_env(self.collections_path), approve, timeout)
        else:
            rc, out = self._run_timed(argv, timeout)
        return self.record(name, version, rc, out, time.monotonic() - t0)

    def _run_timed(self, argv, timeout):
        """Run argv without a terminal; ``self.lines``: (seconds since the start, line) as each line arrived."""
        t0 = time.monotonic()
        self.lines = []
        proc = subprocess.Popen(argv, cwd=self.workdir, env=ansible_env(self.collections_path),  # pylint: disable=consider-using-with
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            for line in proc.stdout:
                self.lines.append((time.monotonic() - t0, line.rstrip("\n")))
        finally:
            killer.cancel()
            proc.wait()
        return proc.returncode, "".join(line + "\n" for dummy, line in self.lines)

    def spawn(self, name, version, extra=None):
        """Start ``stagegate.rollout.<name>`` (approved) in the background, in a session of its own (so that the
        test can kill the controller with all its workers); :meth:`record` its output when it ended."""
        log = open(os.path.join(self.workdir, "spawned-%s-%s.out" % (name, version)), "w+", encoding="utf-8")
        return subprocess.Popen(self.command(name, version, extra), cwd=self.workdir,  # pylint: disable=consider-using-with
                                env=ansible_env(self.collections_path), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True), log

    def run_as_awx(self, name, version, extra=None, timeout=600):
        """Run ``stagegate.rollout.<name>`` the way AWX runs a job: ``ansible-runner run`` with a private data dir
        (the user's inventory, the survey's answers and the approval node's rollout_auto_approve as extravars, the
        user's one-line project playbook importing the collection's), no stdin. -> (rc, job events in order)."""
        pdd = os.path.join(self.workdir, "runner-%s-%s-%d" % (name, version, len(self.timings) + 1))
        os.makedirs(os.path.join(pdd, "project"))
        os.makedirs(os.path.join(pdd, "env"))
        os.symlink(self.inventory, os.path.join(pdd, "inventory"))
        with open(os.path.join(pdd, "project", name + ".yml"), "w", encoding="utf-8") as fh:
            fh.write("---\n- name: %s\n  ansible.builtin.import_playbook: stagegate.rollout.%s\n" % (name, name))
        with open(os.path.join(pdd, "env", "extravars"), "w", encoding="utf-8") as fh:
            json.dump(dict({"rollout_version": version, "rollout_auto_approve": True}, **(extra or {})), fh)
        t0 = time.monotonic()
        proc = subprocess.run([os.path.join(BIN, "ansible-runner"), "run", pdd, "-p", name + ".yml", "--ident", "job"],
                              cwd=self.workdir, env=ansible_env(self.collections_path), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout, check=False)
        artifacts = os.path.join(pdd, "artifacts", "job")
        with open(os.path.join(artifacts, "rc"), encoding="utf-8") as fh:
            assert fh.read().strip() == str(proc.returncode)
        events = []
        for path in os.listdir(os.path.join(artifacts, "job_events")):
            with open(os.path.join(artifacts, "job_events", path), encoding="utf-8") as fh:
                events.append(json.load(fh))
        events.sort(key=lambda e: e["counter"])
        self.record(name + " (ansible-runner)", version, proc.returncode, proc.stdout + proc.stderr, time.monotonic() - t0)
        return proc.returncode, events

    def record(self, name, version, rc, out, seconds):
        log = os.path.join(self.logs, "%02d-%s-%s.log" % (len(self.timings) + 1, version, name))
        with open(log, "w", encoding="utf-8") as fh:
            fh.write(out)
        self.timings.append((name, version, rc, round(seconds, 1)))
        sys.stderr.write("%s %s: rc %d in %.1fs (%s)\n" % (name, version, rc, seconds, log))
        # the installed copy ran, never the checkout
        assert ROOT + "/roles" not in out and ROOT + "/plugins" not in out, out[-3000:]
        return rc, out

    # what the site looks like now
    def weights(self):
        out = {}
        for server, dummy_host, dummy_port in _servers(self.ssh.hosts):
            txt = runtime_command(self.haproxy.socket_path, "get weight app/%s" % server)
            out[server] = int(txt.split()[0])
        return out

    def versions(self):
        """{host: {slot: version or None}} from each slot's /healthz on the host's own address."""
        return dict((name, dict((slot, healthz(addr, PORTS[slot])) for slot in PORTS))
                    for name, addr in sorted(self.ssh.hosts.items()))

    def env(self, name, slot):
        return read_env_file(os.path.join(self.base_dir(name), slot, "service.env"))

    def program_state(self, name, slot):
        p = subprocess.run([os.path.join(BIN, "supervisorctl"), "-c", self.supervisor_conf(name), "status",
                            "%s-%s" % (SERVICE, slot)], capture_output=True, text=True, timeout=30, check=False)
        fields = p.stdout.split()
        return fields[1] if len(fields) > 1 else p.stdout.strip()

    def program_pid(self, name, slot):
        p = subprocess.run([os.path.join(BIN, "supervisorctl"), "-c", self.supervisor_conf(name), "pid",
                            "%s-%s" % (SERVICE, slot)], capture_output=True, text=True, timeout=30, check=False)
        return int(p.stdout.strip()) if p.stdout.strip().isdigit() else None

    def ledger(self):
        with open(self.ledger_path, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]

    def queries(self):
        """The PromQL Prometheus was asked, from its query log."""
        out = []
        if os.path.exists(self.query_log):
            with open(self.query_log, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        out.append(json.loads(line)["params"]["query"])
                    except (ValueError, KeyError):
                        pass
        return out


class WeightWatch:
    """HAProxy's weights read every ``period`` seconds: [(time.time(), {server: weight})] at each change; reads
    while the socket is gone are skipped."""

    def __init__(self, site, period=0.1):
        self.site, self.period, self.changes, self.stopped = site, period, [], threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopped.wait(self.period):
            try:
                w = self.site.weights()
            except Exception:  # pylint: disable=broad-except  # the socket gone: skip this read
                continue
            if not self.changes or self.changes[-1][1] != w:
                self.changes.append((time.time(), w))

    def canary(self, host="app1"):
        return self.changes[-1][1]["%s_canary" % host] if self.changes else None

    def wait_canary(self, weight, timeout=300, host="app1"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.canary(host) == weight:
                return time.time()
            time.sleep(0.05)
        raise AssertionError("canary of %s never reached %s %%: %s" % (host, weight, self.changes[-5:]))

    def after(self, t):
        return [(ts, w) for ts, w in self.changes if ts >= t]

    def close(self):
        self.stopped.set()
        self.thread.join(5)


def task_blocks(lines, title):
    """The output of each task whose name contains ``title``: [(seconds, line)] from its TASK header up to the
    next header (the task's own lines: progress, results)."""
    blocks, cur = [], None
    for t, line in lines:
        if line.startswith("TASK [") or line.startswith("PLAY RECAP"):
            cur = [(t, line)] if title in line else None
            if cur is not None:
                blocks.append(cur)
        elif cur is not None:
            cur.append((t, line))
    return blocks


def longest_silence(block):
    """The longest time between two lines of a block, and the line that ended it."""
    gaps = [(b[0] - a[0], b[1]) for a, b in zip(block, block[1:])]
    return max(gaps) if gaps else (0.0, "")


def on_a_terminal(argv, cwd, env, typed, timeout):
    """Run ``argv`` on a new pty (its controlling terminal, foreground: ansible's prompt can read it); once the
    approval prompt shows, a person types ``typed`` and Enter (None: nobody types). Returns (rc, output)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: ansible-playbook on the terminal
        try:
            os.chdir(cwd)
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    out, typed_at, deadline = b"", None, time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready = select.select([fd], [], [], 0.5)[0]
            if ready:
                try:
                    data = os.read(fd, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                out += data
            if typed is not None and typed_at is None and b"to approve" in out:
                time.sleep(1.0)  # after ansible flushed the terminal's input buffer
                os.write(fd, typed.encode() + b"\r")
                typed_at = time.monotonic()
        else:
            os.kill(pid, 9)
    finally:
        os.close(fd)
    status = os.waitpid(pid, 0)[1]
    return os.waitstatus_to_exitcode(status), out.decode("utf-8", "replace").replace("\r\n", "\n")


def write_yaml(path, data, comment):
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("---\n%s\n" % comment)
        yaml.safe_dump(data, fh, default_flow_style=False, sort_keys=False, width=120)


def healthz(addr, port):
    conn = http.client.HTTPConnection(addr, port, timeout=5)
    try:
        conn.request("GET", "/healthz")
        resp = conn.getresponse()
        body = resp.read()
        return json.loads(body).get("version") if resp.status == 200 else "HTTP %d" % resp.status
    except OSError:
        return None
    finally:
        conn.close()


def shutdown_supervisord(conf):
    """Stop the supervisord of one host (it stops its programs) and wait until it and they are gone."""
    pid_file = os.path.join(os.path.dirname(conf), "supervisord.pid")
    if not os.path.exists(pid_file):
        return []
    try:
        pid = int(open(pid_file, encoding="utf-8").read().strip())
    except (OSError, ValueError):
        return []
    if not alive(pid):
        return []
    children = [int(p) for p in os.listdir("/proc") if p.isdigit() and _ppid(int(p)) == pid]
    subprocess.run([os.path.join(BIN, "supervisorctl"), "-c", conf, "shutdown"], capture_output=True, timeout=60,
                   check=False)
    deadline = time.monotonic() + 30
    while any(alive(p) for p in [pid] + children) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [p for p in [pid] + children if alive(p)]
    return ["supervisord %s left pids %s" % (conf, left)] if left else []


def _ppid(pid):
    try:
        with open("/proc/%d/stat" % pid, encoding="utf-8") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def open_site(workdir, collections_path, **kwargs):
    """A started :class:`Site` (closed again when starting fails)."""
    skip_unless_a_site_can_run()
    site = Site(workdir, collections_path, **kwargs)
    try:
        return site.start()
    except BaseException:
        site.close()
        raise


# ----- checks ----------------------------------------------------------------------------------------------------
def expected_weights(hosts, canary):
    """{server: weight}: ``canary`` is {host: canary weight} (stable gets the rest)."""
    out = {}
    for h in hosts:
        out["%s_canary" % h] = canary[h]
        out["%s_stable" % h] = 100 - canary[h]
    return out


def entries(site, release, phase=None, event=None):
    return [e for e in site.ledger() if e["release"] == release and (phase is None or e["phase"] == phase)
            and (event is None or e["event"] == event)]


def assert_ok(rc, out):
    assert rc == 0, out[-6000:]
    assert not re.search(r"unreachable=[1-9]|failed=[1-9]", out), out[-6000:]


def verify_ledger(path):
    from ansible_collections.stagegate.rollout.plugins.module_utils.ledger import Ledger
    res = Ledger(path).verify()
    assert res["valid"], res
    return res
