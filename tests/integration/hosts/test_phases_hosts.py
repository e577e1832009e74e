# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The four phases of the INSTALLED collection on three real SSH app hosts, with a user's own inventory.

What is real: the collection is built (``ansible-galaxy collection build``) and installed into a fresh
collections path, and every playbook runs with ``ANSIBLE_COLLECTIONS_PATH`` pointing only there (the venv's
``ansible`` package gives community.general; the checkout is never on the path), from a working directory
outside the repository, against an inventory written outside the repository the way docs/targets.md and
inventories/examples/hosts tell a user to. The app hosts app1..app3 are three sshd on 127.0.0.11-13 (root by
key): Ansible reaches them over SSH, and deploy_hosts runs the demo service (the test's app, its code from
this checkout by PYTHONPATH) in a stable (8101) and a canary (8102) slot of each under supervisord. HAProxy
(one server per host and slot, admin socket), Prometheus (scraping all six slots with ``slot`` labels),
nats-server with the JetStream stream, and a load generator sending HTTP through HAProxy and repository
events to NATS all run on loopback.

Not real: the hosts share this machine (one kernel, one filesystem: the services' publish log is one file)
and their code is the demo service rather than a released package.

The test installs v1, promotes v2 through staging, canary, production (two host batches, gates between
them) and advanced, then rolls a bad v3 (20 % errors once it publishes externally) back at the canary on
every host, and checks after each run HAProxy's weights, the version of every slot (/healthz), the flags
in every env file and the ledger. v3's staging first finds an interrupted attempt (injected: a phase_start
without outcome, 25 % on one canary) and puts the traffic to 0 % and records it aborted, and it is approved
by a person typing the version on a terminal (a pty). Then, each refused before any change (ledger,
weights, versions and env files compared): the bad-plan table, production of v3 (its canary rolled back),
a second rollout while another holds the lock, a phase nobody approved (no terminal, or the wrong word
typed); site on the settled v2 changes nothing; monitor, status and the kill switch. At the end the ledger
verifies, every event was processed exactly once by a healthy version and no process is left behind.
"""
import asyncio
import collections
import http.client
import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time

import pytest
import yaml

from demo.loadgen import LoadGen
from demo.stack.haproxy import HAProxy, runtime_command
from demo.stack.local import DURABLE, STREAM, SUBJECT_PREFIX, SUBJECTS, _ensure_stream
from demo.stack.nats import NatsServer
from demo.stack.prometheus import Prometheus
from demo.testkit import consumer_info, read_env_file
from tests.integration.hosts.ssh_hosts import SSHD, SshHosts, accepts, alive

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.path.dirname(sys.executable)
EXAMPLE = os.path.join(ROOT, "inventories", "examples", "hosts")
PORTS = {"stable": 8101, "canary": 8102}
GRAPH_OFFSET = 10  # the Graph API of a slot: its port + 10 (8111, 8112), clear of the other slot's port
SERVICE = "codex"
NATS_DURABLE = "codex"  # this inventory's own durable (the demo's is "org-brain")
JOB = "codex_hosts"  # this inventory's own Prometheus job: every query must carry it
ANALYSIS = 8  # seconds per canary step / production and advanced batch
CANARY_REPOS = ["gitguard/platform-core", "gitguard/api-gateway", "gitguard/auth-service"]
# A flag that only this inventory's schema knows: it must reach the env files.
MARKER = "CODEX_SSH_HOSTS_MARKER"
assert DURABLE != NATS_DURABLE


# ----- the collection, built and installed ------------------------------------------------------------------
@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    """``<tmp>/collections``: the collection built from this checkout and installed there, nothing else."""
    tmp = tmp_path_factory.mktemp("collection")
    t0 = time.monotonic()
    out = subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(tmp)],
                         cwd=ROOT, env=_env(None), capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    tarballs = list(tmp.glob("stagegate-rollout-*.tar.gz"))
    assert len(tarballs) == 1, out.stdout
    path = tmp / "collections"
    out = subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", str(tarballs[0]), "-p",
                          str(path), "--no-deps", "--force"], cwd=str(tmp), env=_env(None), capture_output=True, text=True,
                         timeout=300, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    installed = path / "ansible_collections" / "stagegate" / "rollout"
    assert (installed / "MANIFEST.json").is_file() and not installed.is_symlink()
    # with the collections path pointing only there, this copy is the only stagegate.rollout Ansible sees
    out = subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "list", "stagegate.rollout", "--format",
                          "json"], cwd=str(tmp), env=_env(str(path)), capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert list(json.loads(out.stdout)) == [str(path / "ansible_collections")], out.stdout
    sys.stderr.write("collection built and installed in %.1fs\n" % (time.monotonic() - t0))
    return str(path)


def _env(collections_path):
    """ansible's environment: no ANSIBLE_* or PYTHONPATH from outside; the collections path only ``collections_path``
    (site-packages is still scanned: the venv's ansible package gives community.general)."""
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith("ANSIBLE_") and k != "PYTHONPATH")
    env.update(PATH=BIN + os.pathsep + os.environ.get("PATH", ""), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="True", ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_PIPELINING="1",
               ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_LOCALHOST_WARNING="False", PYTHONUNBUFFERED="1")
    if collections_path:
        env["ANSIBLE_COLLECTIONS_PATH"] = collections_path
    return env


