# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # NATS connection options shared by every NATS module (module_utils/nats_connection.py).
    # Set them once for a play with module_defaults: {group/stagegate.rollout.nats: {...}}.
    DOCUMENTATION = r"""
options:
  servers:
    description:
      - NATS server URLs to connect to; the first one that answers is used.
      - A list, or a comma-separated string. Schemes V(nats://), V(tls://), V(ws://), V(wss://); a bare V(host:port)
        means V(nats://host:port).
      - When neither this option nor the E(NATS_URL) environment variable is set, V(nats://127.0.0.1:4222).
      - Credentials embedded in a URL (V(nats://user:pass@host)) are accepted and scrubbed from the output,
        but prefer O(user)/O(password).
    type: list
    elements: str
  user:
    description:
      - User name for user/password authentication; requires O(password).
      - Falls back to the E(NATS_USER) environment variable.
    type: str
  password:
    description:
      - Password for O(user). Never logged, and never shown in error messages.
      - Falls back to the E(NATS_PASSWORD) environment variable.
    type: str
  token:
    description:
      - Authentication token. Never logged. Mutually exclusive with the other authentication methods.
    type: str
  creds_file:
    description:
      - Path of a NATS credentials file (user JWT and nkey seed, as written by C(nsc generate creds)).
      - Checked before connecting (exists, readable, has both sections). Needs the Python library C(nkeys).
    type: path
  nkey_seed:
    description:
      - NKEY user seed (V(SU...)) for nkey authentication. Never logged. Needs the Python library C(nkeys).
    type: str
  tls_ca:
    description:
      - PEM file of the certificate authorities that sign the server's certificate. Setting any TLS option
        (or a V(tls://) URL) turns TLS on.
    type: path
  tls_cert:
    description:
      - PEM client certificate for mutual TLS; requires O(tls_key).
    type: path
  tls_key:
    description:
      - PEM private key of O(tls_cert).
    type: path
  connect_timeout:
    description:
      - Seconds to wait for each connection attempt (each server is tried at most twice).
    type: float
    default: 5.0
  request_timeout:
    description:
      - Seconds to wait for each JetStream API answer.
    type: float
    default: 10.0
notes:
  - The connection options can be set once for a play with
    C(module_defaults) and the action group C(group/stagegate.rollout.nats).
  - Connection options are validated before connecting; an unreachable server, refused credentials or a failed
    TLS handshake give one error naming the server (user info removed) and the cause, never a secret.
  - Talks to NATS from where the task runs; use C(delegate_to) (for example V(localhost)) to run it on the controller.
requirements:
  - nats-py >= 2.6 (Python library C(nats)); C(nkeys) for O(creds_file) and O(nkey_seed).
"""
