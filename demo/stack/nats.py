"""nats-server with JetStream on a loopback port, its store in its own directory (tests and the demo)."""
import os

from demo.stack.ports import free_port
from demo.stack.process import Component, ManagedProcess, bin_path


class NatsServer(Component):
    """``user``/``password``: the server requires them (``--user``/``--pass``). ``config``: the text of a
    nats-server configuration file (authorization, tls, operator, ...) written to ``nats.conf`` in the store
    directory; the listen address, port, JetStream and store directory still come from the command line."""

    def __init__(self, store_dir, port=None, user=None, password=None, config=None):
        self.store_dir = store_dir
        self.port = port or free_port()
        os.makedirs(store_dir, exist_ok=True)
        argv = [bin_path("nats-server"), "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", store_dir]
        if user:
            argv += ["--user", user, "--pass", password or ""]
        if config is not None:
            conf = os.path.join(store_dir, "nats.conf")
            with open(conf, "w") as f:
                f.write(config)
            argv += ["-c", conf]
        self.proc = ManagedProcess("nats-server", argv, os.path.join(store_dir, "nats.log"), port=self.port)

    @property
    def url(self):
        return "nats://127.0.0.1:%d" % self.port
