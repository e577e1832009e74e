"""The local demo stack: NATS (JetStream), Prometheus, HAProxy and the stable service, on loopback.

    python -m demo.stack.local up     --workdir demo/run [--stable-version v1]
    python -m demo.stack.local status --workdir demo/run
    python -m demo.stack.local down   --workdir demo/run

``up`` writes ``<workdir>/stack.json`` (see docs/demo.md for every key), which
``demo.stack.slot`` and the demo runner read, and ``<workdir>/inventory/``: the demo's
inventory (``inventories/demo``) with the app host (localhost) and ``demo_stack`` (the
ports it chose) added, which the collection's playbooks run against, as a user's own
inventory. The stable version is installed by ``stagegate.rollout.install``. ``down``
stops every process the stack (or its supervisord) started, found by the pids recorded
in the work directory, and leaves none behind.

As a library: ``with LocalStack(workdir) as stack: ...`` or ``start()`` / ``stop()``.
"""
import argparse
import asyncio
import json
import os
import shutil
import sys
import time
import urllib.request

import yaml

from demo.stack import playbook
from demo.stack import slot as slots
from demo.stack.ports import free_port, port_open

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STREAM = "REPO_EVENTS"
SUBJECTS = ["repo.events.>"]
SUBJECT_PREFIX = "repo.events"
DURABLE = "org-brain"
BACKEND = "app"
SLOTS = ("stable", "canary")
SERVICE = "org-brain"
INVENTORY_SOURCE = os.path.join(REPO_ROOT, "inventories", "demo")


def _components():
    """The launchers of the other demo/stack modules."""
    from demo.stack.haproxy import HAProxy
    from demo.stack.nats import NatsServer
    from demo.stack.prometheus import Prometheus
    return NatsServer, Prometheus, HAProxy


def _pid_of(component):
    for attr in ("pid",):
        v = getattr(component, attr, None)
        if isinstance(v, int):
            return v
    proc = getattr(component, "proc", None) or getattr(component, "process", None)
    pid = getattr(proc, "pid", None)
    return pid if isinstance(pid, int) else None


