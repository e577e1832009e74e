# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""NATS connection options shared by every NATS module of the collection.

One argument spec (servers, user/password, token, credentials file, nkey seed,
TLS CA/cert/key, timeouts), validated before anything connects; one sync facade
(:class:`NatsSession`) that runs nats-py's asyncio client from plain module code
and talks to the JetStream JSON API; errors as :class:`NatsError` whose messages
never contain a secret (passwords, tokens, seeds, user info in server URLs: scrubbed with ``redact.scrub``).

nats-py (and nkeys for credentials files and nkey seeds) are imported lazily,
only when a session connects, so that the validation and the unit tests run
without them and a module can report ``missing_required_lib`` cleanly.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import math
import os
import re
import traceback

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.stagegate.rollout.plugins.module_utils.redact import scrub, url_secrets

DEFAULT_SERVER = "nats://127.0.0.1:4222"
SCHEMES = ("nats", "tls", "ws", "wss")

# The connection options of every NATS module (documented by the doc fragment stagegate.rollout.nats).
NATS_ARGUMENT_SPEC = dict(
    servers=dict(type="list", elements="str", fallback=(env_fallback, ["NATS_URL"])),
    user=dict(type="str", fallback=(env_fallback, ["NATS_USER"])),
    password=dict(type="str", no_log=True, fallback=(env_fallback, ["NATS_PASSWORD"])),
    token=dict(type="str", no_log=True),
    creds_file=dict(type="path"),
    nkey_seed=dict(type="str", no_log=True),
    tls_ca=dict(type="path"),
    tls_cert=dict(type="path"),
    tls_key=dict(type="path", no_log=False),
    connect_timeout=dict(type="float", default=5.0),
    request_timeout=dict(type="float", default=10.0),
)

# Only pairs no environment fallback can fill: Ansible checks mutual exclusion
# after fallbacks, so user/password (NATS_USER, NATS_PASSWORD) are checked by
# NatsConnectionParams.from_params, with a message that names the environment.
NATS_MUTUALLY_EXCLUSIVE = [
    ("token", "creds_file"),
    ("token", "nkey_seed"),
    ("creds_file", "nkey_seed"),
]

_HOST_PORT = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::(?P<port>[^/]*))?/?$")
_NKEY_USER_SEED = re.compile(r"^SU[A-Z2-7]{56}$")


class NatsError(Exception):
    """Base of the NATS errors of this collection; the message is safe to show (no secrets)."""


class NatsConfigError(NatsError, ValueError):
    """A connection option is invalid; raised before anything connects."""


class NatsConnectionError(NatsError):
    """The server could not be reached, refused the credentials or the TLS handshake failed."""


class NatsLibraryMissing(NatsError):
    """A Python library needed for the connection (nats-py, nkeys) is not installed."""

    def __init__(self, library, exception=None):
        self.library = library
        self.exception = exception
        NatsError.__init__(self, missing_required_lib(library))


class JetStreamApiError(NatsError):
    """The JetStream API answered with an error (``code``, ``err_code``, ``description``)."""

    def __init__(self, subject, code, err_code, description):
        self.subject = subject
        self.code = code
        self.err_code = err_code
        self.description = description
        NatsError.__init__(self, "JetStream API %s: %s (code %s, err_code %s)" % (subject, description, code, err_code))

    @property
    def not_found(self):
        return self.code == 404


# JetStream error codes (nats-server errors.json) the modules react to.
JS_STREAM_NOT_FOUND = 10059
JS_CONSUMER_NOT_FOUND = 10014


def nats_argument_spec(**extra):
    """The connection argument spec merged with a module's own options (a new dict each call)."""
    spec = dict((k, dict(v)) for k, v in NATS_ARGUMENT_SPEC.items())
    spec.update(extra)
    return spec


def parse_server(url):
    """Validate one server URL; returns it with ``nats://`` added when it had no scheme.

    Raises NatsConfigError naming ``servers`` (the URL is shown with its user info redacted).
    """
    if not isinstance(url, str) or not url.strip():
        raise NatsConfigError("servers: an entry is empty; expected URLs like nats://host:4222 (schemes %s)"
                              % ", ".join(SCHEMES))
    url = url.strip()
    shown = scrub(url)
    if "://" in url:
        scheme, rest = url.split("://", 1)
    else:
        scheme, rest = "nats", url
    if scheme.lower() not in SCHEMES:
        raise NatsConfigError("servers: %r has scheme %r; accepted schemes are %s" % (shown, scheme, ", ".join(SCHEMES)))
    if "@" in rest:
        rest = rest.rsplit("@", 1)[1]
    if scheme.lower() in ("ws", "wss"):
        rest = rest.split("/", 1)[0]
    m = _HOST_PORT.match(rest)
    if not m:
        raise NatsConfigError("servers: %r is not a valid server URL; expected scheme://host[:port], e.g. "
                              "nats://127.0.0.1:4222" % shown)
    port = m.group("port")
    if port is not None:
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise NatsConfigError("servers: %r has port %r; a port is an integer from 1 to 65535" % (shown, port))
    return url if "://" in url else "nats://" + url


