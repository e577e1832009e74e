# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for the JetStream module tests: real nats-server processes and ansible-playbook runs.

Every test gets its own nats-server (free loopback port, store in its temp dir)
started through demo/stack/nats.py; the servers that require token, nkey, credentials
(operator JWT) or TLS authentication are started once per module. The modules are run
by ansible-playbook through the collection at .collections/ansible_collections/stagegate/rollout.
"""
import asyncio
import json
import os
import types

import pytest

from demo.stack.nats import NatsServer
from demo.stack.ports import free_port
from tests.integration.playbook_run import ansible_env, run_playbook

import auth_kit

AUTH_USER = "rollout"
AUTH_PASSWORD = "S3cr3t-Pw-7f4e2a91"


@pytest.fixture
def nats_server(tmp_path):
    server = NatsServer(str(tmp_path / "nats")).start()
    yield server
    server.stop()


@pytest.fixture
def auth_nats_server(tmp_path):
    server = NatsServer(str(tmp_path / "nats-auth"), user=AUTH_USER, password=AUTH_PASSWORD).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def nats_auth_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("nats-auth-modes")


def _module_server(directory, config, **facts):
    server = NatsServer(str(directory), config=config).start()
    return server, types.SimpleNamespace(url=server.url, **facts)


@pytest.fixture(scope="module")
def token_nats_server(nats_auth_dir):
    """A nats-server that requires a token; .url, .token."""
    token = "tok-" + os.urandom(12).hex()
    server, facts = _module_server(nats_auth_dir / "token", "authorization {\n  token: %s\n}\n" % json.dumps(token),
                                   token=token)
    yield facts
    server.stop()


@pytest.fixture(scope="module")
def nkey_nats_server(nats_auth_dir):
    """A nats-server that knows one nkey user; .url, .seed (its seed), .other_seed (a user it does not know)."""
    user, other = auth_kit.new_key("user"), auth_kit.new_key("user")
    server, facts = _module_server(nats_auth_dir / "nkey", "authorization {\n  users: [{nkey: %s}]\n}\n"
                                   % user.public_key.decode(), seed=user.seed.decode(), other_seed=other.seed.decode())
    yield facts
    server.stop()


@pytest.fixture(scope="module")
def creds_nats_server(nats_auth_dir):
    """A nats-server in operator mode (decentralised JWT auth); .url, .creds (a user's credentials file) and
    .seed, .foreign_creds (a user signed by an account the operator never issued) and .foreign_seed."""
    op = auth_kit.Operator()
    d = nats_auth_dir / "creds"
    d.mkdir()
    seed = op.user_creds(str(d / "rollout.creds"))
    foreign_seed = op.user_creds(str(d / "foreign.creds"), account=auth_kit.new_key("account"))
    server, facts = _module_server(d / "server", op.server_config(str(d)), creds=str(d / "rollout.creds"), seed=seed,
                                   foreign_creds=str(d / "foreign.creds"), foreign_seed=foreign_seed)
    yield facts
    server.stop()


@pytest.fixture(scope="module")
def tls_nats_servers(nats_auth_dir):
    """Two nats-servers with a certificate of a test CA: .url (server TLS only) and .mtls_url (client
    certificates required, verify); .pki (ca, client_cert, client_key, ...) and .other_ca (a CA that signed
    nothing of these)."""
    pki = auth_kit.make_pki(str(nats_auth_dir / "pki"), "rollout")
    other = auth_kit.make_pki(str(nats_auth_dir / "pki-other"), "other")
    tls = "  cert_file: %s\n  key_file: %s\n  ca_file: %s\n" % tuple(
        json.dumps(pki[k]) for k in ("server_cert", "server_key", "ca"))
    plain = NatsServer(str(nats_auth_dir / "tls"), config="tls {\n%s}\n" % tls).start()
    mutual = NatsServer(str(nats_auth_dir / "mtls"), config="tls {\n%s  verify: true\n}\n" % tls).start()
    yield types.SimpleNamespace(url=plain.url.replace("nats://", "tls://"), mtls_url=mutual.url.replace("nats://", "tls://"),
                                pki=pki, other_ca=other["ca"])
    plain.stop()
    mutual.stop()


@pytest.fixture
def closed_url():
    """A loopback URL where nothing listens."""
    return "nats://127.0.0.1:%d" % free_port()


@pytest.fixture
def playbook(tmp_path):
    """Run tasks in a playbook on localhost; returns a PlaybookRun (tests/integration/playbook_run.py).

    ``servers`` goes to module_defaults of the action group stagegate.rollout.nats.
    With ``verbosity`` the default callback is used (text output, no parsed results).
    """
    counter = [0]

    def run(tasks, servers=None, check=False, diff=False, verbosity=0, extra_env=None, play_vars=None,
            module_defaults=None, roles=None, extra_args=()):
        counter[0] += 1
        defaults = dict(module_defaults or {})
        if servers is not None:
            defaults.setdefault("servers", servers)
        play = {"name": "jetstream test", "hosts": "localhost", "gather_facts": False, "vars": play_vars or {},
                "tasks": tasks}
        if roles:
            play["roles"] = roles
        if defaults:
            play["module_defaults"] = {"group/stagegate.rollout.nats": defaults}
        path = tmp_path / ("play%02d.yml" % counter[0])
        path.write_text(json.dumps([play], indent=1))
        unset = dict(NATS_URL=None, NATS_USER=None, NATS_PASSWORD=None)  # the modules' fallbacks: only extra_env's
        env = ansible_env(tmp_path, **dict(unset, **(extra_env or {})))
        return run_playbook(path, tmp_path, connection="local", check=check, diff=diff, verbosity=verbosity,
                            callback="default" if verbosity else "json", env=env, extra_args=extra_args)

    return run


# -- direct NATS access for checks, independent of the modules ----------------------------------------------

def js_api(url, operation, body=None, user=None, password=None, **connect):
    """One JetStream API call with nats-py; returns the decoded reply (errors included).

    ``connect``: more keyword arguments of ``nats.connect`` (token, user_credentials, nkeys_seed_str, tls, ...).
    """
    import nats

    async def call():
        kw = dict(connect)
        if user:
            kw.update(user=user, password=password)
        nc = await nats.connect(url, **kw)
        try:
            payload = b"" if body is None else json.dumps(body).encode()
            msg = await nc.request("$JS.API." + operation, payload, timeout=5)
            return json.loads(msg.data)
        finally:
            await nc.close()

    return asyncio.run(call())


def stream_config(url, name, **kw):
    """The stream's config, or None when it does not exist."""
    reply = js_api(url, "STREAM.INFO." + name, **kw)
    return None if "error" in reply else reply


def publish(url, subject, count, start=1):
    """Publish ``count`` messages ``msg-<n>`` through JetStream (acknowledged by the stream)."""
    import nats

    async def pub():
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            acks = []
            for n in range(start, start + count):
                acks.append(await js.publish(subject, ("msg-%d" % n).encode()))
            return [a.seq for a in acks]
        finally:
            await nc.close()

    return asyncio.run(pub())


def consume_all(url, stream, durable, ack=True, idle=1.0):
    """Fetch from a durable pull consumer until nothing comes for ``idle`` seconds; returns [(seq, data)]."""
    import nats
    from nats.errors import TimeoutError as NatsTimeout

    async def consume():
        nc = await nats.connect(url)
        got = []
        try:
            js = nc.jetstream()
            sub = await js.pull_subscribe_bind(durable=durable, stream=stream)
            while True:
                try:
                    msgs = await sub.fetch(batch=25, timeout=idle)
                except (NatsTimeout, asyncio.TimeoutError):
                    break
                for m in msgs:
                    got.append((m.metadata.sequence.stream, m.data.decode()))
                    if ack:
                        await m.ack_sync()
            await sub.unsubscribe()
            return got
        finally:
            await nc.close()

    return asyncio.run(consume())


@pytest.fixture
def nats_tools():
    """Direct NATS helpers for checks: js_api, stream_config, publish, consume_all."""
    import types
    return types.SimpleNamespace(js_api=js_api, stream_config=stream_config, publish=publish, consume_all=consume_all,
                                 auth_user=AUTH_USER, auth_password=AUTH_PASSWORD)
