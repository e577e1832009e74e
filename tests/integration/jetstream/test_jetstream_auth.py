# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Authentication against a nats-server that requires a user and password; secrets never in the output."""
import json

import pytest

WRONG = "Wr0ng-Pw-c0ffee5eed"
STREAM = {"name": "EVENTS", "subjects": ["events.>"], "max_age": "72h"}


def _vars_file(tmp_path, **values):
    path = tmp_path / "secrets.json"  # a vars file, as a vault-encrypted file would be
    path.write_text(json.dumps(values))
    return str(path)


def _no_secret(run, *secrets):
    for secret in secrets:
        assert secret not in run.stdout, "secret in stdout"
        assert secret not in run.stderr, "secret in stderr"


def test_password_auth_and_no_secret_in_vvv_output(auth_nats_server, playbook, nats_tools, tmp_path):
    url = auth_nats_server.url
    good = nats_tools.auth_password
    task = {"name": "stream with credentials",
            "stagegate.rollout.jetstream_stream": dict(STREAM, user="rollout", password="{{ nats_password }}")}

    # right password: works, and even so the password is not printed at -vvv
    path = _vars_file(tmp_path, nats_password=good)
    run = playbook([task], servers=url, verbosity=3, extra_args=("-e", "@" + path))
    assert run.rc == 0, run.output[-3000:]
    assert "changed: [localhost]" in run.stdout
    _no_secret(run, good)
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in run.stdout  # the invocation is shown, masked
    info = nats_tools.stream_config(url, "EVENTS", user="rollout", password=good)
    assert info["config"]["max_age"] == 72 * 3600 * 10 ** 9

    # wrong password as an option: clear error, never printed
    path = _vars_file(tmp_path, nats_password=WRONG)
    wrong_task = {"name": "stream with a wrong password",
                  "stagegate.rollout.jetstream_stream": dict(STREAM, max_age="24h", user="rollout",
                                                             password="{{ nats_password }}")}
    run = playbook([wrong_task], servers=url, verbosity=3, extra_args=("-e", "@" + path))
    assert run.rc != 0
    assert "refused the credentials" in run.stdout and url in run.stdout
    _no_secret(run, WRONG, good)

    # wrong password from the environment (NATS_USER / NATS_PASSWORD)
    run = playbook([{"stagegate.rollout.jetstream_stream": dict(STREAM, max_age="24h")}], servers=url, verbosity=3,
                   extra_env={"NATS_USER": "rollout", "NATS_PASSWORD": WRONG})
    assert run.rc != 0 and "refused the credentials" in run.stdout
    _no_secret(run, WRONG)

    # wrong password inside the server URL
    bad_url = url.replace("nats://", "nats://rollout:%s@" % WRONG)
    run = playbook([{"stagegate.rollout.jetstream_stream": dict(STREAM, max_age="24h")}], servers=bad_url,
                   verbosity=3)
    assert run.rc != 0 and "refused the credentials" in run.stdout
    _no_secret(run, WRONG)

    # no credentials at all
    run = playbook([{"stagegate.rollout.jetstream_stream": dict(STREAM, max_age="24h")}], servers=url)
    assert run.rc != 0 and "refused the credentials" in run[0]["msg"]

    # nothing was changed by the refused attempts
    info = nats_tools.stream_config(url, "EVENTS", user="rollout", password=good)
    assert info["config"]["max_age"] == 72 * 3600 * 10 ** 9

    # right password from the environment, read through the info module
    run = playbook([{"stagegate.rollout.jetstream_info": {"stream": "EVENTS"}}], servers=url,
                   extra_env={"NATS_USER": "rollout", "NATS_PASSWORD": good})
    assert run.rc == 0 and run[0]["exists"] is True
    _no_secret(run, good)


# -- token, nkey, credentials file and TLS: one nats-server per mode (module-scoped fixtures), one playbook run each
#    at -vvv: the right credential creates the stream, the wrong one (ignore_errors) fails with a clear message, and
#    no secret is in any output.