class LocalStack:
    def __init__(self, workdir, stable_version="v1", scrape_interval="1s", start_stable=True):
        self.workdir = os.path.abspath(workdir)
        self.stable_version = stable_version
        self.scrape_interval = scrape_interval
        self.start_stable = start_stable
        self.stack_file = os.path.join(self.workdir, "stack.json")
        self.nats = self.prometheus = self.haproxy = None
        self.info = None

    # ----- lifecycle --------------------------------------------------------------------------
    def start(self):
        if os.path.exists(self.stack_file):
            old = _read(self.stack_file)
            if old and old.get("state") == "up":
                stop_recorded(old)  # a previous run that was not brought down: clean it first
        NatsServer, Prometheus, HAProxy = _components()
        wd = self.workdir
        for sub in ("nats", "prometheus", "haproxy", "services", "publish", "logs"):
            os.makedirs(os.path.join(wd, sub), exist_ok=True)
        try:
            self.nats = NatsServer(os.path.join(wd, "nats"))
            self.nats.start()
            nats_url = self.nats.url
            asyncio.run(_ensure_stream(nats_url))

            app = os.path.join(wd, "app")
            slot_info = {}
            for name in SLOTS:
                port = _port_pair()
                slot_info[name] = {
                    "server": name,
                    "port": port,
                    "graph_port": port + 1,
                    "program": "%s-%s" % (SERVICE, name),
                    "env_file": os.path.join(app, name, "service.env"),
                    "log": os.path.join(app, name, "service.log"),
                    "url": "http://127.0.0.1:%d" % port,
                    "graph_url": "http://127.0.0.1:%d" % (port + 1),
                }
            with open(os.path.join(wd, "services", "faults.env"), "w", encoding="utf-8") as fh:
                fh.write("# DEMO_FAULT_* knobs for every slot; KEY__V3=... applies to version v3 only\n")

            self.haproxy = HAProxy(os.path.join(wd, "haproxy"), backends={BACKEND: [
                ("stable", "127.0.0.1:%d" % slot_info["stable"]["port"], 100),
                ("canary", "127.0.0.1:%d" % slot_info["canary"]["port"], 0),
            ]})
            self.haproxy.start()

            targets = {
                "demo": [("127.0.0.1:%d" % slot_info[n]["port"], {"slot": n}) for n in SLOTS],
                "haproxy": [(_hostport(self.haproxy.metrics_url), {})],
            }
            self.prometheus = Prometheus(os.path.join(wd, "prometheus"), targets,
                                         scrape_interval=self.scrape_interval)
            self.prometheus.start()

            self.info = {
                "format": 1,
                "state": "up",
                "workdir": wd,
                "repo_root": REPO_ROOT,
                "python": sys.executable,
                "started_at": time.time(),
                "nats": {
                    "url": nats_url, "port": _port_of(nats_url), "pid": _pid_of(self.nats),
                    "store_dir": os.path.join(wd, "nats"), "stream": STREAM, "subjects": list(SUBJECTS),
                    "subject_prefix": SUBJECT_PREFIX, "durable": DURABLE,
                },
                "prometheus": {
                    "url": self.prometheus.url, "port": _port_of(self.prometheus.url),
                    "pid": _pid_of(self.prometheus), "scrape_interval": self.scrape_interval,
                    "jobs": {"demo": "the service slots (label slot=stable|canary)",
                             "haproxy": "HAProxy's built-in exporter"},
                },
                "haproxy": {
                    "frontend_url": self.haproxy.url, "frontend_port": _port_of(self.haproxy.url),
                    "socket_path": self.haproxy.socket_path, "stats_url": getattr(self.haproxy, "stats_url", None),
                    "metrics_url": self.haproxy.metrics_url, "backend": BACKEND,
                    "servers": {n: n for n in SLOTS}, "pid": _pid_of(self.haproxy),
                },
                "slots": slot_info,
                "supervisor": {"conf": os.path.join(wd, "app", "supervisor", "supervisord.conf"),
                               "pid_file": os.path.join(wd, "app", "supervisor", "supervisord.pid"),
                               "supervisorctl": os.path.join(playbook.BIN, "supervisorctl")},
                "inventory": os.path.join(wd, "inventory"),
                "faults_file": os.path.join(wd, "services", "faults.env"),
                "publish_dir": os.path.join(wd, "publish"),
                "publish_file": os.path.join(wd, "publish", "published.jsonl"),
                "service_module": "demo.service",
            }
            self.refresh()
            write_inventory(self.info)
            if self.start_stable:
                self.install(self.stable_version)
            return self
        except BaseException:
            self.stop()
            raise

    def install(self, version):
        """Install ``version`` in the stable slot with the collection's stagegate.rollout.install playbook."""
        rc, out = playbook.run(self.info, "install", version, log=os.path.join(self.workdir, "logs", "install.log"))
        if rc != 0:
            raise RuntimeError("stagegate.rollout.install of %s failed (rc %d):\n%s" % (version, rc, out[-4000:]))
        self.wait_routed(version)

    def refresh(self):
        """Re-record the components' pids (after a restart, e.g. a chaos drill) and rewrite stack.json."""
        for key, comp in (("nats", self.nats), ("prometheus", self.prometheus), ("haproxy", self.haproxy)):
            if comp is not None and key in self.info:
                pid = _pid_of(comp)
                self.info[key]["pid"] = pid
                self.info[key]["pid_start"] = slots.proc_start_time(pid) if pid else None
        self._write()

    def _write(self):
        tmp = self.stack_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(self.info, fh, indent=2, sort_keys=True)
        os.replace(tmp, self.stack_file)

    def wait_routed(self, version, timeout=15.0):
        """Block until HAProxy's frontend answers with ``version`` (its health check has seen the slot up)."""
        deadline = time.monotonic() + timeout
        url = self.info["haproxy"]["frontend_url"] + "/api/ping"
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=1) as r:
                    if r.headers.get("X-Version") == version:
                        return True
            except Exception:
                pass
            time.sleep(0.1)
        raise RuntimeError("HAProxy at %s does not route to version %s after %.0fs"
                           % (self.info["haproxy"]["frontend_url"], version, timeout))

    def wait_scraped(self, timeout=30.0):
        """Block until Prometheus has a sample of the stable slot (its first scrape lands after a few s)."""
        deadline = time.monotonic() + timeout
        q = 'demo_build_info{slot="stable"}'
        while time.monotonic() < deadline:
            try:
                res = prom_query(self.info["prometheus"]["url"], q)
                if res:
                    return True
            except Exception:
                pass
            time.sleep(0.25)
        return False

    def stop(self):
        info = self.info or (_read(self.stack_file) if os.path.exists(self.stack_file) else None)
        if info and info.get("supervisor"):
            try:
                slots.shutdown(info)
            except Exception:
                pass
        for comp in (self.prometheus, self.haproxy, self.nats):
            if comp is not None:
                try:
                    comp.stop()
                except Exception:
                    pass
        if self.info is None and info and info.get("state") == "up":
            stop_recorded(info)
        self.prometheus = self.haproxy = self.nats = None
        if info:
            info["state"] = "down"
            info["stopped_at"] = time.time()
            self.info = info
            self._write()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def stop_recorded(info):
    """Stop everything recorded in a stack.json written by another process (``down``)."""
    if info.get("supervisor"):
        try:
            slots.shutdown(info)
        except Exception:
            pass
    for comp in ("prometheus", "haproxy", "nats"):
        entry = info.get(comp) or {}
        if entry.get("pid"):
            # only the very process we started (same pid *and* start time): never a recycled pid
            slots.kill_group(entry["pid"], entry.get("pid_start") or -1)


def pids(info):
    """Every pid the stack runs right now (components and slot services)."""
    out = {}
    for comp in ("nats", "prometheus", "haproxy"):
        entry = info.get(comp) or {}
        if entry.get("pid") and slots.alive(entry["pid"], entry.get("pid_start") or -1):
            out[comp] = entry["pid"]
    if info.get("supervisor"):
        sup = slots.supervisord_pid(info)
        if sup:
            out["supervisord"] = sup
            for name in info.get("slots", {}):
                p = slots.pid(info, name)
                if p:
                    out["slot:" + name] = p
    return out


