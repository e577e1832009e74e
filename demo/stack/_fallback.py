"""Minimal launchers used by demo.stack.local only while demo/stack/{nats,prometheus,haproxy}.py are missing.

Same constructor shapes as the real ones; delete this file once they have landed.
"""
import json
import os
import shutil
import sys
import urllib.request

from demo.stack.ports import free_port
from demo.stack.process import ManagedProcess


def _bin(name):
    local = os.path.join(os.path.dirname(sys.executable), name)
    return local if os.path.exists(local) else shutil.which(name)


class NatsServer:
    def __init__(self, store_dir, port=None, user=None, password=None):
        self.store_dir = store_dir
        self.port = port or free_port()
        os.makedirs(store_dir, exist_ok=True)
        self.proc = ManagedProcess("nats-server", [_bin("nats-server"), "-js", "-a", "127.0.0.1", "-p", str(self.port),
                                                   "-sd", store_dir], os.path.join(store_dir, "nats.log"),
                                   port=self.port)

    @property
    def url(self):
        return "nats://127.0.0.1:%d" % self.port

    @property
    def pid(self):
        return self.proc.pid

    def start(self):
        self.proc.start()
        return self

    def stop(self):
        self.proc.stop()

    def restart(self):
        self.stop()
        self.start()


class Prometheus:
    def __init__(self, workdir, scrape_targets, port=None, scrape_interval="1s"):
        self.workdir = workdir
        self.port = port or free_port()
        os.makedirs(workdir, exist_ok=True)
        jobs = []
        for job, targets in scrape_targets.items():
            sd = os.path.join(workdir, "targets-%s.json" % job)
            with open(sd, "w") as fh:
                json.dump([{"targets": [t], "labels": labels} for t, labels in targets], fh)
            jobs.append("  - job_name: %s\n    file_sd_configs:\n      - files: [%s]\n        refresh_interval: 1s\n"
                        % (job, sd))
        cfg = os.path.join(workdir, "prometheus.yml")
        with open(cfg, "w") as fh:
            fh.write("global:\n  scrape_interval: %s\n  evaluation_interval: %s\nscrape_configs:\n%s"
                     % (scrape_interval, scrape_interval, "".join(jobs)))
        self.proc = ManagedProcess(
            "prometheus", ["prometheus", "--config.file=" + cfg, "--storage.tsdb.path=" + os.path.join(workdir, "data"),
                           "--web.listen-address=127.0.0.1:%d" % self.port, "--web.enable-lifecycle"],
            os.path.join(workdir, "prometheus.log"), ready=self._ready, start_timeout=30)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def pid(self):
        return self.proc.pid

    def _ready(self):
        with urllib.request.urlopen(self.url + "/-/ready", timeout=0.5) as r:
            return r.status == 200

    def start(self):
        self.proc.start()
        return self

    def stop(self):
        self.proc.stop()

    def pause(self):
        self.proc.pause()

    def resume(self):
        self.proc.resume()


class HAProxy:
    def __init__(self, workdir, backends, frontend_port=None, stats_port=None):
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.frontend_port = frontend_port or free_port()
        self.stats_port = stats_port or free_port()
        self.socket_path = os.path.join(workdir, "admin.sock")
        lines = [
            "global", "  stats socket %s mode 600 level admin" % self.socket_path, "  maxconn 2000", "",
            "defaults", "  mode http", "  timeout connect 2s", "  timeout client 30s", "  timeout server 30s",
            "  option redispatch", "  retries 2", "",
            "frontend fe_app", "  bind 127.0.0.1:%d" % self.frontend_port, "  default_backend %s" % next(iter(backends)),
            "",
            "frontend fe_stats", "  bind 127.0.0.1:%d" % self.stats_port,
            "  http-request use-service prometheus-exporter if { path /metrics }", "  stats enable",
            "  stats uri /stats", "",
        ]
        for name, servers in backends.items():
            lines += ["backend %s" % name, "  balance roundrobin", "  option httpchk GET /healthz"]
            for server, addr, weight in servers:
                lines.append("  server %s %s weight %d check inter 500ms fall 2 rise 1" % (server, addr, weight))
            lines.append("")
        self.cfg = os.path.join(workdir, "haproxy.cfg")
        with open(self.cfg, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        self.proc = ManagedProcess("haproxy", ["haproxy", "-db", "-f", self.cfg],
                                   os.path.join(workdir, "haproxy.log"), port=self.frontend_port)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.frontend_port

    @property
    def metrics_url(self):
        return "http://127.0.0.1:%d/metrics" % self.stats_port

    @property
    def stats_url(self):
        return "http://127.0.0.1:%d/stats" % self.stats_port

    @property
    def pid(self):
        return self.proc.pid

    def start(self):
        self.proc.start()
        return self

    def stop(self):
        self.proc.stop()
