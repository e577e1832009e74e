# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Authentication against a nats-server that requires a user and password; secrets never in the output."""
import json

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
