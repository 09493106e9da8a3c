"""TLS for destinations: the client context (trusted CAs, a client certificate for mutual TLS,
the key's passphrase) and what a failed handshake means, in one line.

The system's CAs are trusted, and also those of ``cacert`` (a private CA), as ``--cacert`` does
for the hub. The receiver's name is checked against its certificate. A certificate that is not
trusted, a name that does not match, or a receiver refusing our certificate (or its absence)
is not transient: trying again would fail the same way.
"""

from __future__ import annotations

import ssl
from typing import Optional

from hubasync.core.redaction import Secret

from ..errors import UsageError

# Alerts a receiver sends when it refuses the client's certificate, or wants one.
_REFUSED_CLIENT = ("certificate required", "bad certificate", "unknown ca",
                   "certificate unknown", "access denied", "handshake failure",
                   "certificate revoked", "certificate expired", "unsupported certificate")


def client_context(cacert: Optional[str], cert: Optional[str], key: Optional[str],
                   passphrase: Optional[Secret], where_cacert: str = "cacert",
                   where_key: str = "key") -> ssl.SSLContext:
    """A TLS client context checking the receiver's certificate and name; UsageError for files
    that are not PEM, a key that does not fit its certificate, or a wrong passphrase."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cacert is not None:
        try:
            context.load_verify_locations(cafile=cacert)
        except (ssl.SSLError, OSError, ValueError):
            raise UsageError(f"{where_cacert}: {cacert} holds no PEM certificate") from None
    if cert is not None and key is not None:
        secret = passphrase.reveal() if passphrase is not None else None
        try:
            # A callable: an encrypted key without a passphrase fails instead of prompting.
            context.load_cert_chain(cert, key, password=lambda: secret or "")
        except ssl.SSLError as exc:
            reason = exc.reason or "not a PEM certificate and key"
            if "decrypt" in str(reason).lower() or (exc.reason is None and _encrypted(key)):
                what = "the key's passphrase is wrong or missing"
            elif "KEY_VALUES_MISMATCH" in str(reason).upper():
                what = "the key does not fit the certificate"
            else:
                what = f"cannot load the certificate and key ({str(reason).lower()})"
            raise UsageError(f"{where_key}: {what}") from None
        except OSError as exc:
            raise UsageError(f"{where_key}: cannot read {key}: {exc.strerror or exc}") from None
    return context


def _encrypted(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            return b"ENCRYPTED" in handle.read(1 << 16)
    except OSError:
        return False


def handshake_problem(exc: BaseException) -> Optional[str]:
    """What a TLS failure means in one line, when it is a refusal (not transient); None when
    it looks like the network failing (transient)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = exc.verify_message or "certificate verify failed"
        if "hostname mismatch" in detail.lower() or "ip address mismatch" in detail.lower():
            return f"the receiver's certificate is not valid for its name ({detail})"
        return f"the receiver's certificate is not trusted ({detail})"
    if isinstance(exc, ssl.SSLError):
        text = f"{exc.reason or ''} {exc}".lower().replace("_", " ")
        if any(alert in text for alert in _REFUSED_CLIENT):
            return ("the receiver refused the TLS handshake (its alert: "
                    f"{(exc.reason or str(exc)).lower().replace('_', ' ')}): a client certificate "
                    "it trusts may be needed")
        if "wrong version number" in text or "unknown protocol" in text:
            return "the receiver does not speak TLS on this port"
    return None
