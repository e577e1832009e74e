# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of module_utils/nats_connection.py: option validation, secrets, error messages (no server)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import asyncio
import socket
import ssl

import pytest

from ansible_collections.stagegate.rollout.plugins.module_utils import nats_connection as nc_mod
from ansible_collections.stagegate.rollout.plugins.module_utils.nats_connection import (
    NATS_ARGUMENT_SPEC, DEFAULT_SERVER, NatsConfigError, NatsConnectionError, NatsConnectionParams, NatsSession,
    describe_connect_error, nats_argument_spec, parse_server, run_async)

SEED = "SUAMLK2ZNL35WSMW37E7UD4VZ7ELPKW7DHC3BWBSD2GCZ7IUQQXZIORRBU"
PASSWORD = "pw-Very-Secret-123"
TOKEN = "tok-Very-Secret-456"


def params(**kw):
    base = dict((k, None) for k in NATS_ARGUMENT_SPEC)
    base.update(connect_timeout=5.0, request_timeout=10.0)
    base.update(kw)
    return base


@pytest.fixture
def creds_file(tmp_path):
    path = tmp_path / "user.creds"
    path.write_text("-----BEGIN NATS USER JWT-----\neyJhbGciOi.fake.jwt\n------END NATS USER JWT------\n\n"
                    "-----BEGIN USER NKEY SEED-----\n%s\n------END USER NKEY SEED------\n" % SEED)
    return str(path)


def test_argument_spec_secrets_are_no_log():
    spec = nats_argument_spec(name=dict(type="str"))
    assert spec["password"]["no_log"] and spec["token"]["no_log"] and spec["nkey_seed"]["no_log"]
    assert spec["tls_key"]["no_log"] is False  # a path, not a secret
    assert spec["servers"]["fallback"][1] == ["NATS_URL"]
    assert spec["password"]["fallback"][1] == ["NATS_PASSWORD"]
    assert "name" in spec and "name" not in NATS_ARGUMENT_SPEC
    spec["servers"]["type"] = "changed"
    assert NATS_ARGUMENT_SPEC["servers"]["type"] == "list"  # copies, not shared


def test_defaults_and_normalisation():
    p = NatsConnectionParams.from_params(params())
    assert p.servers == [DEFAULT_SERVER] and p.connect_timeout == 5.0
    p = NatsConnectionParams.from_params(params(servers="nats://a:4222,tls://b:4443"))
    assert p.servers == ["nats://a:4222", "tls://b:4443"] and p.uses_tls
    p = NatsConnectionParams.from_params(params(servers=["127.0.0.1:4222", "[::1]:4222", "wss://h/ws"]))
    assert p.servers == ["nats://127.0.0.1:4222", "nats://[::1]:4222", "wss://h/ws"]


def test_valid_auth_methods(creds_file):
    p = NatsConnectionParams.from_params(params(user="u", password=PASSWORD))
    kw = p.connect_kwargs()
    assert kw["user"] == "u" and kw["password"] == PASSWORD and kw["allow_reconnect"] is False
    assert NatsConnectionParams.from_params(params(token=TOKEN)).connect_kwargs()["token"] == TOKEN
    p = NatsConnectionParams.from_params(params(creds_file=creds_file))
    assert p.connect_kwargs()["user_credentials"] == creds_file
    assert ("nkeys", "nkeys") in p.required_libraries()
    p = NatsConnectionParams.from_params(params(nkey_seed=SEED))
    assert p.connect_kwargs()["nkeys_seed_str"] == SEED


BAD = [
    (dict(servers="http://127.0.0.1:4222"), "servers", "scheme"),
    (dict(servers="nats://127.0.0.1:99999"), "servers", "port"),
    (dict(servers="nats://127.0.0.1:port"), "servers", "port"),
    (dict(servers=["nats://127.0.0.1:4222", ""]), "servers", "empty"),
    (dict(servers="nats://bad host:4222"), "servers", "not a valid"),
    (dict(servers=42), "servers", "list"),
    (dict(user="u"), "password", "user is set"),
    (dict(password=PASSWORD), "password", "user"),
    (dict(user="u", password=""), "password", "empty"),
    (dict(user="u", password=PASSWORD, token=TOKEN), "token", "mutually exclusive"),
    (dict(token=TOKEN, nkey_seed=SEED), "nkey_seed", "mutually exclusive"),
    (dict(nkey_seed="SUnotaseed"), "nkey_seed", "not a NATS user nkey seed"),
    (dict(nkey_seed="SA" + SEED[2:]), "nkey_seed", "not a NATS user nkey seed"),
    (dict(creds_file="/nonexistent/x.creds"), "creds_file", "does not exist"),
    (dict(creds_file="{bad_creds}"), "creds_file", "not a NATS credentials file"),
    (dict(creds_file="{dir}"), "creds_file", "not a regular file"),
    (dict(tls_ca="/nonexistent/ca.pem"), "tls_ca", "does not exist"),
    (dict(tls_cert="{bad_creds}"), "tls_cert", "go together"),
    (dict(connect_timeout=0), "connect_timeout", "> 0"),
    (dict(connect_timeout=-1), "connect_timeout", "> 0"),
    (dict(connect_timeout="soon"), "connect_timeout", "number"),
    (dict(request_timeout=float("nan")), "request_timeout", "> 0"),
]


