# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""HAProxy runtime API (the "stats socket") client and parsers: one session per exchange, read server state.

Plain Python, stdlib only. ``haproxy_runtime`` plans and applies changes with it; the demo, the benchmark and
the tests read HAProxy with it.

Every exchange is one connection in HAProxy's non-interactive mode: the client writes ONE line of
``;``-separated commands and reads until HAProxy closes the connection. HAProxy executes the commands of that
line one after the other in its CLI applet, so all commands of a change reach HAProxy together: either the line
arrives (and all of it runs) or it does not (and nothing runs). ``read_backend`` is the read session
(``show cli level;show servers state <be>;show stat <be> 4 -1``); ``state_commands`` is the read-back a change
line ends with.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import re
import socket


MAX_WEIGHT = 256
STATES = ("ready", "drain", "maint")
NAME_RE = re.compile(r"^[A-Za-z0-9_.:-]+$")

# srv_op_state (enum srv_state)
OP_STATES = {0: "stopped", 1: "starting", 2: "running", 3: "stopping"}
# srv_admin_state bits (enum srv_admin)
ADMF_FMAINT = 0x01   # forced maintenance (CLI / stats page)
ADMF_IMAINT = 0x02   # inherited from a tracked server
ADMF_CMAINT = 0x04   # "disabled" in the configuration
ADMF_FDRAIN = 0x08   # forced drain
ADMF_IDRAIN = 0x10   # inherited drain
ADMF_RMAINT = 0x20   # DNS resolution failed
ADMF_HMAINT = 0x40   # hostname-based server awaiting resolution
MAINT_MASK = ADMF_FMAINT | ADMF_IMAINT | ADMF_CMAINT | ADMF_RMAINT | ADMF_HMAINT
DRAIN_MASK = ADMF_FDRAIN | ADMF_IDRAIN


class HAProxyError(Exception):
    """Base error; ``details`` carries what the caller should report (before state, changed servers...)."""

    def __init__(self, msg, **details):
        super(HAProxyError, self).__init__(msg)
        self.msg = msg
        self.details = details


class ValidationError(HAProxyError):
    """Bad request (field, value, accepted values in the message); nothing was sent."""


class SocketUnavailable(HAProxyError):
    """Could not connect: nothing was sent."""


class ConnectionLost(HAProxyError):
    """The connection broke after (part of) the request was written; ``partial`` holds what was read."""


class ApplyError(HAProxyError):
    """The change did not complete as asked; details say what changed and whether it was restored."""


# --------------------------------------------------------------------------- addresses and sessions

def parse_address(value):
    """'/run/haproxy/admin.sock', 'unix:/path', 'tcp:host:port', 'tcp:[::1]:port' or 'host:port'.

    Returns ('unix', path) or ('tcp', (host, port)).
    """
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("socket: %r is not accepted; give a UNIX socket path (/run/haproxy/admin.sock, "
                              "unix:/path) or tcp:host:port" % (value,))
    text = value.strip()
    if text.startswith("unix:"):
        return ("unix", text[5:])
    if text.startswith("/") or text.startswith("./") or text.startswith("~"):
        return ("unix", text)
    if text.startswith("tcp:"):
        text = text[4:]
    elif text.startswith("ipv4@") or text.startswith("ipv6@"):
        text = text[5:]
    m = re.match(r"^\[([0-9A-Fa-f:.]+)\]:(\d+)$", text) or re.match(r"^([^:\s]+):(\d+)$", text)
    if not m or not 0 < int(m.group(2)) < 65536:
        raise ValidationError("socket: %r is not accepted; give a UNIX socket path (/run/haproxy/admin.sock, "
                              "unix:/path) or tcp:host:port (tcp:127.0.0.1:9999, tcp:[::1]:9999)" % (value,))
    return ("tcp", (m.group(1), int(m.group(2))))


def describe_address(address):
    kind, where = address
    return "unix:%s" % where if kind == "unix" else "tcp:%s:%d" % where