def _readable_file(field, path):
    if not isinstance(path, str) or not path:
        raise NatsConfigError("%s: expected the path of a readable file, got %r" % (field, path))
    if not os.path.isfile(path):
        raise NatsConfigError("%s: file %s does not exist (or is not a regular file)" % (field, path))
    if not os.access(path, os.R_OK):
        raise NatsConfigError("%s: file %s is not readable by this user" % (field, path))
    return path


def _positive_float(field, value, default):
    if value is None:
        return default
    try:
        if isinstance(value, bool):
            raise TypeError
        value = float(value)
    except (TypeError, ValueError):
        raise NatsConfigError("%s: expected a number of seconds > 0, got %r" % (field, value))
    if not math.isfinite(value) or value <= 0:
        raise NatsConfigError("%s: expected a number of seconds > 0, got %r" % (field, value))
    return value


class NatsConnectionParams:
    """Validated connection options. Construct with :meth:`from_params` (module params or a dict)."""

    def __init__(self, servers, user=None, password=None, token=None, creds_file=None, nkey_seed=None,
                 tls_ca=None, tls_cert=None, tls_key=None, connect_timeout=5.0, request_timeout=10.0):
        self.servers = servers
        self.user = user
        self.password = password
        self.token = token
        self.creds_file = creds_file
        self.nkey_seed = nkey_seed
        self.tls_ca = tls_ca
        self.tls_cert = tls_cert
        self.tls_key = tls_key
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout

    @classmethod
    def from_params(cls, params):
        """Validate the connection options of ``params``; raises NatsConfigError naming the field.

        Nothing is connected and no secret appears in an error message.
        """
        p = dict((k, params.get(k)) for k in NATS_ARGUMENT_SPEC)
        servers = p["servers"]
        if servers is None or servers == []:
            servers = [DEFAULT_SERVER]
        if isinstance(servers, str):
            servers = servers.split(",")
        if not isinstance(servers, (list, tuple)):
            raise NatsConfigError("servers: expected a list of URLs or a comma-separated string, got %s"
                                  % type(servers).__name__)
        servers = [parse_server(s) for s in servers]

        for field in ("user", "password", "token", "nkey_seed"):
            value = p[field]
            if value is not None and not isinstance(value, str):
                raise NatsConfigError("%s: expected a string, got %s" % (field, type(value).__name__))
            if value is not None and value == "":
                raise NatsConfigError("%s: is set but empty; remove it or give a value" % field)
        if p["password"] is not None and p["user"] is None:
            raise NatsConfigError("password is set (as an option or from NATS_PASSWORD) but user is not; "
                                  "give both user and password")
        if p["user"] is not None and p["password"] is None:
            raise NatsConfigError("user is set but password is not (option password or environment NATS_PASSWORD)")
        methods = [f for f in ("user", "token", "creds_file", "nkey_seed") if p[f] is not None]
        if len(methods) > 1:
            raise NatsConfigError("%s are mutually exclusive: choose one authentication method (user/password, "
                                  "token, creds_file or nkey_seed; user/password may come from NATS_USER/"
                                  "NATS_PASSWORD in the environment)" % " and ".join(methods))
        if p["nkey_seed"] is not None and not _NKEY_USER_SEED.match(p["nkey_seed"].strip()):
            raise NatsConfigError("nkey_seed: not a NATS user nkey seed (58 characters of base32 starting with "
                                  "'SU'); the value is not shown")
        if p["creds_file"] is not None:
            _readable_file("creds_file", p["creds_file"])
            try:
                with open(p["creds_file"], "r") as f:
                    content = f.read(1 << 20)
            except (IOError, OSError, UnicodeDecodeError) as exc:
                raise NatsConfigError("creds_file: cannot read %s: %s" % (p["creds_file"], type(exc).__name__))
            if "BEGIN NATS USER JWT" not in content or "NKEY SEED" not in content:
                raise NatsConfigError("creds_file: %s is not a NATS credentials file (expected a "
                                      "'BEGIN NATS USER JWT' and a 'BEGIN USER NKEY SEED' section, as written by "
                                      "'nsc generate creds')" % p["creds_file"])
        for field in ("tls_ca", "tls_cert", "tls_key"):
            if p[field] is not None:
                _readable_file(field, p[field])
        if (p["tls_cert"] is None) != (p["tls_key"] is None):
            raise NatsConfigError("tls_cert and tls_key go together: give both (client certificate and its key) "
                                  "or neither")
        connect_timeout = _positive_float("connect_timeout", p["connect_timeout"], 5.0)
        request_timeout = _positive_float("request_timeout", p["request_timeout"], 10.0)
        nkey_seed = p["nkey_seed"].strip() if p["nkey_seed"] else None
        return cls(servers, user=p["user"], password=p["password"], token=p["token"], creds_file=p["creds_file"],
                   nkey_seed=nkey_seed, tls_ca=p["tls_ca"], tls_cert=p["tls_cert"], tls_key=p["tls_key"],
                   connect_timeout=connect_timeout, request_timeout=request_timeout)

    @property
    def uses_tls(self):
        secure = any(s.lower().startswith(("tls://", "wss://")) for s in self.servers)
        return bool(self.tls_ca or self.tls_cert or secure)

    def secrets(self):
        """Every secret value these options carry (to scrub from messages and module output)."""
        out = [s for s in (self.password, self.token, self.nkey_seed) if s]
        for url in self.servers:
            out.extend(s for s in url_secrets(url) if s)
        return out

    def redact(self, text):
        """``text`` (made a string) without these options' secrets and any URL's userinfo (``redact.scrub``)."""
        return scrub(str(text), self.secrets())

    @property
    def servers_shown(self):
        return ", ".join(scrub(s) for s in self.servers)

    def required_libraries(self):
        """Python libraries these options need: nats-py always, nkeys for creds_file/nkey_seed."""
        libs = [("nats-py", "nats")]
        if self.creds_file or self.nkey_seed:
            libs.append(("nkeys", "nkeys"))
        return libs

    def check_libraries(self):
        """Raise NatsLibraryMissing for the first missing library."""
        for name, module in self.required_libraries():
            try:
                __import__(module)
            except ImportError:
                raise NatsLibraryMissing(name, traceback.format_exc())

    def ssl_context(self):
        """An ssl.SSLContext for TLS options (None without TLS); errors name the field."""
        if not self.uses_tls:
            return None
        import ssl
        try:
            ctx = ssl.create_default_context(cafile=self.tls_ca) if self.tls_ca else ssl.create_default_context()
        except (ssl.SSLError, OSError) as exc:
            raise NatsConfigError("tls_ca: %s is not a usable PEM CA bundle: %s" % (self.tls_ca, exc))
        if self.tls_cert:
            try:
                ctx.load_cert_chain(self.tls_cert, self.tls_key)
            except (ssl.SSLError, OSError) as exc:
                raise NatsConfigError("tls_cert/tls_key: %s / %s are not a matching PEM certificate and key: %s"
                                      % (self.tls_cert, self.tls_key, exc))
        return ctx

    def connect_kwargs(self):
        """Keyword arguments for nats-py's ``Client.connect`` (callbacks excluded)."""
        kw = dict(servers=list(self.servers), connect_timeout=self.connect_timeout, allow_reconnect=False,
                  max_reconnect_attempts=1, reconnect_time_wait=0.1, name="stagegate.rollout")
        if self.user is not None:
            kw.update(user=self.user, password=self.password)
        if self.token is not None:
            kw["token"] = self.token
        if self.creds_file is not None:
            kw["user_credentials"] = self.creds_file
        if self.nkey_seed is not None:
            kw["nkeys_seed_str"] = self.nkey_seed
        ctx = self.ssl_context()
        if ctx is not None:
            kw["tls"] = ctx
        return kw