def _good_and_wrong(playbook, tmp_path, url, good, wrong, secrets, servers=None):
    """Run the stream task with ``good`` options, then with ``wrong`` ones (each a dict of options, or a list of
    them); secrets go through a vars file as a vault would give them. Returns the run."""
    values, tasks = {}, []

    def opts(options, prefix):
        out = {}
        for k, v in options.items():
            if k in ("token", "nkey_seed", "password"):
                values["%s_%s" % (prefix, k)] = v
                v = "{{ %s_%s }}" % (prefix, k)
            out[k] = v
        return out

    tasks.append({"name": "stream with the right credential",
                  "stagegate.rollout.jetstream_stream": dict(STREAM, servers=servers or [url], **opts(good, "good"))})
    for i, bad in enumerate(wrong if isinstance(wrong, list) else [wrong]):
        bad = dict(bad)
        tasks.append({"name": "stream with a wrong credential %d" % i, "ignore_errors": True,
                      "stagegate.rollout.jetstream_stream": dict(STREAM, max_age="24h",
                                                                 servers=[bad.pop("servers", url)],
                                                                 **opts(bad, "bad%d" % i))})
    path = _vars_file(tmp_path, **values)
    run = playbook(tasks, verbosity=3, extra_args=("-e", "@" + path))
    assert run.rc == 0, run.output[-3000:]
    _no_secret(run, *secrets)
    recap = run.stdout[run.stdout.rindex("PLAY RECAP"):]
    assert "changed=1" in recap and "ignored=%d" % (len(tasks) - 1) in recap, recap
    return run


WRONG_TOKEN = "tok-" + "0badc0de" * 3
# per server fixture: the right and a wrong credential (module options), the secrets that must not be shown,
# and the nats-py connect options that read the stream back
CREDENTIALS = {
    "token_nats_server": lambda srv: ({"token": srv.token}, {"token": WRONG_TOKEN}, [srv.token, WRONG_TOKEN],
                                      {"token": srv.token}),
    "nkey_nats_server": lambda srv: ({"nkey_seed": srv.seed}, {"nkey_seed": srv.other_seed},
                                     [srv.seed, srv.other_seed], {"nkeys_seed_str": srv.seed}),
    "creds_nats_server": lambda srv: ({"creds_file": srv.creds}, {"creds_file": srv.foreign_creds},
                                      [srv.seed, srv.foreign_seed], {"user_credentials": srv.creds}),
}


@pytest.mark.parametrize("server", list(CREDENTIALS))
def test_credential_auth(server, request, playbook, nats_tools, tmp_path):
    srv = request.getfixturevalue(server)
    good, wrong, secrets, connect = CREDENTIALS[server](srv)
    run = _good_and_wrong(playbook, tmp_path, srv.url, good, wrong, secrets)
    assert "refused the credentials" in run.stdout and srv.url in run.stdout
    info = nats_tools.stream_config(srv.url, "EVENTS", **connect)
    assert info["config"]["max_age"] == 72 * 3600 * 10 ** 9  # the refused 24h changed nothing


def _key_body(path):
    with open(path) as f:
        return "".join(line.strip() for line in f if not line.startswith("-----"))


def test_tls_server_certificate_and_client_certificates(tls_nats_servers, playbook, nats_tools, tmp_path):
    srv = tls_nats_servers
    pki = srv.pki
    client = {"tls_ca": pki["ca"], "tls_cert": pki["client_cert"], "tls_key": pki["client_key"]}
    run = _good_and_wrong(
        playbook, tmp_path, srv.mtls_url, client,
        [dict(client, tls_ca=srv.other_ca),                  # the server's certificate is not signed by this CA
         {"tls_ca": pki["ca"]},                              # the server requires a client certificate
         {"servers": srv.url, "tls_ca": srv.other_ca}],      # server-only TLS, wrong CA
        [_key_body(pki["client_key"]), _key_body(pki["server_key"])])
    assert run.stdout.count("TLS handshake failed") >= 2, run.stdout[-4000:]
    assert "check tls_ca, tls_cert and tls_key" in run.stdout

    # server TLS with the CA only (no client certificate), read back through the info module
    run = playbook([{"stagegate.rollout.jetstream_stream": STREAM},
                    {"stagegate.rollout.jetstream_info": {"stream": "EVENTS"}}],
                   module_defaults={"servers": [srv.url], "tls_ca": pki["ca"]})
    assert run.rc == 0 and run[0]["changed"] is True and run[1]["exists"] is True, run.output[-3000:]

    import ssl
    ctx = ssl.create_default_context(cafile=pki["ca"])
    ctx.load_cert_chain(pki["client_cert"], pki["client_key"])
    info = nats_tools.stream_config(srv.mtls_url, "EVENTS", tls=ctx)
    assert info["config"]["max_age"] == 72 * 3600 * 10 ** 9
