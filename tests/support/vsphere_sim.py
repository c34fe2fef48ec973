"""vcsim for the vsphere tests: a CA and server certificate made here, the simulator on 127.0.0.1 serving them,
pyVmomi connected with verification on, and the simulator extension's controls (tests/support/vsphere/).

The binary is built by ``make test-deps`` (mk/vsphere.mk) into .cache/vcsim/vcsim.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import signal
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
VCSIM = REPO / ".cache" / "vcsim" / "vcsim"
USER, PASSWORD = "migrator@vsphere.local", "Vc-s3cret-Pa55!word"


@dataclass
class Certificates:
    ca: Path
    cert: Path
    key: Path
    other_ca: Path  # a CA that did not sign the server's certificate


def make_certificates(directory: Path) -> Certificates:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    directory.mkdir(parents=True, exist_ok=True)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def ca(common: str) -> tuple[Any, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder().subject_name(name(common)).issuer_name(name(common)).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256())
        )  # fmt: skip
        return key, cert

    ca_key, ca_cert = ca("hyperexport test CA")
    _, other_cert = ca("some other CA")
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder().subject_name(name("127.0.0.1")).issuer_name(ca_cert.subject)
        .public_key(server_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                    x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    pem = serialization.Encoding.PEM
    paths = Certificates(directory / "ca.pem", directory / "server.pem", directory / "server.key", directory / "other-ca.pem")
    paths.ca.write_bytes(ca_cert.public_bytes(pem))
    paths.other_ca.write_bytes(other_cert.public_bytes(pem))
    paths.cert.write_bytes(server_cert.public_bytes(pem))
    paths.key.write_bytes(server_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return paths


@dataclass
class Vcsim:
    """One running simulator: its address, certificates and controls."""

    workdir: Path
    listen: str = "127.0.0.1:0"
    certificates: Certificates = field(init=False)
    url: str = ""
    host: str = "127.0.0.1"
    port: int = 0
    _process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.certificates = make_certificates(self.workdir / "tls")

    def __enter__(self) -> Vcsim:
        if not VCSIM.exists():
            raise RuntimeError(f"{VCSIM} is missing: run make test-deps (mk/vsphere.mk builds it)")
        ready = self.workdir / "ready.json"
        log = open(self.workdir / "vcsim.log", "wb")
        # Datastores are directories under TMPDIR: keep them in the session's workdir.
        env = {**os.environ, "TMPDIR": str(self.workdir)}
        self._process = subprocess.Popen(
            [str(VCSIM), "-listen", self.listen, "-cert", str(self.certificates.cert), "-key", str(self.certificates.key),
             "-user", USER, "-password", PASSWORD, "-ready", str(ready)],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + 30
        while not ready.exists():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError("vcsim did not start: " + (self.workdir / "vcsim.log").read_text()[-2000:])
            time.sleep(0.05)
        self.url = json.loads(ready.read_text())["url"]
        self.port = int(self.url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait(10)
        self._process = None

    def log_text(self) -> str:
        return (self.workdir / "vcsim.log").read_text(errors="replace")

    # -- pyVmomi, verification on --------------------------------------------
    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.certificates.ca))

    def connect(self) -> Any:
        from pyVim.connect import SmartConnect

        return SmartConnect(host=self.host, port=self.port, user=USER, pwd=PASSWORD, sslContext=self.ssl_context())

    # -- the extension's controls --------------------------------------------
    def control(self, what: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body or {}).encode()
        request = urllib.request.Request(f"https://{self.host}:{self.port}/hyperexport/{what}", data=data, method="POST")
        with urllib.request.urlopen(request, context=self.ssl_context(), timeout=10) as answer:
            text = answer.read()
        return json.loads(text) if text else None

    def reset(self) -> None:
        self.control("reset")

    def set_areas(self, vm: str, device_key: int, areas: list[tuple[int, int]]) -> None:
        self.control("areas", {"vm": vm, "device_key": device_key, "areas": [list(a) for a in areas]})

    def inject_fault(
        self, method: str, fault: str, *, object: str = "", privilege: str = "", message: str = "", times: int = 0
    ) -> None:
        """``fault`` on ``method`` of ``object`` (a moid, "task-*" a prefix, "" any), ``times`` calls (0: all)."""
        self.control("fault", {"object": object, "method": method, "fault": fault, "privilege": privilege,
                               "message": message, "times": times})  # fmt: skip

    def clear_faults(self) -> None:
        self.control("faults/clear")

    def folder_bytes(self) -> dict[str, int]:
        return dict(self.control("folder")["bytes"])

    def folder_requests(self) -> list[str]:
        return list(self.control("folder")["requests"] or [])

    def set_nfc(self, *, lease_timeout: int = 300, rate: int = 0, fail_after: int = 0) -> None:
        """The leases' timeout (seconds), the NFC serving rate (bytes/s) and a failure after that many bytes."""
        self.control("nfc", {"lease_timeout": lease_timeout, "rate": rate, "fail_after": fail_after})

    def leases(self) -> dict[str, dict[str, Any]]:
        """Every lease ExportVm handed out: its VM, its state (ready, complete, abort, expired) and its events."""
        return dict(self.control("leases") or {})