# ----- the site: SSH hosts, NATS, HAProxy, Prometheus, load, the user's inventory ----------------------------
def _servers(hosts):
    return [("%s_%s" % (name, slot), "%s:%d" % (addr, PORTS[slot]), 100 if slot == "stable" else 0)
            for name, addr in sorted(hosts.items()) for slot in ("stable", "canary")]


class Site:
    """Everything the test starts, and stops again (``close``)."""

    def __init__(self, workdir, collections_path):
        self.workdir = str(workdir)
        self.collections_path = collections_path
        self.inventory = os.path.join(self.workdir, "inventory")  # the user's inventory: nothing else in it
        self.logs = os.path.join(self.workdir, "logs")
        self.state_dir = os.path.join(self.workdir, "state")
        self.ledger_path = os.path.join(self.state_dir, "ledger.jsonl")
        self.publish_dir = os.path.join(self.workdir, "publish")
        self.faults_file = os.path.join(self.workdir, "faults.env")
        self.query_log = os.path.join(self.workdir, "prometheus", "queries.log")
        self.ssh = self.nats = self.haproxy = self.prometheus = self.loadgen = None
        self.timings = []
        self.closed = False
        self.load_report = None

    # lifecycle
    def start(self):
        for d in (self.logs, self.publish_dir):
            os.makedirs(d, exist_ok=True)
        with open(self.faults_file, "w", encoding="utf-8") as fh:
            fh.write("# v3 is bad once it publishes externally\nDEMO_FAULT_ERROR_RATE__V3=0.2\n"
                     "DEMO_FAULT_SCOPE__V3=external\n")
        self.ssh = SshHosts(os.path.join(self.workdir, "ssh")).__enter__()
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
            errors += _shutdown_supervisord(self.supervisor_conf(name))
        if self.ssh is not None:
            try:
                self.ssh.__exit__(None, None, None)
            except AssertionError as err:
                errors.append(str(err))
        for comp in (self.prometheus, self.haproxy, self.nats):
            if comp is not None:
                comp.stop()
        deadline = time.monotonic() + 15
        while _processes_mentioning(self.workdir) and time.monotonic() < deadline:
            time.sleep(0.2)
        return errors + ["left running: %d %s" % p for p in _processes_mentioning(self.workdir)]

    # the user's inventory (docs/targets.md, inventories/examples/hosts)
    def base_dir(self, name):
        return os.path.join(self.workdir, "hosts", name)

    def write_inventory(self):
        group_vars = os.path.join(self.inventory, "group_vars", "all")
        os.makedirs(group_vars)
        app = self.ssh.inventory_hosts(sys.executable)
        for name in app:
            app[name]["codex_base_dir"] = self.base_dir(name)  # a host variable: where this host keeps codex
        _yaml(os.path.join(self.inventory, "hosts.yml"), {"all": {"children": {"app": {"hosts": app}}}},
              "# three app hosts over SSH (sshd on 127.0.0.11-13); HAProxy is on the controller (localhost)")
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
        _yaml(os.path.join(group_vars, "target.yml"), {"rollout_target": target},
              "# where codex runs: the app hosts of group app, HAProxy, Prometheus, NATS (docs/targets.md)")
        with open(os.path.join(ROOT, "inventories", "demo", "group_vars", "all", "flags.yml"), encoding="utf-8") as fh:
            schema = yaml.safe_load(fh)["rollout_flag_schema"]
        schema[MARKER] = {"type": "str", "default": "none", "pattern": "^[a-z0-9-]+$", "min_phase": "canary",
                          "description": "Only in this inventory: which phase wrote the env file."}
        _yaml(os.path.join(group_vars, "rollout.yml"), {
            "rollout_state_dir": self.state_dir,
            "rollout_ledger_path": self.ledger_path,
            "rollout_metrics_path": os.path.join(self.state_dir, "stagegate_rollout.prom"),
            "rollout_flag_schema": schema,
            "rollout_install_flags": {"CODEX_PUBLISH_ENABLED": True, "CODEX_PUBLISH_PORTAL": "external",
                                      "CODEX_REPO_INCLUDE_LIST": []},
            "codex_canary_repositories": CANARY_REPOS,
            "rollout_monitor_sentinels": ["/api/docs/%s" % r for r in CANARY_REPOS[:2]],
            "rollout_killswitch_flag": "CODEX_PUBLISH_ENABLED",
        }, "# the controller's evidence and codex's flags")
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
                "steps": [{"weight": 10, "analysis_seconds": ANALYSIS}, {"weight": 25, "analysis_seconds": ANALYSIS},
                          {"weight": 50, "analysis_seconds": ANALYSIS},
                          {"weight": 100, "analysis_seconds": ANALYSIS, "judge": False}],
                "judge": {"alpha": 0.01, "interval": 2},
            },
            "rollout_production": {
                "flags": dict(every, **{MARKER: "production-on-three-hosts"}),
                "retention": {"max_age": "72h", "max_msgs": -1, "max_bytes": -1},
                "retention_after": {"max_age": "24h", "max_msgs": 1000000, "max_bytes": "10GB"},
                "batches": [1, "100%"],
                "analysis_seconds": ANALYSIS,
                "thresholds": {"error_rate": 0.01, "p99_latency_ms": 3000},
            },
            "rollout_advanced": {
                "flags": dict(every, GRAPH_API_ENABLED=True, GRAPH_API_CORS_ORIGINS="*", CHAOS_ENGINEERING_ENABLED=True,
                              **{MARKER: "advanced-on-three-hosts"}),
                "retention": {"max_age": "24h", "max_msgs": 1000000, "max_bytes": "10GB"},
                "batches": [1, "100%"],
                "analysis_seconds": ANALYSIS,
                "probes": [
                    {"name": "graph API repos", "path": "/graph/repos", "port_offset": GRAPH_OFFSET,
                     "headers": {"Origin": "https://portal.example.invalid"},
                     "require_headers": ["access-control-allow-origin"]},
                    {"name": "chaos endpoint", "path": "/api/chaos"},
                ],
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
        _yaml(os.path.join(group_vars, "phases.yml"), phases, "# the plan of each phase")

    # running the collection's playbooks, as a user does
    def play(self, name, version, timeout=900, extra=None, approve=True):
        """Run ``stagegate.rollout.<name>``. ``approve``: True passes rollout_auto_approve (the approval happened
        elsewhere); False runs with no terminal (stdin /dev/null) and no approval; a string runs it on a terminal
        (a pty) where a person types that string at the approval prompt."""
        ev_file = os.path.join(self.workdir, "extra-vars-%s-%s.json" % (name, version))
        ev = dict({"rollout_version": version}, **(extra or {}))
        if approve is True:
            ev["rollout_auto_approve"] = True
        with open(ev_file, "w", encoding="utf-8") as fh:
            json.dump(ev, fh)
        argv = [os.path.join(BIN, "ansible-playbook"), "-i", self.inventory, "stagegate.rollout.%s" % name,
                "-e", "@" + ev_file]
        t0 = time.monotonic()
        if isinstance(approve, str):
            rc, out = _on_a_terminal(argv, self.workdir, _env(self.collections_path), approve, timeout)
        else:
            proc = subprocess.run(argv, cwd=self.workdir, env=_env(self.collections_path), stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=timeout, check=False)
            rc, out = proc.returncode, proc.stdout + proc.stderr
        seconds = time.monotonic() - t0
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
        return dict((name, dict((slot, _healthz(addr, PORTS[slot])) for slot in PORTS))
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


def _on_a_terminal(argv, cwd, env, typed, timeout):
    """Run ``argv`` on a new pty (its controlling terminal, foreground: ansible's pause can prompt); once the
    approval prompt shows, a person types ``typed`` and Enter. Returns (rc, output)."""
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
            if typed_at is None and b"to approve" in out:
                time.sleep(1.0)  # after ansible flushed the terminal's input buffer
                os.write(fd, typed.encode() + b"\r")
                typed_at = time.monotonic()
        else:
            os.kill(pid, 9)
    finally:
        os.close(fd)
    status = os.waitpid(pid, 0)[1]
    return os.waitstatus_to_exitcode(status), out.decode("utf-8", "replace").replace("\r\n", "\n")


def _yaml(path, data, comment):
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("---\n%s\n" % comment)
        yaml.safe_dump(data, fh, default_flow_style=False, sort_keys=False, width=120)


def _healthz(addr, port):
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


def _processes_mentioning(text):
    found = []
    me = os.getpid()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == me:
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if text in cmd and alive(int(pid)):
            found.append((int(pid), cmd[:300]))
    return found


def _shutdown_supervisord(conf):
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


@pytest.fixture(scope="module")
def site(collection, tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("SSH app hosts need root (sshd on port 22, /run/sshd, root login)")
    if not os.access(SSHD, os.X_OK):
        pytest.skip("%s is missing: install Debian's openssh-server (scripts/setup.sh does)" % SSHD)
    for tool in ("haproxy", "prometheus", "nats-server", "supervisord"):
        if not (os.path.exists(os.path.join(BIN, tool)) or shutil.which(tool)):
            pytest.skip("%s is not installed" % tool)
    s = Site(tmp_path_factory.mktemp("phases_hosts"), collection)
    try:
        s.start()
    except BaseException:
        s.close()
        raise
    yield s
    left = s.close()
    sys.stderr.write("timings: %s\n" % json.dumps(s.timings))
    assert not left, left


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


# ----- the tests -------------------------------------------------------------------------------------------------
def test_the_example_inventory_lists_and_its_target_validates(collection, tmp_path):
    """inventories/examples/hosts: ansible-inventory lists it; the installed rollout_target accepts its target and
    feature_flags accepts every phase's flags against its schema (nothing is run against its hosts)."""
    env = _env(collection)
    p = subprocess.run([os.path.join(BIN, "ansible-inventory"), "-i", EXAMPLE, "--list"], cwd=str(tmp_path), env=env,
                       capture_output=True, text=True, timeout=120, check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    inv = json.loads(p.stdout)
    assert inv["app"]["hosts"] == ["app1", "app2", "app3"] and inv["lb"]["hosts"] == ["lb1"]
    assert inv["_meta"]["hostvars"]["app1"]["rollout_target"]["name"] == "codex"
    play = [{"name": "Check the example", "hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "The target, its weights and batches", "register": "plan",
         "stagegate.rollout.rollout_target": {
             "target": "{{ rollout_target }}", "groups": "{{ groups }}", "hosts": "{{ groups.all }}",
             "canary_weights": "{{ [0] + rollout_canary.steps | map(attribute='weight') | list }}",
             "batches": "{{ rollout_production.batches }}", "version": "v2"}},
        {"name": "Every phase's flags against the schema",
         "stagegate.rollout.feature_flags": {"schema": "{{ rollout_flag_schema }}",
                                             "flags": "{{ lookup('vars', 'rollout_' ~ item).flags }}",
                                             "phase": "{{ item }}"},
         "loop": ["staging", "canary", "production", "advanced"]},
        {"name": "Save the plan", "ansible.builtin.copy": {"content": "{{ plan | to_json }}",
                                                           "dest": str(tmp_path / "plan.json"), "mode": "0600"}}]}]
    (tmp_path / "check.yml").write_text(json.dumps(play))
    p = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", EXAMPLE, str(tmp_path / "check.yml")],
                       cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300, check=False)
    assert_ok(p.returncode, p.stdout + p.stderr)
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert plan["app_hosts"] == ["app1", "app2", "app3"]
    assert plan["servers"]["app2"] == {"stable": "app2_stable", "canary": "app2_canary"}
    assert plan["host_batches"] == [["app1"], ["app2"], ["app3"]]
    assert plan["weights"]["10"] == expected_weights(["app1", "app2", "app3"], {"app1": 10, "app2": 10, "app3": 10})
    # the SPEC's thresholds
    with open(os.path.join(EXAMPLE, "group_vars", "all", "phases.yml"), encoding="utf-8") as fh:
        phases = yaml.safe_load(fh)
    assert phases["rollout_canary"]["thresholds"] == {"error_rate": 0.05, "p99_latency_ms": 5000}
    assert [s["weight"] for s in phases["rollout_canary"]["steps"]] == [10, 25, 50, 100]
    assert phases["rollout_production"]["thresholds"] == {"error_rate": 0.01, "p99_latency_ms": 3000}
    assert phases["rollout_production"]["batches"] == [1, "25%", "100%"]


def test_install_v1_on_three_hosts(site):
    rc, out = site.play("install", "v1")
    assert_ok(rc, out)
    hosts = sorted(site.ssh.hosts)
    assert site.weights() == expected_weights(hosts, dict.fromkeys(hosts, 0))
    assert site.versions() == dict((h, {"stable": "v1", "canary": None}) for h in hosts)
    for h in hosts:
        env = site.env(h, "stable")
        assert env["CODEX_PUBLISH_PORTAL"] == "external" and env["CODEX_REPO_INCLUDE_LIST"] == "", env
        assert site.program_state(h, "stable") == "RUNNING"
    assert [e["event"] for e in entries(site, "v1")] == ["install"]
    # the traffic goes to v1 through HAProxy, then the load starts (HTTP through HAProxy, events to NATS)
    assert "v1" == _frontend_version(site)
    site.start_load()


def _frontend_version(site):
    conn = http.client.HTTPConnection("127.0.0.1", site.haproxy.frontend_port, timeout=5)
    try:
        conn.request("GET", "/api/ping")
        return conn.getresponse().getheader("X-Version")
    finally:
        conn.close()


def test_good_release_v2_through_every_phase_on_three_hosts(site):
    hosts = sorted(site.ssh.hosts)

    rc, out = site.play("staging", "v2")
    assert_ok(rc, out)
    assert site.weights() == expected_weights(hosts, dict.fromkeys(hosts, 0))
    assert site.versions() == dict((h, {"stable": "v1", "canary": None}) for h in hosts)
    for h in hosts:
        assert site.env(h, "canary")["CODEX_PUBLISH_PORTAL"] == "build-only"
        assert site.program_state(h, "canary") in ("STOPPED", "EXITED")
    probes = entries(site, "v2", "staging", "gate")
    assert len(probes) == 1 and probes[0]["decision"] == "pass", probes
    assert probes[0]["evidence"]["failed"] == []

    rc, out = site.play("canary", "v2")
    assert_ok(rc, out)
    assert site.weights() == expected_weights(hosts, dict.fromkeys(hosts, 100))
    assert site.versions() == dict((h, {"stable": "v1", "canary": "v2"}) for h in hosts)
    for h in hosts:
        env = site.env(h, "canary")
        assert env["CODEX_REPO_INCLUDE_LIST"] == ",".join(CANARY_REPOS), env
        assert env["CODEX_PUBLISH_PORTAL"] == "external" and env["POLICY_TRANSPARENCY_ENABLED"] == "true", env
        assert env["GRAPH_API_ENABLED"] == "false", env
        assert env[MARKER] == "canary-on-three-hosts", env  # a flag only this inventory's schema knows
        assert site.env(h, "stable")["CODEX_REPO_INCLUDE_LIST"] == ""  # stable keeps v1's flags
    gates = entries(site, "v2", "canary", "gate")
    assert [g["step"] for g in gates] == ["1", "2", "3", "4"], gates
    assert all(g["decision"] == "pass" for g in gates), gates
    for g in gates:  # both default gates, each with a measured value
        assert [r["name"] for r in g["evidence"]["results"]] == ["canary error rate", "canary p99 latency"], g
        assert all(r["observed"] is not None and r["passed"] for r in g["evidence"]["results"]), g
    judged = entries(site, "v2", "canary", "judge")
    assert [j["step"] for j in judged] == ["1", "2", "3"] and all(j["decision"] != "rollback" for j in judged), judged

    rc, out = site.play("production", "v2")
    assert_ok(rc, out)
    assert site.weights() == expected_weights(hosts, dict.fromkeys(hosts, 0))
    assert site.versions() == dict((h, {"stable": "v2", "canary": None}) for h in hosts)
    for h in hosts:
        env = site.env(h, "stable")
        assert env["CODEX_REPO_INCLUDE_LIST"] == "" and env["MERMAID_GRAPHS_ENABLED"] == "true", env
        assert env[MARKER] == "production-on-three-hosts", env
        assert site.program_state(h, "canary") in ("STOPPED", "EXITED")
    gates = entries(site, "v2", "production", "gate")
    # one gate entry per batch: [app1], then [app2, app3]
    assert [g["step"] for g in gates] == ["batch 1", "batch 2"], gates
    assert all(g["decision"] == "pass" for g in gates), gates
    for g in gates:
        assert [r["name"] for r in g["evidence"]["results"]] == ["production error rate", "production p99 latency"]
        assert all(r["observed"] is not None for r in g["evidence"]["results"]), g
    start = entries(site, "v2", "production", "phase_start")[-1]
    assert start["evidence"]["batches"] == [["app1"], ["app2", "app3"]], start

    rc, out = site.play("advanced", "v2")
    assert_ok(rc, out)
    assert site.weights() == expected_weights(hosts, dict.fromkeys(hosts, 0))
    assert site.versions() == dict((h, {"stable": "v2", "canary": None}) for h in hosts)
    for h in hosts:
        env = site.env(h, "stable")
        assert env["GRAPH_API_ENABLED"] == "true" and env["CHAOS_ENGINEERING_ENABLED"] == "true", env
        assert env[MARKER] == "advanced-on-three-hosts", env
    gates = entries(site, "v2", "advanced", "gate")
    assert [g["step"] for g in gates] == ["probes", "batch 1", "batch 2"] or \
        sorted(g["step"] for g in gates) == ["batch 1", "batch 2", "probes"], gates
    assert all(g["decision"] == "pass" for g in gates), gates
    probe = next(g for g in gates if g["step"] == "probes")
    assert probe["evidence"]["failed"] == [] and "9 probes" in probe["reason"], probe  # (health + 2) x 3 hosts

    promoted = [e["phase"] for e in entries(site, "v2", event="promote")]
    assert promoted == ["staging", "canary", "production", "advanced"]
    assert _verify(site.ledger_path)["valid"]


def test_the_inventory_s_metric_names_are_what_the_gates_and_the_judge_query(site):
    """The user's metric names, job selector and version label (not the collection's defaults) were queried."""
    queries = site.queries()
    assert queries, "Prometheus logged no query"
    # the default canary gates, built from the inventory's metric names and selectors
    assert any(q.startswith('(sum(increase(demo_http_requests_total{job="%s",route!="/healthz",slot="canary",'
                            'version="v2",code=~"5.."}[%ds])) or vector(0))' % (JOB, ANALYSIS)) for q in queries), \
        queries[:20]
    assert any('demo_http_request_duration_seconds_bucket{job="%s",route!="/healthz",slot="stable",version="v2"}'
               % JOB in q for q in queries), queries[:20]
    # the judge's cumulative queries, baseline = stable slots, canary = canary slots of this version
    assert 'sum(demo_http_requests_total{job="%s",route!="/healthz",slot="stable"})' % JOB in queries
    assert 'sum(demo_http_requests_total{job="%s",route!="/healthz",slot="canary",version="v2"})' % JOB in queries
    # nothing asked for the metric names of docs/targets.md's example
    assert not [q for q in queries if "http_requests_total" in q and "demo_http_requests_total" not in q]


def test_bad_release_v3_rolled_back_on_every_host(site):
    hosts = sorted(site.ssh.hosts)
    stable_flags = dict((h, site.env(h, "stable")) for h in hosts)

    # an interrupted attempt (its controller killed at 25 % on app1): the next phase, whatever its release, puts
    # the canary traffic to 0 % first and records the attempt as aborted
    from ansible_collections.stagegate.rollout.plugins.module_utils.ledger import Ledger, build_record
    Ledger(site.ledger_path).append(build_record("v2-killed", "canary", "phase_start", decision="start",
                                                 reason="a run that was killed")[0])
    runtime_command(site.haproxy.socket_path, "set weight app/app1_canary 25")
    runtime_command(site.haproxy.socket_path, "set weight app/app1_stable 75")

    # a person approves staging at a terminal, typing the version
    rc, out = site.play("staging", "v3", approve="v3")
    assert_ok(rc, out)  # the fault only shows once v3 publishes externally
    assert "type v3 and Enter to approve" in out, out[-3000:]
    ledger = site.ledger()
    aborted = [e for e in ledger if e["event"] == "aborted"]
    assert [(e["release"], e["phase"]) for e in aborted] == [("v2-killed", "canary")], aborted
    assert aborted[0]["evidence"]["weights_before"]["app1_canary"] == 25, aborted
    assert aborted[0]["evidence"]["weights_after"] == expected_weights(hosts, dict.fromkeys(hosts, 0)), aborted
    start = next(e for e in ledger if (e["release"], e["phase"], e["event"]) == ("v3", "staging", "phase_start"))
    assert aborted[0]["seq"] < start["seq"], "the interrupted attempt is dealt with before the phase starts"
    assert site.versions() == dict((h, {"stable": "v2", "canary": None}) for h in hosts)

    rc, out = site.play("canary", "v3")
    assert rc != 0, "the bad canary must fail the play: " + out[-4000:]
    assert "rolled back" in out, out[-4000:]
    # canary weight 0 and the canary slot stopped on every host, stable v2 untouched
    assert site.weights() == expected_weights(hosts, dict.fromkeys(hosts, 0))
    assert site.versions() == dict((h, {"stable": "v2", "canary": None}) for h in hosts)
    for h in hosts:
        assert site.program_state(h, "canary") in ("STOPPED", "EXITED"), h
        assert not accepts(site.ssh.hosts[h], PORTS["canary"]), h
        # the canary's env file holds the stable flags again
        assert site.env(h, "canary") == stable_flags[h], h
        assert site.env(h, "stable") == stable_flags[h], h
    v3 = entries(site, "v3", "canary")
    events = [e["event"] for e in v3]
    assert "rollback" in events and "promote" not in events and "rollback_incomplete" not in events, events
    failed = [e for e in v3 if e["event"] in ("gate", "judge") and e["decision"] == "rollback"]
    assert failed, "the failed gate or judge verdict is on the ledger: %s" % v3
    gate = next((e for e in failed if e["event"] == "gate"), None)
    if gate is not None:
        bad = [r for r in gate["evidence"]["results"] if not r["passed"]]
        assert bad and bad[0]["observed"] is not None and bad[0]["observed"] >= 0.05, gate
    rollback = next(e for e in v3 if e["event"] == "rollback")
    assert rollback["evidence"]["hosts"] == hosts and rollback["evidence"]["left"] == [], rollback
    assert rollback["evidence"]["weights_after"] == expected_weights(hosts, dict.fromkeys(hosts, 0)), rollback
    assert rollback["evidence"]["replay"]["replay"]["recreated"], rollback
    assert _verify(site.ledger_path)["valid"]
    with open(os.path.join(site.state_dir, "stagegate_rollout.prom"), encoding="utf-8") as fh:
        assert 'stagegate_rollout_rollbacks_total{mode="emergency",phase="canary",release="v3"} 1' in fh.read()


def _canary_plan(site):
    with open(os.path.join(site.inventory, "group_vars", "all", "phases.yml"), encoding="utf-8") as fh:
        return yaml.safe_load(fh)["rollout_canary"]


BAD_PLANS = {  # case: (what changes in the canary plan or the version, what the error must name)
    "unknown flag": (lambda p: {"flags": dict(p["flags"], CODEX_TELEPORT_ENABLED=True)}, "CODEX_TELEPORT_ENABLED"),
    "flag before its phase": (lambda p: {"flags": dict(p["flags"], GRAPH_API_ENABLED=True)}, "GRAPH_API_ENABLED"),
    "weights not ascending": (lambda p: {"steps": [p["steps"][1], p["steps"][0]] + p["steps"][2:]},
                              "rollout_canary.steps"),
    "gate without threshold": (lambda p: {"gates": [{"name": "canary error rate", "query": "vector(0)"}]},
                               "rollout_canary.gates"),
    "malformed retention": (lambda p: {"retention": {"max_age": "72 hours", "max_msgs": -1, "max_bytes": -1}},
                            "max_age"),
    "unknown plan key": (lambda p: {"stpes": p["steps"]}, "stpes"),
    "never staged": (lambda p: {"rollout_version": "v9"}, "fingerprint"),
}


@pytest.mark.parametrize("case", sorted(BAD_PLANS))
def test_bad_plan_refused_before_any_change(site, case):
    """Each bad canary plan (or a version staging never froze) fails the canary playbook naming the field, before
    anything changed on any host."""
    hosts = sorted(site.ssh.hosts)

    def state():
        return (len(site.ledger()), site.weights(), site.versions(),
                [(site.env(h, "stable"), site.env(h, "canary"), site.program_state(h, "canary")) for h in hosts])
    before = state()
    change, needle = BAD_PLANS[case]
    plan = _canary_plan(site)
    change = dict(change(plan))
    version = change.pop("rollout_version", "v2")
    rc, out = site.play("canary", version, timeout=300,
                        extra={"rollout_rerun": True, "rollout_canary": dict(plan, **change)})
    assert rc != 0, out[-3000:]
    assert needle in out, out[-3000:]
    assert "rolled back" not in out, "a bad plan must be refused before anything runs: " + out[-3000:]
    assert state() == before


def test_production_of_a_release_its_canary_rolled_back_is_refused(site):
    """Phase order: v3's last canary entry is its rollback, so production of v3 is refused before any change,
    also with rollout_rerun."""
    hosts = sorted(site.ssh.hosts)

    def state():
        return (len(site.ledger()), site.weights(), site.versions(), [site.env(h, "stable") for h in hosts])
    before = state()
    rc, out = site.play("production", "v3", timeout=300, extra={"rollout_rerun": True})
    assert rc != 0, out[-3000:]
    assert "production of v3 needs its canary promotion first: the last canary entry of v3 on the ledger is " \
           "rollback" in out, out[-3000:]
    assert state() == before


def test_a_second_rollout_is_refused_while_another_holds_the_lock(site):
    """One rollout per target: a lock held by another run (another controller) refuses the phase before any
    change, naming the holder; every phase before gave its own lock back."""
    hosts = sorted(site.ssh.hosts)
    path = os.path.join(os.path.dirname(site.haproxy.socket_path), "stagegate-%s.lock" % SERVICE)
    assert not os.path.exists(path), "a phase that ended kept its lock"
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({"token": "another-run", "acquired_at": time.time(), "expires_at": time.time() + 3600,
                   "holder": {"release": "v9", "phase": "canary", "controller": "ctl2", "user": "ops"}}, fh)

    def state():
        return (len(site.ledger()), site.weights(), site.versions(), [site.env(h, "canary") for h in hosts])
    before = state()
    try:
        rc, out = site.play("canary", "v2", timeout=300, extra={"rollout_rerun": True})
    finally:
        with open(path, encoding="utf-8") as fh:
            still = json.load(fh)
        os.unlink(path)
    assert rc != 0, out[-3000:]
    assert "is held by canary of v9 from ctl2 (user ops)" in out, out[-3000:]
    assert state() == before
    assert still["token"] == "another-run"


@pytest.mark.parametrize("approve", [False, "yes"], ids=["no terminal", "not the version typed"])
def test_a_phase_nobody_approved_changes_nothing(site, approve):
    """Approval fails closed: with no terminal (cron, CI, AWX without an approval node) or without the version
    typed at the prompt, the phase stops before any change."""
    hosts = sorted(site.ssh.hosts)

    def state():
        return (len(site.ledger()), site.weights(), site.versions(), [site.env(h, "canary") for h in hosts])
    before = state()
    rc, out = site.play("canary", "v2", timeout=300, extra={"rollout_rerun": True}, approve=approve)
    assert rc != 0, out[-3000:]
    assert "canary of v2 was not approved" in out, out[-3000:]
    assert "rolled back" not in out, out[-3000:]
    assert state() == before


def test_site_runs_the_phases_in_order_and_a_settled_release_changes_nothing(site):
    """stagegate.rollout.site imports the four phases in order; v2, promoted in every phase, is settled in each:
    rc 0 and nothing changes (no ledger entry, weights, versions and flags as they were)."""
    hosts = sorted(site.ssh.hosts)

    def state():
        return (len(site.ledger()), site.weights(), site.versions(), [site.env(h, "stable") for h in hosts])
    before = state()
    rc, out = site.play("site", "v2", timeout=600)
    assert_ok(rc, out)
    for phase in ("staging", "canary", "production", "advanced"):
        assert "%s of v2 is settled" % phase in out, out[-4000:]
    assert state() == before
    assert _verify(site.ledger_path)["valid"]


def test_monitor_sentinels_and_drift(site):
    """stagegate.rollout.monitor: the sentinels answer on the stable slot of every host, the CUSUM state is kept,
    nothing is switched off."""
    rc, out = site.play("monitor", "v2", timeout=300)
    assert_ok(rc, out)
    assert "6/6 returned results" in out, out[-3000:]  # 2 sentinels x 3 hosts
    assert os.path.exists(os.path.join(site.state_dir, "drift-stable-error-ratio.json"))
    assert all(site.env(h, "stable")["CODEX_PUBLISH_ENABLED"] == "true" for h in site.ssh.hosts)


def test_status_reads_the_ledger(site):
    rc, out = site.play("status", "v2", timeout=300)
    assert_ok(rc, out)
    assert re.search(r"""["']ledger_valid["']: [Tt]rue""", out), out[-3000:]


def _verify(path):
    from ansible_collections.stagegate.rollout.plugins.module_utils.ledger import Ledger
    res = Ledger(path).verify()
    assert res["valid"], res
    return res


def _published(site):
    with open(os.path.join(site.publish_dir, "published.jsonl"), encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def test_no_event_lost_and_the_consumer_drained(site):
    """Every event the load generator stored was processed by a healthy version (v3's were replayed after the
    rollback) and JetStream has nothing pending or unacknowledged for the stable slots' consumer."""
    from demo.run_demo import account_events
    report = site.stop_load()
    assert report["events"]["published"] > 100 and report["requests"] > 1000, report
    info = {"workdir": site.workdir, "nats": {"durable": NATS_DURABLE},
            "publish_file": os.path.join(site.publish_dir, "published.jsonl")}
    ev = account_events(info, {"v3"}, timeout=60, say=lambda *a: None)
    sys.stderr.write("events: %s\n" % json.dumps(ev, sort_keys=True))
    assert ev["published"] == report["events"]["published"] and ev["unknown"] == 0, (ev, report["events"])
    assert ev["lost"] == 0 and ev["processed_once"] + ev["duplicates"] == ev["published"], ev
    assert ev["handled_by_bad_version"] > 0, ev  # v3 took events in the canary; they were replayed
    state = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = consumer_info(site.nats.url, NATS_DURABLE)
        if state.num_pending == 0 and state.num_ack_pending == 0:
            break
        time.sleep(0.5)
    assert state.num_pending == 0 and state.num_ack_pending == 0, state
    # HAProxy's frontend answered (almost) every request from a slot while the traffic moved between them
    unanswered = (report["by_version"].get("none") or {}).get("requests", 0)
    sys.stderr.write("requests: %d, unanswered by a slot: %d\n" % (report["requests"], unanswered))
    assert unanswered <= 0.01 * report["requests"], report["by_version"]


def test_every_event_processed_exactly_once(site):
    """No event recorded twice by a healthy version. The canary rollback replays the shared durable from the
    rollout start (rollout_phase/tasks/rollback.yml), so an event that app1's stable v2 processed during the
    canary is redelivered, possibly to app2's or app3's stable v2: the service's publish log (one sink shared by
    every instance, as a real publishing target is) records an event of a version once, whichever instance
    gets it (demo/service.py, PublishLog.record checks and appends under one lock)."""
    site.stop_load()
    good = collections.defaultdict(list)
    for r in _published(site):
        if r.get("durable") == NATS_DURABLE and r["version"] != "v3":
            good[r["event_id"]].append(r)
    twice = dict((e, rs) for e, rs in good.items() if len(rs) > 1)
    assert good, "no event was processed at all"
    assert not twice, dict(list(twice.items())[:5])


def test_killswitch_turns_publishing_off_and_on_on_every_host(site):
    """After the event accounting (publishing off stops the services' output): the kill switch writes the flag
    off into every slot of every host, records it, and switches it back on."""
    hosts = sorted(site.ssh.hosts)
    rc, out = site.play("killswitch", "v2", extra={"reason": "test"}, timeout=300)
    assert_ok(rc, out)
    assert [site.env(h, "stable")["CODEX_PUBLISH_ENABLED"] for h in hosts] == ["false"] * 3
    assert site.ledger()[-1]["event"] == "killswitch"
    rc, out = site.play("killswitch", "v2", extra={"reason": "back on", "killswitch_value": True}, timeout=300)
    assert_ok(rc, out)
    assert [site.env(h, "stable")["CODEX_PUBLISH_ENABLED"] for h in hosts] == ["true"] * 3


def test_nothing_left_behind(site):
    """Teardown stops every supervisord (and its services), every sshd with its sessions, HAProxy, Prometheus and
    NATS: no process mentions the work directory and no port of the hosts is open any more."""
    pids = dict((h, int(open(os.path.join(site.base_dir(h), "supervisor", "supervisord.pid")).read())) for h in
                site.ssh.hosts)
    assert all(alive(p) for p in pids.values())
    services = [site.program_pid(h, "stable") for h in sorted(site.ssh.hosts)]
    assert all(services) and all(alive(p) for p in services), services
    left = site.close()
    assert left == [], left
    assert not [p for p in list(pids.values()) + services if alive(p)]
    assert not [(a, p) for a in site.ssh.hosts.values() for p in list(PORTS.values()) + [22] if accepts(a, p)]
    assert _processes_mentioning(site.workdir) == []
