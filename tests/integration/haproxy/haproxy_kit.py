# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers for the haproxy_traffic integration tests and bench/haproxy_rollback.py.

* ``Backends``: tiny HTTP servers (threads) answering ``/healthz`` 200 and any
  other path with their own name (body and ``X-Server`` header).
* ``LB``: a real HAProxy started by ``demo.stack.haproxy.HAProxy`` (admin UNIX
  socket), plus an admin and an operator runtime API socket on TCP loopback.
* ``Load``: client threads sending sequential requests to the frontend, each
  request on a new connection, recording (t, status, server).
* ``Relay``: a UNIX socket relay in front of the runtime API that can drop a
  session, forward only part of a command line, or cut the answer -- the
  "connection dies mid-apply" cases against the real HAProxy.
* ``raw_session``: one runtime API session with a plain socket. ``LB`` reads and
  sets HAProxy with it on purpose, not with the collection's ``RuntimeClient``:
  these tests check that client (and the module built on it), so what they see
  of HAProxy must not pass through it; the relay forwards lines byte for byte.
* ``run_module``: runs ``stagegate.rollout.haproxy_traffic`` (or another module)
  through ``ansible-playbook`` with ``tests/integration/playbook_run.py`` and
  returns its result.
"""

import http.client
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from demo.stack.haproxy import HAProxy
from demo.stack.ports import free_port
from tests.integration.playbook_run import run_tasks


# --------------------------------------------------------------------------- backend servers

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = b"ok\n" if self.path == "/healthz" else self.server.name.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Server", self.server.name)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # health checks close early; not an error


class Backends:
    """HTTP servers on free loopback ports, one per name."""

    def __init__(self, names):
        self.names = list(names)
        self.servers = {}

    def start(self):
        for n in self.names:
            srv = _Server(("127.0.0.1", 0), _Handler)
            srv.name = n
            threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
            self.servers[n] = srv
        return self

    def addr(self, name):
        return "127.0.0.1:%d" % self.servers[name].server_address[1]

    def stop(self):
        for srv in self.servers.values():
            srv.shutdown()
            srv.server_close()
        self.servers = {}


# --------------------------------------------------------------------------- HAProxy

class LB:
    """A real HAProxy in front of ``backends``; backend ``app`` with the given initial weights."""

    def __init__(self, workdir, backends, weights, backend="app"):
        self.backend = backend
        self.tcp_port = free_port()
        self.tcp_operator_port = free_port()
        self.haproxy = HAProxy(workdir, {backend: [(n, backends.addr(n), w) for n, w in weights.items()]})
        with open(self.haproxy.cfg) as fh:
            cfg = fh.read()
        extra = ("  stats socket ipv4@127.0.0.1:%d level admin\n"
                 "  stats socket ipv4@127.0.0.1:%d level operator\n" % (self.tcp_port, self.tcp_operator_port))
        cfg = cfg.replace("global\n", "global\n" + extra, 1)
        with open(self.haproxy.cfg, "w") as fh:
            fh.write(cfg)

    @property
    def socket_path(self):
        return self.haproxy.socket_path

    @property
    def tcp(self):
        return "tcp:127.0.0.1:%d" % self.tcp_port

    @property
    def port(self):
        return self.haproxy.frontend_port

    def start(self):
        self.haproxy.start()
        wait_for(lambda: os.path.exists(self.socket_path), 5, "HAProxy admin socket")
        # every server UP by its first health check before a test starts
        wait_for(lambda: all(s == "UP" for s in self.stat_status().values()), 10, "servers UP")
        return self

    def stop(self):
        self.haproxy.stop()

    def cli(self, line, address=None):
        """Raw runtime API call (one session) on the admin socket, or on the TCP ``address`` (host, port)."""
        return raw_session(self.socket_path if address is None else address, line).decode()

    def servers_state(self, address=None):
        """``show servers state app`` -> {server: (uweight, admin_state_bits, op_state)}."""
        out = {}
        for ln in self.cli("show servers state %s" % self.backend, address).splitlines():
            f = ln.split()
            if len(f) > 8 and f[1] == self.backend:
                out[f[3]] = (int(f[7]), int(f[6]), int(f[5]))
        return out

    def weights(self):
        return dict((n, v[0]) for n, v in self.servers_state().items())

    def stat_status(self):
        out = {}
        for ln in self.cli("show stat").splitlines():
            f = ln.split(",")
            if len(f) > 18 and f[0] == self.backend and f[1] not in ("BACKEND", "FRONTEND"):
                out[f[1]] = f[17]
        return out

    def http_stats_weights(self):
        """Weights from the HTTP stats page (CSV), which works without the runtime socket."""
        conn = http.client.HTTPConnection("127.0.0.1", self.haproxy.stats_port, timeout=5)
        try:
            conn.request("GET", "/stats;csv")
            text = conn.getresponse().read().decode()
        finally:
            conn.close()
        lines = text.splitlines()
        header = lines[0].lstrip("# ").split(",")
        iw = header.index("weight")
        out = {}
        for ln in lines[1:]:
            f = ln.split(",")
            if len(f) > iw and f[0] == self.backend and f[1] not in ("BACKEND", "FRONTEND"):
                out[f[1]] = int(f[iw])
        return out

    def set_weights(self, weights):
        """Reset weights and states directly (test set-up), all in one session."""
        cmds = []
        for n, w in weights.items():
            cmds += ["set server %s/%s state ready" % (self.backend, n), "set server %s/%s weight %d" % (
                self.backend, n, w)]
        self.cli(";".join(cmds))


def raw_session(address, line):
    """One runtime API session with a plain socket (see the module docstring for why): ``line`` sent, the answer
    read to the end (bytes). ``address``: a UNIX socket path or a TCP (host, port)."""
    if isinstance(address, str):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(address)
    else:
        s = socket.create_connection(address, timeout=5)
    try:
        s.sendall(line.encode() if line.endswith("\n") else (line + "\n").encode())
        out = []
        while True:
            d = s.recv(65536)
            if not d:
                break
            out.append(d)
        return b"".join(out)
    finally:
        s.close()


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))


# --------------------------------------------------------------------------- client traffic

def request(port, timeout=5.0):
    """One GET / on a new connection -> (status, server name or error text)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        body = resp.read().decode("utf-8", "replace")
        return resp.status, resp.getheader("X-Server") or body[:60]
    except Exception as exc:  # a failed request is a result, not a crash
        return 0, "%s: %s" % (type(exc).__name__, exc)
    finally:
        conn.close()