def prepare_module_connection(module, conn):
    """Keep the connection's secrets out of every output of ``module`` and fail once, clearly, when nats-py is missing."""
    for secret in conn.secrets():
        module.no_log_values.add(secret)
    try:
        conn.check_libraries()
    except NatsLibraryMissing as exc:
        module.fail_json(msg=str(exc), exception=exc.exception)
    return conn


class NatsModule(AnsibleModule):
    """An AnsibleModule that talks to a NATS server: the connection options (``nats_argument_spec``) beside its
    own, the options checked before anything connects, the connection's secrets ``no_log`` and redacted
    from its failures, nats-py checked once (:func:`prepare_module_connection`)."""

    def __init__(self, argument_spec, mutually_exclusive=(), **kwargs):
        AnsibleModule.__init__(self, argument_spec=nats_argument_spec(**argument_spec),
                               mutually_exclusive=NATS_MUTUALLY_EXCLUSIVE + list(mutually_exclusive), **kwargs)
        self.conn = None

    def check_options(self, check, **result):
        """``check()`` (it validates the module's own options: a ValueError naming the field) and the
        connection options, before anything connects; returns what ``check()`` returns, or fails with
        the message (and ``result``)."""
        try:
            checked = check()
            self.conn = NatsConnectionParams.from_params(self.params)
        except ValueError as exc:       # JetStreamConfigError, NatsConfigError
            self.fail_json(msg=str(exc), **result)
        prepare_module_connection(self, self.conn)
        return checked

    def fail_redacted(self, exc, **result):
        """Fail with ``exc``'s message, the connection's secrets and URL userinfo removed."""
        self.fail_json(msg=self.conn.redact(str(exc)), **result)


