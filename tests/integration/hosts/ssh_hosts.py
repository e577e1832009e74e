# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Real SSH "app hosts" for integration tests: one sshd per loopback address, root login by a generated key.

    with SshHosts(workdir) as hosts:                      # app1..app3 on 127.0.0.11..13, port 22
        inventory = {"all": {"hosts": hosts.inventory_hosts(sys.executable)}}

Needs root (port 22, /run/sshd) and /usr/sbin/sshd. Keys, one sshd_config and log per host and the ssh
ControlPath sockets live in ``workdir``. Stopping a host closes its ssh control master, stops its sshd and the
sessions it forked, and checks that they are gone.
"""
import os
import signal
import socket
import subprocess
import time

SSHD = "/usr/sbin/sshd"

CONFIG = """\
ListenAddress {addr}:{port}
HostKey {host_key}
PidFile {pid_file}
AuthorizedKeysFile {authorized_keys}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
"""


def accepts(addr, port, timeout=0.5):
    try:
        socket.create_connection((addr, port), timeout=timeout).close()
        return True
    except OSError:
        return False


def stat(pid):
    """(state, ppid) of a process, None when it does not exist."""
    try:
        with open("/proc/%d/stat" % pid) as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return fields[0], int(fields[1])
    except (OSError, IndexError, ValueError):
        return None


def alive(pid):
    st = stat(pid)
    return st is not None and st[0] != "Z"


def descendants(pid):
    """Pids of all processes below ``pid`` (sshd's per-connection processes and what they run)."""
    parents = dict((int(p), (stat(int(p)) or ("", 0))[1]) for p in os.listdir("/proc") if p.isdigit())
    found = {pid}
    for dummy in range(10):
        found |= set(p for p, ppid in parents.items() if ppid in found)
    return sorted(found - {pid})


def keygen(path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "stagegate-test", "-f", path],
                   check=True, capture_output=True, timeout=30)


class SshHosts:
    def __init__(self, workdir, addresses=("127.0.0.11", "127.0.0.12", "127.0.0.13"), port=22):
        self.workdir, self.port = os.path.abspath(workdir), port
        self.hosts = dict(("app%d" % (i + 1), addr) for i, addr in enumerate(addresses))  # name -> address
        self.key = os.path.join(self.workdir, "id_ed25519")
        self.procs = {}

    def path(self, name, what):
        return os.path.join(self.workdir, name, what)

    def control_path(self, name):
        return os.path.join(self.workdir, "cm-" + name)  # short: a unix socket path has at most 107 bytes

    def log(self, name):
        with open(self.path(name, "sshd.log"), encoding="utf-8", errors="replace") as fh:
            return fh.read()

    def __enter__(self):
        os.makedirs(self.workdir, exist_ok=True)
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation directory
        if not os.path.exists(self.key):
            keygen(self.key)
        try:
            for name in self.hosts:
                self.start_host(name)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        errors = []
        for name in list(self.procs):
            try:
                self.stop_host(name)
            except AssertionError as err:
                errors.append(str(err))
        assert not errors, "\n".join(errors)

    def start_host(self, name):
        addr = self.hosts[name]
        os.makedirs(os.path.join(self.workdir, name), exist_ok=True)
        if not os.path.exists(self.path(name, "host_key")):
            keygen(self.path(name, "host_key"))
        with open(self.path(name, "sshd_config"), "w") as fh:
            fh.write(CONFIG.format(addr=addr, port=self.port, host_key=self.path(name, "host_key"),
                                   pid_file=self.path(name, "sshd.pid"), authorized_keys=self.key + ".pub"))
        with open(self.path(name, "sshd.log"), "ab") as log:
            self.procs[name] = proc = subprocess.Popen(  # pylint: disable=consider-using-with
                [SSHD, "-D", "-e", "-f", self.path(name, "sshd_config")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not accepts(addr, self.port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("sshd of %s (%s:%d) did not start (rc %s):\n%s"
                                   % (name, addr, self.port, proc.poll(), self.log(name)[-2000:]))
            time.sleep(0.05)

    def stop_host(self, name):
        proc = self.procs.pop(name)
        if os.path.exists(self.control_path(name)):  # else Ansible would go on using the open connection
            subprocess.run(["ssh", "-o", "ControlPath=" + self.control_path(name), "-O", "exit", name],
                           capture_output=True, timeout=10, check=False)
        sessions = descendants(proc.pid)  # sshd leaves its sessions running when it stops: stop them too
        proc.terminate()
        proc.wait(10)
        for pid in sessions:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while any(alive(p) for p in sessions) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = [p for p in sessions + [proc.pid] if alive(p)]
        open_port = accepts(self.hosts[name], self.port)
        assert not left and not open_port, "sshd of %s left behind: pids %s, port open %s" % (name, left, open_port)

    def inventory_hosts(self, python):
        """{name: host vars} for a YAML inventory; ``python`` is the interpreter every host runs modules with."""
        return dict((name, {
            "ansible_host": addr,
            "ansible_port": self.port,
            "ansible_user": "root",
            "ansible_ssh_private_key_file": self.key,
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
                                       " -o ControlMaster=auto -o ControlPersist=60s"
                                       " -o ControlPath=" + self.control_path(name),
            "ansible_python_interpreter": python,
        }) for name, addr in self.hosts.items())
