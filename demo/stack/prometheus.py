"""Prometheus on a loopback port scraping file_sd targets every second (tests and the demo)."""
import json
import os
import urllib.request

from demo.stack.ports import free_port
from demo.stack.process import Component, ManagedProcess, bin_path


class Prometheus(Component):
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
            "prometheus", [bin_path("prometheus"), "--config.file=" + cfg, "--storage.tsdb.path=" + os.path.join(workdir, "data"),
                           "--web.listen-address=127.0.0.1:%d" % self.port, "--web.enable-lifecycle"],
            os.path.join(workdir, "prometheus.log"), ready=self._ready, start_timeout=30)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def _ready(self):
        with urllib.request.urlopen(self.url + "/-/ready", timeout=0.5) as r:
            return r.status == 200
