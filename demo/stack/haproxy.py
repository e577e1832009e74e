"""HAProxy on loopback with an admin runtime socket and a Prometheus exporter frontend (tests and the demo)."""
import os

from demo.stack.ports import free_port
from demo.stack.process import Component, ManagedProcess, bin_path


class HAProxy(Component):
    def __init__(self, workdir, backends, frontend_port=None, stats_port=None):
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.frontend_port = frontend_port or free_port()
        self.stats_port = stats_port or free_port()
        self.socket_path = os.path.join(workdir, "admin.sock")
        lines = [
            "global", "  stats socket %s mode 600 level admin" % self.socket_path, "  maxconn 2000", "",
            # a health check may take 2 s (without it: inter, 500 ms): a slot slow to answer on a busy machine is not
            # taken for a dead one (a refused connection still fails the check at once)
            "defaults", "  mode http", "  timeout connect 2s", "  timeout client 30s", "  timeout server 30s",
            "  timeout check 2s",
            "  option redispatch", "  retries 2",
            # a GET lost with a killed slot (connection refused or closed without an answer) is sent again,
            # to another server when there is one (HAProxy's layer-7 retries)
            "  retry-on conn-failure empty-response", "",
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
        self.proc = ManagedProcess("haproxy", [bin_path("haproxy"), "-db", "-f", self.cfg],
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


def runtime_command(sock_path, cmd, timeout=2.0):
    """One runtime API command on the admin socket, through the collection's own client."""
    from ansible_collections.stagegate.rollout.plugins.module_utils.haproxy_client import RuntimeClient
    return RuntimeClient(("unix", sock_path), timeout=timeout).execute(cmd)
