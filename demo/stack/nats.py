"""nats-server with JetStream on a loopback port, its store in its own directory (tests and the demo)."""
import os
import shutil
import sys

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
