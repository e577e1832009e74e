# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""sentinel_probe (the module) against a real HTTP server on loopback and real commands."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import http.server
import json
import sys
import threading

import pytest

from ansible_collections.stagegate.rollout.plugins.modules import sentinel_probe
from tests.unit.module_run import run_module_main

ANSWERS = {"/repos": (200, {"repos": ["a", "b", "c"]}), "/none": (200, {"repos": []}), "/gone": (404, {"error": "x"})}


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        status, body = ANSWERS.get(self.path, (500, {}))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield "http://127.0.0.1:%d" % srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def run_module(args, capsys):
    return run_module_main(sentinel_probe, args, capsys)


def test_urls_and_commands_counted_and_a_password_never_printed(server, capsys):
    base = server.replace("http://", "http://ops:pa55word@")
    out, res = run_module({"sentinels": [
        {"name": "repos", "url": base + "/repos", "results": "repos"},
        {"name": "repos, 4 needed", "path": "/repos", "results": "repos", "min_results": 4},
        {"name": "none", "url": server + "/none", "results": "repos"},
        {"name": "gone", "url": server + "/gone", "results": "repos"},
        {"name": "lines", "command": [sys.executable, "-c", "print('a'); print(''); print('b')"]},
        {"name": "exit 3", "command": [sys.executable, "-c", "import sys; print('no'); sys.exit(3)"]},
    ], "base_url": base, "_ansible_verbosity": 3}, capsys)
    assert "pa55word" not in out
    assert not res.get("failed") and res["changed"] is False, res
    got = dict((p["name"], (p["results"], p["returned"], p["error"])) for p in res["sentinels"])
    assert got["repos"] == (3, True, None)
    assert got["repos, 4 needed"] == (3, False, None)
    assert got["none"] == (0, False, None)
    assert got["gone"][:2] == (None, False) and got["gone"][2].startswith("HTTP 404"), got
    assert got["lines"] == (2, True, None)
    assert got["exit 3"][:2] == (None, False) and got["exit 3"][2].startswith("exit code 3: no"), got
    assert (res["returned"], res["total"]) == (2, 6)
    assert res["sentinels"][0]["target"] == server + "/repos"  # the userinfo left out


def test_a_sentinel_with_both_a_url_and_a_command_is_refused(server, capsys):
    dummy, res = run_module({"sentinels": [{"name": "both", "url": server + "/repos", "command": ["true"]}]}, capsys)
    assert res["failed"] and "both needs exactly one of path, url and command" in res["msg"], res


def test_a_path_without_a_base_url_is_refused(capsys):
    dummy, res = run_module({"sentinels": [{"name": "docs", "path": "/repos"}]}, capsys)
    assert res["failed"] and "docs has a path, base_url is required" in res["msg"], res