class RuntimeClient:
    """One non-interactive session per ``execute``: write one ';'-joined line, read until EOF."""

    def __init__(self, address, timeout=5.0):
        self.address = parse_address(address) if isinstance(address, str) else address
        self.timeout = float(timeout)
        self.sessions = 0

    @property
    def where(self):
        return describe_address(self.address)

    def _connect(self):
        kind, where = self.address
        try:
            if kind == "unix":
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self.timeout)
                try:
                    sock.connect(where)
                except Exception:
                    sock.close()
                    raise
            else:
                sock = socket.create_connection(where, timeout=self.timeout)
                sock.settimeout(self.timeout)
        except (OSError, socket.timeout) as exc:
            hint = ""
            if kind == "unix" and getattr(exc, "errno", None) in (errno.ENOENT, errno.ECONNREFUSED):
                hint = " (is HAProxy running, and does its global section have 'stats socket %s level admin'?)" % where
            elif kind == "tcp":
                hint = " (is HAProxy running with 'stats socket ipv4@%s:%d level admin'?)" % where
            raise SocketUnavailable("cannot connect to the HAProxy runtime API at %s: %s%s; nothing was sent"
                                    % (self.where, exc, hint), address=self.where)
        return sock

    def execute(self, commands):
        """Run ``commands`` (a list or one string) in one session; returns HAProxy's whole answer (str)."""
        if isinstance(commands, str):
            commands = [commands]
        for cmd in commands:
            if "\n" in cmd or "\r" in cmd or ";" in cmd:
                raise ValueError("command %r contains a separator" % cmd)
        line = (";".join(commands) + "\n").encode("ascii")
        sock = self._connect()
        self.sessions += 1
        chunks = []
        try:
            try:
                sock.sendall(line)
            except (OSError, socket.timeout) as exc:
                raise ConnectionLost("connection to the HAProxy runtime API at %s broke while sending: %s"
                                     % (self.where, exc), partial="", sent=False)
            while True:
                try:
                    data = sock.recv(65536)
                except (OSError, socket.timeout) as exc:
                    raise ConnectionLost("connection to the HAProxy runtime API at %s broke before the answer was "
                                         "complete: %s" % (self.where, exc),
                                         partial=b"".join(chunks).decode("utf-8", "replace"), sent=True)
                if not data:
                    break
                chunks.append(data)
        finally:
            sock.close()
        return b"".join(chunks).decode("utf-8", "replace")


# --------------------------------------------------------------------------- parsing

def split_responses(text, count):
    """The first ``count`` single-line-or-empty answers of a ';' session, and the rest of the text.

    HAProxy ends every command's answer with an empty line; a successful ``set
    server`` answers nothing (so its answer is just the empty line) and an error
    is one line of text.  Returns (answers, rest): each answer is '' on success
    or the message.
    """
    answers = []
    pos = 0
    for dummy in range(count):
        nl = text.find("\n", pos)
        if nl < 0:
            raise ConnectionLost("incomplete answer from HAProxy: %d of %d command answers" % (len(answers), count),
                                 partial=text, answers=answers)
        first = text[pos:nl]
        if first == "":
            answers.append("")
            pos = nl + 1
            continue
        nl2 = text.find("\n\n", nl)
        if nl2 < 0:
            raise ConnectionLost("incomplete answer from HAProxy: %d of %d command answers" % (len(answers), count),
                                 partial=text, answers=answers)
        answers.append(text[pos:nl2].strip())
        pos = nl2 + 2
    return answers, text[pos:]


def parse_servers_state(text):
    """``show servers state [<backend>]`` -> list of dicts, one per server.

    Keys: backend, server, server_id, address, port, op_state (stopped, starting,
    running, stopping), op_state_code, admin_flags (int), admin_state (ready,
    drain, maint), weight (the user weight, srv_uweight), initial_weight, check_health.
    Raises ValueError on anything that is not that output.
    """
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise ValueError("empty 'show servers state' answer")
    if lines[0].strip() != "1":
        raise ValueError("unexpected 'show servers state' answer: %r" % lines[0][:200])
    if len(lines) < 2 or not lines[1].startswith("# "):
        raise ValueError("'show servers state' answer without its header line")
    header = lines[1][2:].split()
    need = ("be_name", "srv_name", "srv_op_state", "srv_admin_state", "srv_uweight", "srv_iweight")
    missing = [n for n in need if n not in header]
    if missing:
        raise ValueError("'show servers state' header lacks %s" % ", ".join(missing))
    out = []
    for ln in lines[2:]:
        if ln.startswith("#"):
            continue
        fields = ln.split()
        if len(fields) < len(header):
            raise ValueError("short 'show servers state' line: %r" % ln)
        row = dict(zip(header, fields))
        op = int(row["srv_op_state"])
        adm = int(row["srv_admin_state"])
        out.append({
            "backend": row["be_name"],
            "server": row["srv_name"],
            "server_id": int(row["srv_id"]) if "srv_id" in row else None,
            "address": row.get("srv_addr"),
            "port": int(row["srv_port"]) if row.get("srv_port", "-").isdigit() else None,
            "op_state_code": op,
            "op_state": OP_STATES.get(op, "unknown(%d)" % op),
            "admin_flags": adm,
            "admin_state": admin_state_name(adm),
            "weight": int(row["srv_uweight"]),
            "initial_weight": int(row["srv_iweight"]),
            "check_health": int(row["srv_check_health"]) if row.get("srv_check_health", "").isdigit() else None,
        })
    return out


def admin_state_name(flags):
    """srv_admin_state bits -> 'maint' (any maintenance bit), 'drain' (a drain bit) or 'ready'."""
    if flags & MAINT_MASK:
        return "maint"
    if flags & DRAIN_MASK:
        return "drain"
    return "ready"


