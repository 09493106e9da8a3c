"""Throwaway TLS material for receiver tests, made with ``trustme``: a CA, a server certificate
for 127.0.0.1 and localhost, a client certificate (its key also encrypted with a passphrase),
and a second, unrelated CA for the "wrong CA" cases."""

from __future__ import annotations

import os
from dataclasses import dataclass

import trustme
from cryptography.hazmat.primitives import serialization

KEY_PASSPHRASE = "passphrase-s3cret-9f2c"


@dataclass(frozen=True)
class Certs:
    folder: str
    ca: str  # the CA that signed everything below
    other_ca: str  # a CA that signed nothing here
    server_cert: str
    server_key: str
    other_name_cert: str  # signed by ``ca``, valid only for not-this-host.example
    other_name_key: str
    client_cert: str
    client_key: str
    client_key_encrypted: str  # the same key, encrypted with KEY_PASSPHRASE


def make_certs(folder: str) -> Certs:
    os.makedirs(folder, exist_ok=True)
    ca, other = trustme.CA(), trustme.CA()

    def path(name: str) -> str:
        return os.path.join(folder, name)

    ca.cert_pem.write_to_path(path("ca.pem"))
    other.cert_pem.write_to_path(path("other-ca.pem"))
    server = ca.issue_cert("127.0.0.1", "localhost")
    server.cert_chain_pems[0].write_to_path(path("server.pem"))
    server.private_key_pem.write_to_path(path("server.key"))
    wrong = ca.issue_cert("not-this-host.example")
    wrong.cert_chain_pems[0].write_to_path(path("wrong-name.pem"))
    wrong.private_key_pem.write_to_path(path("wrong-name.key"))
    client = ca.issue_cert("hubasync-client.example")
    client.cert_chain_pems[0].write_to_path(path("client.pem"))
    client.private_key_pem.write_to_path(path("client.key"))
    key = serialization.load_pem_private_key(client.private_key_pem.bytes(), password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(KEY_PASSPHRASE.encode()))
    with open(path("client-encrypted.key"), "wb") as handle:
        handle.write(encrypted)
    return Certs(folder, path("ca.pem"), path("other-ca.pem"), path("server.pem"),
                 path("server.key"), path("wrong-name.pem"), path("wrong-name.key"),
                 path("client.pem"), path("client.key"), path("client-encrypted.key"))
