"""Which connection failures are retried: the errors' classes, for failures that no test can
cause on demand over a real socket (a resolver failing for now). The end-to-end behaviour of the
others is in tests/e2e/test_network_errors.py."""

from __future__ import annotations

import socket
import ssl

import pytest

from hubasync.errors import CertificateError, HostNotFound, NetworkError, TlsMismatch
from hubasync.transport.http import connect_failure

WHERE = "hub.example.com:443"


@pytest.mark.parametrize("errno", [socket.EAI_NONAME, getattr(socket, "EAI_NODATA", -5)])
def test_a_name_that_does_not_exist_is_final(errno: int) -> None:
    error = connect_failure(WHERE, socket.gaierror(errno, "Name or service not known"))
    assert isinstance(error, HostNotFound) and not error.transient
    assert error.exit_code == 6
    assert str(error) == ("cannot connect to hub.example.com:443: the host name does not "
                          "resolve (Name or service not known)")


def test_a_resolver_failing_for_now_is_retried() -> None:
    error = connect_failure(WHERE, socket.gaierror(socket.EAI_AGAIN,
                                                   "Temporary failure in name resolution"))
    assert isinstance(error, NetworkError) and error.transient
    assert "hub.example.com:443" in str(error) and "Temporary failure" in str(error)


def test_tls_mismatches_and_certificates_are_final_other_tls_errors_retried() -> None:
    mismatch = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    mismatch.reason = "WRONG_VERSION_NUMBER"
    assert isinstance(connect_failure(WHERE, mismatch), TlsMismatch)
    untrusted = ssl.SSLCertVerificationError(1, "certificate verify failed")
    untrusted.verify_message = "self-signed certificate"
    assert isinstance(connect_failure(WHERE, untrusted), CertificateError)
    cut = ssl.SSLEOFError(8, "EOF occurred in violation of protocol")
    assert connect_failure(WHERE, cut).transient
    assert connect_failure(WHERE, ConnectionRefusedError(111, "Connection refused")).transient
