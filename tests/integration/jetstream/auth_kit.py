# -*- coding: utf-8 -*-
# Copyright: Contributors to the stagegate.rollout project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a NATS operator hands out, made by the tests: nkeys, JWTs and a credentials file (as ``nsc`` writes them),
and a CA with server and client certificates. nats-server verifies all of them for real.
"""
import base64
import datetime
import hashlib
import json
import os
import time

import nkeys

ROLES = {"operator": nkeys.PREFIX_BYTE_OPERATOR, "account": nkeys.PREFIX_BYTE_ACCOUNT, "user": nkeys.PREFIX_BYTE_USER}


def new_key(role):
    """A fresh nkey pair of ``role`` (operator, account, user): nkeys.KeyPair with .seed and .public_key."""
    return nkeys.from_seed(bytearray(nkeys.encode_seed(os.urandom(32), ROLES[role])))


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(issuer, subject_key, name, nats):
    """A NATS JWT (v2) for ``subject_key`` signed by the ``issuer`` key pair."""
    claims = {"iat": int(time.time()), "iss": issuer.public_key.decode(), "name": name,
              "sub": subject_key.public_key.decode(), "nats": dict(nats, version=2)}
    claims["jti"] = base64.b32encode(hashlib.sha256(json.dumps(claims, sort_keys=True).encode()).digest()).decode()
    signing_input = _b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode()) + "." + \
        _b64(json.dumps(claims).encode())
    return signing_input + "." + _b64(issuer.sign(signing_input.encode()))


UNLIMITED = {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": True, "conn": -1,
             "leaf": -1, "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1}


class Operator:
    """An operator with a system account and one JetStream-enabled account; ``user_creds`` issues users of that
    account."""

    def __init__(self, name="test-operator"):
        self.key = new_key("operator")
        self.jwt = jwt(self.key, self.key, name, {"type": "operator"})
        self.account = new_key("account")
        self.account_jwt = jwt(self.key, self.account, "rollout",
                               {"type": "account", "limits": UNLIMITED, "default_permissions": {"pub": {}, "sub": {}}})
        self.system = new_key("account")  # JetStream needs the server's system account
        self.system_jwt = jwt(self.key, self.system, "SYS", {"type": "account", "limits": {
            "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": True, "conn": -1,
            "leaf": -1}})

    def server_config(self, directory):
        """nats-server configuration lines trusting this operator (memory resolver, the account preloaded)."""
        path = os.path.join(directory, "operator.jwt")
        with open(path, "w") as f:
            f.write(self.jwt)
        return ("operator: %s\nsystem_account: %s\nresolver: MEMORY\nresolver_preload: {\n  %s: %s\n  %s: %s\n}\n"
                % (json.dumps(path), self.system.public_key.decode(), self.account.public_key.decode(),
                   self.account_jwt, self.system.public_key.decode(), self.system_jwt))

    def user_creds(self, path, name="rollout", account=None):
        """Write a credentials file for a new user of the account (or of ``account``, a key pair); returns the
        user's seed."""
        user = new_key("user")
        token = jwt(account or self.account, user, name,
                    {"type": "user", "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1})
        seed = user.seed.decode()
        with open(path, "w") as f:
            f.write("-----BEGIN NATS USER JWT-----\n%s\n------END NATS USER JWT------\n\n"
                    "************************* IMPORTANT *************************\n"
                    "NKEY Seed printed below can be used to sign and prove identity.\n"
                    "NKEYs are sensitive and should be treated as secrets.\n\n"
                    "-----BEGIN USER NKEY SEED-----\n%s\n------END USER NKEY SEED------\n\n"
                    "*************************************************************\n" % (token, seed))
        os.chmod(path, 0o600)
        return seed


# -- TLS ------------------------------------------------------------------------------------------------------

def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return path


def make_pki(directory, name="test"):
    """A CA and, signed by it, a server certificate for 127.0.0.1 / localhost and a client certificate.

    Returns a dict of PEM paths: ca, server_cert, server_key, client_cert, client_key.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    import ipaddress

    now = datetime.datetime.now(datetime.timezone.utc)

    def key_pem(key):
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    def cert(subject, key, issuer, issuer_key, ca=False, sans=None, usage=None):
        b = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
             .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if ca:
            b = b.add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                              content_commitment=False, key_encipherment=False,
                                              data_encipherment=False, key_agreement=False, encipher_only=False,
                                              decipher_only=False), critical=True)
            b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        else:
            b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                                critical=False)
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        if usage:
            b = b.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
        return b.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

    os.makedirs(directory, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = "%s CA" % name
    out = {"ca": _write(os.path.join(directory, "ca.pem"), cert(ca_name, ca_key, ca_name, ca_key, ca=True))}
    for role, sans, usage in (
            ("server", [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
             [ExtendedKeyUsageOID.SERVER_AUTH]),
            ("client", None, [ExtendedKeyUsageOID.CLIENT_AUTH])):
        key = ec.generate_private_key(ec.SECP256R1())
        out[role + "_key"] = _write(os.path.join(directory, role + "-key.pem"), key_pem(key))
        os.chmod(out[role + "_key"], 0o600)
        out[role + "_cert"] = _write(os.path.join(directory, role + ".pem"),
                                     cert("%s %s" % (name, role), key, ca_name, ca_key, sans=sans, usage=usage))
    return out
