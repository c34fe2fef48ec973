"""Fixtures for the transfer engine tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parents[1]
if str(_TESTS) not in sys.path:  # "support" lives in tests/, which pytest puts on sys.path anyway
    sys.path.insert(0, str(_TESTS))

from support.fault_server import FaultServer  # noqa: E402


@pytest.fixture
def fault_server():
    with FaultServer() as server:
        yield server


@pytest.fixture
def payload() -> bytes:
    """3 MiB of incompressible data with a run of zeros in the middle."""
    block = os.urandom(256 * 1024)
    return block * 5 + bytes(512 * 1024) + block[::-1] * 5


@pytest.fixture(scope="session")
def tls_contexts(tmp_path_factory):
    """``(server_context, client_context)`` for a self-signed certificate naming localhost and 127.0.0.1."""
    import datetime
    import ipaddress
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    directory = tmp_path_factory.mktemp("tls")
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    return server, ssl.create_default_context(cafile=str(cert_file))


@pytest.fixture
def no_proxy_env(monkeypatch):
    """No proxy variables from the machine running the tests: each test sets its own."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


@pytest.fixture
def clean_cancel():
    """The run-wide cancel flag is process-global: leave it cleared for the next test."""
    from hyperexport import cancel

    cancel.reset()
    yield cancel
    cancel.reset()