@pytest.mark.parametrize("options,field,words", BAD)
def test_bad_connection_options_rejected(options, field, words, tmp_path):
    bad_creds = tmp_path / "bad.creds"
    bad_creds.write_text("not a creds file")
    opts = dict((k, v.format(bad_creds=bad_creds, dir=tmp_path) if isinstance(v, str) else v)
                for k, v in options.items())
    with pytest.raises(NatsConfigError) as err:
        NatsConnectionParams.from_params(params(**opts))
    msg = str(err.value)
    assert field in msg and words in msg
    for secret in (PASSWORD, TOKEN, SEED, "SUnotaseed"):
        assert secret not in msg


def test_at_least_ten_bad_connection_inputs():
    assert len(BAD) >= 10


def test_bad_inputs_never_connect(monkeypatch):
    """from_params is pure: it never opens a socket (validation happens before any connection)."""
    def no_socket(*a, **kw):
        raise AssertionError("validation opened a socket")
    monkeypatch.setattr(socket, "socket", no_socket)
    monkeypatch.setattr(socket, "create_connection", no_socket)
    for options, _field, _words in BAD:
        if any(isinstance(v, str) and "{" in v for v in options.values()):
            continue  # needs a temp file; covered above
        with pytest.raises(NatsConfigError):
            NatsConnectionParams.from_params(params(**options))


def test_url_secrets_are_redacted():
    p = NatsConnectionParams.from_params(params(servers="nats://rollout:%s@127.0.0.1:4222" % PASSWORD))
    assert PASSWORD in p.secrets()
    assert PASSWORD not in p.servers_shown and "********@127.0.0.1" in p.servers_shown
    assert p.redact("failed for %s" % PASSWORD) == "failed for ********"
    with pytest.raises(NatsConfigError) as err:
        parse_server("http://u:%s@host:1" % PASSWORD)
    assert PASSWORD not in str(err.value)


def test_redact_longest_first():
    p = NatsConnectionParams.from_params(params(token="abc", servers="tls://abcdef@host"))
    assert p.redact("abc abcdef") == "******** ********"
    assert p.redact("tls://tok@host") == "tls://********@host"
    assert p.redact(ValueError("for abc")) == "for ********"


def test_a_password_written_with_a_hash_is_still_redacted():
    # '#' unencoded in a password: the whole userinfo is a secret, no half of it is shown
    p = NatsConnectionParams.from_params(params(servers="nats://rollout:pa#ss?w@127.0.0.1:4222"))
    assert "pa#ss?w" in p.secrets() and "pa#ss" not in p.servers_shown
    assert p.redact("cannot connect to nats://rollout:pa#ss?w@127.0.0.1:4222") == \
        "cannot connect to nats://********@127.0.0.1:4222"


def test_tls_context_errors_name_the_field(tmp_path):
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    p = NatsConnectionParams.from_params(params(tls_ca=str(bad)))
    with pytest.raises(NatsConfigError, match="tls_ca"):
        p.ssl_context()
    p = NatsConnectionParams.from_params(params(tls_cert=str(bad), tls_key=str(bad)))
    with pytest.raises(NatsConfigError, match="tls_cert/tls_key"):
        p.ssl_context()
    assert NatsConnectionParams.from_params(params()).ssl_context() is None
    assert isinstance(NatsConnectionParams.from_params(params(servers="tls://h:4443")).ssl_context(), ssl.SSLContext)


@pytest.mark.parametrize("exc,errors,words", [
    (Exception("nats: 'Authorization Violation'"), [], "refused the credentials"),
    (Exception("x"), [ConnectionRefusedError(111, "refused")], "connection refused"),
    (asyncio.TimeoutError(), [socket.gaierror(-2, "Name or service not known")], "host name not resolved"),
    (asyncio.TimeoutError(), [], "no answer within connect_timeout"),
    (ssl.SSLError(1, "CERTIFICATE_VERIFY_FAILED"), [], "TLS handshake failed"),
    (ValueError("odd"), [], "ValueError: odd"),
])
def test_describe_connect_error(exc, errors, words):
    assert words in describe_connect_error(exc, errors)


def test_run_async():
    async def answer(x):
        await asyncio.sleep(0)
        return x * 2
    assert run_async(answer(21)) == 42
    with pytest.raises(asyncio.TimeoutError):
        run_async(asyncio.sleep(5), timeout=0.01)


def test_missing_library_is_reported(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def fake_import(name, *a, **kw):
        if name == "nkeys":
            raise ImportError("No module named 'nkeys'")
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    p = NatsConnectionParams.from_params(params(nkey_seed=SEED))
    with pytest.raises(nc_mod.NatsLibraryMissing) as err:
        p.check_libraries()
    assert "nkeys" in str(err.value) and err.value.library == "nkeys"


def test_connection_error_message_has_no_secret(monkeypatch):
    """A refused connection is one NatsConnectionError with the cause, URL user info removed."""
    pytest.importorskip("nats")
    from nats.aio.client import Client

    async def refuse(self, **kw):
        await kw["error_cb"](ConnectionRefusedError(111, "Connect call failed"))
        raise Exception("nats: no servers available for connection")

    monkeypatch.setattr(Client, "connect", refuse)
    p = NatsConnectionParams.from_params(params(servers="nats://rollout:%s@10.0.0.1:4222" % PASSWORD))
    with pytest.raises(NatsConnectionError) as err:
        NatsSession(p).connect()
    msg = str(err.value)
    assert "cannot connect to NATS at nats://********@10.0.0.1:4222" in msg and "connection refused" in msg
    assert PASSWORD not in msg