def count(port, n):
    """Send n sequential requests; returns ({server: count}, failures)."""
    counts, failures = {}, []
    for dummy in range(n):
        status, who = request(port)
        if status == 200:
            counts[who] = counts.get(who, 0) + 1
        else:
            failures.append((status, who))
    return counts, failures


class Load:
    """``clients`` threads, each sending sequential requests until stop(); results per thread."""

    def __init__(self, port, clients=2):
        self.port = port
        self.clients = clients
        self.results = [[] for dummy in range(clients)]
        self._stop = threading.Event()
        self._threads = []

    def _run(self, idx):
        out = self.results[idx]
        while not self._stop.is_set():
            t = time.perf_counter()
            status, who = request(self.port)
            out.append((t, time.perf_counter(), status, who))

    def start(self):
        for i in range(self.clients):
            th = threading.Thread(target=self._run, args=(i,), daemon=True)
            th.start()
            self._threads.append(th)
        return self

    def stop(self):
        self._stop.set()
        for th in self._threads:
            th.join(10)
        return self

    @property
    def all(self):
        return sorted(r for res in self.results for r in res)

    def failed(self):
        return [r for r in self.all if r[2] < 200 or r[2] >= 300]


# --------------------------------------------------------------------------- a runtime API relay that breaks

class Relay:
    """UNIX socket relay to the runtime API; ``mode`` decides what happens to change sessions.

    ``pass``: forward everything.  ``drop``: read the command line, close without
    forwarding (HAProxy runs nothing).  ``partial:N``: forward only the first N
    commands of the line, then close without answering.  ``cut``: forward the
    whole line, let HAProxy answer, close without passing the answer on.  Only
    sessions that contain ``set server`` are affected, and only the first one.
    """

    def __init__(self, target_path, path, mode="pass"):
        self.target = target_path
        self.path = path
        self.mode = mode
        self.sessions = []
        self._armed = True
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(path)
        self._sock.listen(16)
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop:
            try:
                conn, dummy = self._sock.accept()
            except OSError:
                return
            try:
                self._one(conn)
            except OSError:
                pass
            finally:
                conn.close()

    def _one(self, conn):
        conn.settimeout(5)
        line = b""
        while not line.endswith(b"\n"):
            d = conn.recv(65536)
            if not d:
                return
            line += d
        text = line.decode()
        self.sessions.append(text)
        mode = self.mode if (self._armed and "set server" in text) else "pass"
        if mode != "pass":
            self._armed = False
        if mode == "drop":
            return
        if mode.startswith("partial:"):
            keep = int(mode.split(":")[1])
            text = ";".join(text.rstrip("\n").split(";")[:keep]) + "\n"
        answer = raw_session(self.target, text)
        if mode == "pass":
            conn.sendall(answer)
        # partial / cut: the answer never reaches the client

    def close(self):
        self._stop = True
        self._sock.close()
        if os.path.exists(self.path):
            os.unlink(self.path)


# --------------------------------------------------------------------------- the module through ansible-playbook

def run_module(tmp_dir, args, check=False, diff=False, timeout=120, module="stagegate.rollout.haproxy_traffic"):
    """Run ``module`` (haproxy_traffic) with ``args`` via ansible-playbook (tests/integration/playbook_run.py);
    returns (its result, even a failed one; wall s of the run)."""
    os.makedirs(tmp_dir, exist_ok=True)
    run = run_tasks([{"name": "Change traffic", module: args, "ignore_errors": True}], tmp_dir, check=check, diff=diff,
                    timeout=timeout)
    assert run.rc == 0 and run.results, "ansible-playbook did not give the module's result\n%r" % run
    return run.task("Change traffic"), run.elapsed
