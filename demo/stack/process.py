"""A child process that is started, waited for until ready, and always stopped."""
import os
import signal
import subprocess
import time

from demo.stack.ports import port_open


class ComponentError(RuntimeError):
    """A component did not start or stop as expected (the message says which and why)."""


class ManagedProcess:
    """Run ``argv`` with stdout/stderr to ``log_path``; ready when ``ready()`` is true.

    ``ready`` defaults to "TCP port ``port`` accepts connections". The process
    gets its own process group so that stop() also ends anything it spawned.
    """

    def __init__(self, name, argv, log_path, port=None, ready=None, env=None, cwd=None,
                 start_timeout=15.0):
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.port = port
        self._ready = ready or (lambda: port is not None and port_open(port))
        self.env = env
        self.cwd = cwd
        self.start_timeout = start_timeout
        self.proc = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self):
        if self.running():
            return self
        log = open(self.log_path, "ab")
        env = dict(os.environ, **(self.env or {}))
        self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                     cwd=self.cwd, start_new_session=True)
        log.close()
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ComponentError("%s exited with code %s during start-up; log %s:\n%s"
                                     % (self.name, self.proc.returncode, self.log_path, self.tail()))
            try:
                if self._ready():
                    return self
            except Exception:  # readiness probes may fail while starting
                pass
            time.sleep(0.05)
        self.stop()
        raise ComponentError("%s not ready after %.0fs; log %s:\n%s"
                             % (self.name, self.start_timeout, self.log_path, self.tail()))

    def signal(self, sig):
        if self.running():
            os.killpg(self.proc.pid, sig)

    def pause(self):
        """SIGSTOP the component (a stalled process that still holds its port)."""
        self.signal(signal.SIGSTOP)

    def resume(self):
        self.signal(signal.SIGCONT)

    def stop(self, timeout=5.0):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGCONT)
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout)
        self.proc = None

    def tail(self, lines=20):
        try:
            with open(self.log_path, "rb") as fh:
                return b"".join(fh.readlines()[-lines:]).decode("utf-8", "replace")
        except OSError:
            return ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def bin_path(name):
    """The executable ``name`` from this interpreter's environment (the project's .venv), else from PATH."""
    import shutil
    import sys
    local = os.path.join(os.path.dirname(sys.executable), name)
    return local if os.path.exists(local) else shutil.which(name)


class Component:
    """Base of the launchers (nats, prometheus, haproxy): ``self.proc`` is their ManagedProcess."""

    proc = None

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

    def pause(self):
        self.proc.pause()

    def resume(self):
        self.proc.resume()
