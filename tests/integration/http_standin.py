# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A threaded HTTP server on loopback as a context manager: the one the integration tests' stand-ins share
(the AWX controller API, the webhook receivers of the evidence and fault suites: :class:`PostRecorder`).

``with HttpStandIn(Handler) as srv:`` serves ``Handler`` (a ``BaseHTTPRequestHandler`` subclass) on
``srv.base_url`` (``http://127.0.0.1:<free port>``) until the block ends; the port is picked by binding port 0,
so several test sessions run side by side. A stand-in subclasses it and passes its handler.
"""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class HttpStandIn:
    """A ``ThreadingHTTPServer`` serving ``handler`` in a daemon thread while the ``with`` block runs."""

    def __init__(self, handler):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.server.server_address[1]
        self.base_url = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
        return False


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing (pytest output stays the test's) and reads a request's body."""

    def body(self):
        """The request's body (bytes; empty without a Content-Length)."""
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def log_message(self, *args):  # noqa: D401 (http.server's name)
        pass


class PostRecorder(HttpStandIn):
    """``with PostRecorder() as srv:`` records every POST in ``srv.requests`` (``path``, ``headers``, ``body`` bytes)
    and answers the next of ``statuses`` (then 200) with a JSON body that echoes the path back, as a careless
    webhook server would (what a secret in the URL must survive)."""

    def __init__(self, statuses=None):
        self.requests = []
        self.statuses = list(statuses or [])
        recorder = self

        class Handler(QuietHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.body()
                with recorder.lock:
                    recorder.requests.append(dict(path=self.path, headers=dict(self.headers), body=body))
                    status = recorder.statuses.pop(0) if recorder.statuses else 200
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps({"ok": status == 200, "path": self.path}).encode())

        self.lock = threading.Lock()
        HttpStandIn.__init__(self, Handler)