def write_inventory(info):
    """``<workdir>/inventory``: the demo's inventory (inventories/demo), the app host and ``demo_stack``."""
    dest = info["inventory"]
    if os.path.isdir(dest):
        shutil.rmtree(dest)
    shutil.copytree(INVENTORY_SOURCE, dest)
    hosts = {"all": {"children": {"demo_app": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": info["python"]}}}}}}
    stack = {"workdir": info["workdir"], "python": info["python"], "repo_root": info["repo_root"],
             "bin_dir": playbook.BIN, "publish_dir": info["publish_dir"], "faults_file": info["faults_file"],
             "nats": {k: info["nats"][k] for k in ("url", "stream", "subjects", "durable")},
             "prometheus": {"url": info["prometheus"]["url"]},
             "haproxy": {"socket_path": info["haproxy"]["socket_path"], "backend": info["haproxy"]["backend"]},
             "slots": {n: {"port": v["port"]} for n, v in info["slots"].items()}}
    with open(os.path.join(dest, "hosts.yml"), "w", encoding="utf-8") as fh:
        fh.write("# written by demo.stack.local: the demo's one app host\n")
        yaml.safe_dump(hosts, fh, default_flow_style=False)
    with open(os.path.join(dest, "group_vars", "all", "stack.yml"), "w", encoding="utf-8") as fh:
        fh.write("# written by demo.stack.local: the loopback ports, sockets and URLs of this stack\n")
        yaml.safe_dump({"demo_stack": stack}, fh, default_flow_style=False)


def _port_pair():
    """A free port whose next port is free too (the Graph API of a slot listens on port + 1)."""
    for dummy in range(50):
        p = free_port()
        if p < 65535 and not port_open(p + 1):
            return p
    raise RuntimeError("no free pair of ports")


def prom_query(url, query, timeout=5.0):
    from urllib.parse import urlencode
    with urllib.request.urlopen("%s/api/v1/query?%s" % (url, urlencode({"query": query})), timeout=timeout) as r:
        data = json.loads(r.read())
    return data["data"]["result"]


async def _ensure_stream(url):
    import nats
    from nats.js.api import StorageType, StreamConfig
    from nats.js.errors import NotFoundError

    nc = await nats.connect(url, connect_timeout=3)
    try:
        js = nc.jetstream()
        try:
            await js.stream_info(STREAM)
        except NotFoundError:
            # Unbounded until the phase inventories declare the retention (stagegate.rollout.jetstream_stream).
            await js.add_stream(StreamConfig(name=STREAM, subjects=list(SUBJECTS), storage=StorageType.FILE,
                                             duplicate_window=120))
    finally:
        await nc.close()


def _port_of(url):
    return int(url.rsplit(":", 1)[1].split("/")[0])


def _hostport(url):
    return url.split("//", 1)[1].split("/", 1)[0]


def _read(path):
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m demo.stack.local", description=__doc__.split("\n", maxsplit=1)[0])
    p.add_argument("action", choices=("up", "down", "status"))
    p.add_argument("--workdir", default=os.path.join(REPO_ROOT, "demo", "run"))
    p.add_argument("--stable-version", default="v1")
    p.add_argument("--scrape-interval", default="1s")
    a = p.parse_args(argv)
    stack_file = os.path.join(os.path.abspath(a.workdir), "stack.json")
    if a.action == "up":
        stack = LocalStack(a.workdir, stable_version=a.stable_version, scrape_interval=a.scrape_interval).start()
        if not stack.wait_scraped():
            sys.stderr.write("warning: Prometheus has not scraped the stable slot yet\n")
        print(json.dumps({"changed": True, "stack_file": stack_file, "frontend_url": stack.info["haproxy"]["frontend_url"],
                          "prometheus_url": stack.info["prometheus"]["url"], "nats_url": stack.info["nats"]["url"],
                          "pids": pids(stack.info)}, indent=2, sort_keys=True))
        return 0
    info = _read(stack_file)
    if a.action == "down":
        if not info:
            print(json.dumps({"changed": False, "msg": "no stack in %s" % a.workdir}))
            return 0
        running = pids(info)
        LocalStack(a.workdir).stop()
        left = pids(info)
        print(json.dumps({"changed": bool(running), "stopped": running, "left": left}, sort_keys=True))
        return 1 if left else 0
    if not info:
        print(json.dumps({"state": "absent", "stack_file": stack_file}))
        return 1
    out = {"state": info.get("state"), "stack_file": stack_file, "pids": pids(info),
           "slots": {n: slots.status(info, n) for n in info.get("slots", {})},
           "frontend_url": info["haproxy"]["frontend_url"], "prometheus_url": info["prometheus"]["url"],
           "nats_url": info["nats"]["url"]}
    out["components_listening"] = {c: port_open(info[c]["port"] if c != "haproxy" else info[c]["frontend_port"])
                                   for c in ("nats", "prometheus", "haproxy")}
    print(json.dumps(out, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