def run_nats_module(run, argument_spec, **kwargs):
    """A NATS module's main(): ``run(module)`` returns the result the task exits with."""
    module = NatsModule(argument_spec, **kwargs)
    module.exit_json(**run(module))


def describe_connect_error(exc, errors=()):
    """A short cause for a failed connection, from the exception and the errors seen on the way."""
    import asyncio
    import socket
    import ssl
    seen = list(errors) + [exc]
    for err in seen:
        text = str(err)
        name = type(err).__name__
        if "Authorization" in text or name == "AuthorizationError":
            return ("the server refused the credentials (authorization violation): check user/password, token, "
                    "creds_file or nkey_seed")
        if "expired" in text.lower():
            return "the server says the credentials have expired"
    for err in seen:
        if isinstance(err, ssl.SSLError) or "SSL" in type(err).__name__ or "certificate" in str(err).lower():
            return "TLS handshake failed (%s): check tls_ca, tls_cert and tls_key" % type(err).__name__
    for err in seen:
        if isinstance(err, ConnectionRefusedError):
            return "connection refused (is nats-server running and listening there?)"
        if isinstance(err, socket.gaierror):
            return "host name not resolved"
    for err in seen:
        if isinstance(err, (asyncio.TimeoutError, TimeoutError)) or type(err).__name__ == "TimeoutError":
            return "no answer within connect_timeout"
    last = seen[-1]
    return "%s: %s" % (type(last).__name__, last)


def run_async(coro, timeout=None):
    """Run an asyncio coroutine from synchronous module code and return its result.

    A new event loop per call (modules are single-threaded and short-lived);
    ``timeout`` (seconds) bounds the whole coroutine.
    """
    import asyncio
    loop = asyncio.new_event_loop()
    try:
        if timeout is not None:
            coro = asyncio.wait_for(coro, timeout)
        return loop.run_until_complete(coro)
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