def parse_show_stat(text):
    """``show stat`` CSV -> {(pxname, svname): row dict}.  Only lines after the '# pxname' header are read."""
    lines = text.splitlines()
    start = None
    for i, ln in enumerate(lines):
        if ln.startswith("# pxname,"):
            start = i
            break
    if start is None:
        raise ValueError("no 'show stat' CSV header in the answer")
    header = lines[start][2:].split(",")
    rows = {}
    for ln in lines[start + 1:]:
        if not ln.strip() or ln.startswith("#"):
            continue
        fields = ln.split(",")
        row = dict(zip(header, fields))
        rows[(row.get("pxname"), row.get("svname"))] = row
    return rows


def merge_stat(servers, stat_rows):
    """Add show-stat fields (status, effective weight, backup flag, check status) to parsed server dicts."""
    for srv in servers:
        row = stat_rows.get((srv["backend"], srv["server"]))
        if row is None:
            srv.setdefault("status", None)
            srv.setdefault("backup", False)
            continue
        srv["status"] = row.get("status") or None
        try:
            srv["effective_weight"] = int(row.get("weight") or 0)
        except ValueError:
            srv["effective_weight"] = None
        srv["backup"] = row.get("bck") == "1"
        srv["check_status"] = row.get("check_status") or None
        srv["counters"] = dict((name, _count(row.get(field))) for name, field in COUNTERS)
    return servers


# show-stat counters of a server (cumulative since HAProxy started): what a drill compares before and after
COUNTERS = (("sessions", "stot"), ("responses_5xx", "hrsp_5xx"), ("connection_errors", "econ"),
            ("response_errors", "eresp"), ("retries", "wretr"), ("redispatches", "wredis"))


def _count(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def server_view(srv):
    """The per-server dict the module returns."""
    return {
        "backend": srv["backend"],
        "server": srv["server"],
        "weight": srv["weight"],
        "initial_weight": srv.get("initial_weight"),
        "admin_state": srv["admin_state"],
        "op_state": srv["op_state"],
        "status": srv.get("status"),
        "backup": srv.get("backup", False),
        "serving": is_serving(srv),
        "address": srv.get("address"),
        "port": srv.get("port"),
        "counters": srv.get("counters"),
    }


def is_serving(srv, weight=None, admin_state=None):
    """A non-backup server takes new requests: operationally running, admin state ready, weight > 0."""
    weight = srv["weight"] if weight is None else weight
    admin_state = srv["admin_state"] if admin_state is None else admin_state
    return (not srv.get("backup", False) and srv["op_state"] == "running" and admin_state == "ready"
            and weight > 0)


# --------------------------------------------------------------------------- reading state

def read_level(client):
    return client.execute(["show cli level"]).strip()


def list_backends(client):
    text = client.execute(["show backend"])
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def read_backend(client, backend, require_admin=True):
    """Read level, servers state and stat of ``backend`` in one session -> {server: dict}, level.

    Raises ValidationError for an unknown backend (listing the existing ones) and
    for a socket that is not at admin level.
    """
    text = client.execute(["show cli level"] + state_commands(backend))
    (level,), rest = split_responses(text, 1)
    level = level.strip()
    if level not in ("admin", "operator", "user"):
        raise HAProxyError("HAProxy at %s did not answer 'show cli level' (got %r); HAProxy 2.0 or later is needed"
                           % (client.where, level[:200]))
    if rest.startswith("Can't find backend"):
        try:
            names = list_backends(client)
        except HAProxyError:
            names = []
        raise ValidationError("backend: %r is not a backend of the HAProxy at %s; backends there: %s"
                              % (backend, client.where, ", ".join(names) or "(could not list)"), field="backend")
    if require_admin and level != "admin":
        raise ValidationError("socket: the runtime API at %s is at level %r, changing weights and states needs "
                              "'level admin' on its 'stats socket' line" % (client.where, level), field="socket")
    try:
        servers = parse_state_and_stat(rest, backend)
    except ValueError as exc:
        raise HAProxyError("unexpected answer from HAProxy at %s to 'show servers state %s': %s"
                           % (client.where, backend, exc))
    return servers, level


def parse_state_and_stat(text, backend):
    """``show servers state <be>`` followed by ``show stat <be> 4 -1`` in one answer -> {server: dict}."""
    cut = text.find("# pxname,")
    servers = parse_servers_state(text if cut < 0 else text[:cut])
    merge_stat(servers, parse_show_stat(text[cut:]) if cut >= 0 else {})
    return dict((s["server"], s) for s in servers if s["backend"] == backend)


def state_commands(backend):
    """The read-back appended to every change line: it runs right after the change, in the same session."""
    return ["show servers state %s" % backend, "show stat %s 4 -1" % backend]


def read_servers(client, backend):
    """Servers state and stat of ``backend`` in one session (verification, re-reads) -> {server: dict}."""
    return parse_state_and_stat(client.execute(state_commands(backend)), backend)