class NatsSession:
    """A connected NATS client driven from synchronous code.

    ``with NatsSession(params) as s: s.js_api("STREAM.INFO.EVENTS")`` connects
    on enter (NatsConnectionError on failure), closes on exit. Every method is
    synchronous; :meth:`run` runs any coroutine on the session's loop.
    """

    API_PREFIX = "$JS.API."

    def __init__(self, params):
        self.params = params
        self.nc = None
        self._loop = None
        self._errors = []

    # -- lifecycle -------------------------------------------------------
    def __enter__(self):
        self.connect()
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False

    def connect(self):
        import asyncio
        self.params.check_libraries()
        kwargs = self.params.connect_kwargs()  # TLS files are read here: NatsConfigError, not a connection error
        self._loop = asyncio.new_event_loop()
        try:
            self.nc = self._loop.run_until_complete(self._connect(kwargs))
        except BaseException:
            self._close_loop()
            raise
        return self

    async def _connect(self, kwargs):
        import asyncio
        from nats.aio.client import Client

        errors = self._errors

        async def on_error(exc):
            errors.append(exc)

        async def on_event():
            return None

        nc = Client()
        budget = self.params.connect_timeout * 2 * len(self.params.servers) + 1.0
        try:
            await asyncio.wait_for(nc.connect(error_cb=on_error, disconnected_cb=on_event, closed_cb=on_event,
                                              reconnected_cb=on_event, **kwargs), budget)
        except Exception as exc:  # every failure becomes one domain error with a safe message
            try:
                # bounded: after a failed TLS handshake nats-py's close() waits forever for the transport
                await asyncio.wait_for(nc.close(), 0.5)
            except Exception:
                pass
            raise NatsConnectionError(self.params.redact(
                "cannot connect to NATS at %s: %s" % (self.params.servers_shown, describe_connect_error(exc, errors))))
        return nc

    def close(self):
        import asyncio
        if self.nc is not None and self._loop is not None:
            try:
                self._loop.run_until_complete(asyncio.wait_for(self.nc.close(), self.params.request_timeout))
            except Exception:
                pass
            self.nc = None
        self._close_loop()

    def _close_loop(self):
        if self._loop is not None:
            try:
                self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            except Exception:
                pass
            self._loop.close()
            self._loop = None

    # -- calls -------------------------------------------------------------
    def run(self, coro, timeout=None):
        """Run a coroutine on this session's loop (``timeout`` defaults to request_timeout)."""
        import asyncio
        return self._loop.run_until_complete(asyncio.wait_for(coro, timeout or self.params.request_timeout))

    def request(self, subject, payload=b"", timeout=None):
        """A NATS request/reply; returns the reply's bytes. Errors are NatsError with a safe message."""
        import asyncio
        from nats import errors as nats_errors
        timeout = timeout or self.params.request_timeout
        try:
            msg = self.run(self.nc.request(subject, payload, timeout=timeout), timeout + 1.0)
        except nats_errors.NoRespondersError:
            raise NatsError("no responder for %s: JetStream is not enabled on the server at %s (start nats-server "
                            "with -js) or not enabled for this account" % (subject, self.params.servers_shown))
        except (nats_errors.TimeoutError, asyncio.TimeoutError):
            raise NatsError("no answer to %s within request_timeout %gs from %s"
                            % (subject, timeout, self.params.servers_shown))
        except nats_errors.Error as exc:
            raise NatsError(self.params.redact("NATS request %s failed: %s" % (subject, exc)))
        return msg.data

    def js_api(self, operation, body=None, timeout=None):
        """Call the JetStream JSON API ``$JS.API.<operation>``; returns the decoded reply.

        Raises JetStreamApiError when the reply carries an error.
        """
        payload = b"" if body is None else json.dumps(body).encode("utf-8")
        data = self.request(self.API_PREFIX + operation, payload, timeout)
        try:
            reply = json.loads(data.decode("utf-8")) if data else {}
        except ValueError:
            raise NatsError("JetStream API %s answered something that is not JSON" % operation)
        err = reply.get("error") if isinstance(reply, dict) else None
        if err:
            raise JetStreamApiError(operation, err.get("code"), err.get("err_code"),
                                    self.params.redact(err.get("description", "unknown error")))
        return reply

    def publish(self, subject, payload, headers=None):
        """Publish one message (core NATS) and flush."""
        async def _pub():
            await self.nc.publish(subject, payload, headers=headers)
            await self.nc.flush()
        self.run(_pub())

    # -- JetStream helpers ---------------------------------------------------
    @staticmethod
    def api_info(reply):
        """A JetStream info reply without the API envelope (type, ts, paging fields)."""
        return dict((k, v) for k, v in reply.items()
                    if k not in ("type", "ts", "did_create", "error", "total", "offset", "limit"))

    def stream_info(self, name):
        """The stream's info (config, state, created, ...), or None when it does not exist."""
        try:
            return self.api_info(self.js_api("STREAM.INFO." + name))
        except JetStreamApiError as exc:
            if exc.err_code == JS_STREAM_NOT_FOUND:
                return None
            raise

    def consumer_info(self, stream, name):
        """The consumer's info (config, delivered, ack_floor, num_pending, ...), or None when it does not exist."""
        try:
            return self.api_info(self.js_api("CONSUMER.INFO.%s.%s" % (stream, name)))
        except JetStreamApiError as exc:
            if exc.err_code in (JS_CONSUMER_NOT_FOUND, JS_STREAM_NOT_FOUND):
                return None
            raise

    def _paged(self, operation, key):
        items, offset = [], 0
        while True:
            reply = self.js_api(operation, {"offset": offset})
            page = reply.get(key) or []
            items.extend(page)
            offset += len(page)
            if not page or offset >= reply.get("total", 0):
                return items

    def list_streams(self):
        """Info of every stream of the account, sorted by name."""
        infos = [self.api_info(i) for i in self._paged("STREAM.LIST", "streams")]
        return sorted(infos, key=lambda i: i.get("config", {}).get("name", ""))

    def list_consumers(self, stream):
        """Info of every consumer of ``stream``, sorted by name."""
        infos = [self.api_info(i) for i in self._paged("CONSUMER.LIST." + stream, "consumers")]
        return sorted(infos, key=lambda i: i.get("name", ""))

    def account_info(self):
        """JetStream usage and limits of the account (memory, storage, streams, consumers, limits)."""
        return self.api_info(self.js_api("INFO"))
