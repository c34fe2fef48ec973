"""OVF and OVA packages whose hrefs or members reach outside, and XML attacks on the descriptor.

One variant of each class runs through the CLI, the others in the engine (sandbox.py: ``via``)."""

from __future__ import annotations

import io
import os
import re
import tarfile
from pathlib import Path

import pytest
from sandbox import ENGINE, one_through_cli

from hyperexport.errors import InvalidInputError, UnsafeArchiveError, UnsafeImageError
from hyperexport.samples import make_ova, make_ovf


def _ovf_with_href(sandbox, base_raw, href: str) -> Path:
    ovf = make_ovf([base_raw], sandbox.src / "pkg", "vm")
    text = ovf.read_text()
    ovf.write_text(re.sub(r'ovf:href="[^"]+"', f'ovf:href="{href}"', text, count=1))
    return ovf


HREFS = {
    "absolute": ("{host}", "is an absolute path"),
    "dotdot": ("../../host/secret.raw", "climbs out of its directory"),
    "dev-zero": ("/dev/zero", "is an absolute path"),
    "drive": ("C:/Windows/disk.vmdk", "is a Windows drive path"),
    "file-url": ("file:///etc/passwd", "is a URL or a qemu protocol string"),
    "http-url": ("http://127.0.0.1:9/disk.vmdk", "is a URL or a qemu protocol string"),
}


@pytest.mark.parametrize(("kind", "via"), one_through_cli(*HREFS))
def test_local_ovf_href_outside_its_directory(kind, via, sandbox, base_raw):
    href, reason = HREFS[kind]
    host = sandbox.host_file()
    ovf = _ovf_with_href(sandbox, base_raw, href.format(host=host))
    sandbox.take_snapshot()
    sandbox.assert_refused(sandbox.migrate(ovf, via=via), "vm.ovf: disk href", reason, error=UnsafeImageError)


def test_local_ovf_href_through_a_symlink_out(sandbox, base_raw):
    host = sandbox.host_file()
    ovf = _ovf_with_href(sandbox, base_raw, "linked.vmdk")
    (ovf.parent / "linked.vmdk").symlink_to(host)
    sandbox.take_snapshot()
    sandbox.assert_refused(sandbox.migrate(ovf, via=ENGINE), "'linked.vmdk' resolves to", "outside", error=UnsafeImageError)


def test_local_ovf_href_on_a_fifo_beside_it(sandbox, base_raw):
    ovf = _ovf_with_href(sandbox, base_raw, "pipe.vmdk")
    os.mkfifo(ovf.parent / "pipe.vmdk")
    sandbox.take_snapshot()
    sandbox.assert_refused(sandbox.migrate(ovf, via=ENGINE), "is a FIFO (named pipe), not a regular file", error=UnsafeImageError)


_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"><References>&lol4;</References></Envelope>
"""
_EXTERNAL = """<?xml version="1.0"?>
<!DOCTYPE Envelope [ <!ENTITY secret SYSTEM "file://{host}"> ]>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"><References>&secret;</References></Envelope>
"""


XML_ATTACKS = {"billion-laughs": "declares XML entities", "external-entity": "XML entities"}


# Through the CLI, the flow's retry policy is under test too: a refusal must not be retried.
@pytest.mark.parametrize(("kind", "via"), one_through_cli(*XML_ATTACKS))
def test_xml_attacks_on_the_ovf_fail_fast_without_retries(kind, via, sandbox):
    reason = XML_ATTACKS[kind]
    host = sandbox.host_file()
    ovf = sandbox.src / "vm.ovf"
    ovf.write_text(_LAUGHS if kind == "billion-laughs" else _EXTERNAL.format(host=host))
    sandbox.take_snapshot()
    # Before, each ended in a raw traceback after three retries (~70 s): now a refusal in the time bound.
    sandbox.assert_refused(sandbox.migrate(ovf, via=via), "vm.ovf", reason, error=InvalidInputError)


def _ova_with(sandbox, base_raw, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    good = make_ova([base_raw], sandbox.root / "build" / "good.ova", "vm")
    bad = sandbox.src / "bad.ova"
    with tarfile.open(good) as source, tarfile.open(bad, "w") as target:
        for entry in source.getmembers():
            target.addfile(entry, source.extractfile(entry))
        target.addfile(member, io.BytesIO(data) if data else None)
    good.unlink()
    return bad


@pytest.mark.parametrize(("kind", "via"), one_through_cli("hardlink-out", "chardev", "fifo", "symlink-dotdot"))
def test_ova_members_that_are_links_out_or_devices(kind, via, sandbox, base_raw):
    host = sandbox.host_file()
    member = tarfile.TarInfo("evil")
    if kind == "hardlink-out":
        member.type, member.linkname = tarfile.LNKTYPE, str(host)
    elif kind == "chardev":
        member.type, member.devmajor, member.devminor = tarfile.CHRTYPE, 1, 5
    elif kind == "fifo":
        member.type = tarfile.FIFOTYPE
    else:
        member.type, member.linkname = tarfile.SYMTYPE, "../../host/secret.raw"
    ova = _ova_with(sandbox, base_raw, member)
    sandbox.take_snapshot()
    sandbox.assert_refused(sandbox.migrate(ova, via=via), "bad.ova", "Refusing" if kind in ("chardev", "fifo") else "refusing the whole archive",
                           error=UnsafeArchiveError)
    assert not (sandbox.out / "source" / "bad").exists()


def test_ova_whose_ovf_names_dev_zero(sandbox, base_raw):
    staging = sandbox.root / "build"
    ovf = make_ovf([base_raw], staging, "vm")
    ovf.write_text(re.sub(r'ovf:href="[^"]+"', 'ovf:href="/dev/zero"', ovf.read_text(), count=1))
    ova = sandbox.src / "vm.ova"
    with tarfile.open(ova, "w") as archive:
        for file in sorted(staging.iterdir()):
            archive.add(file, arcname=file.name)
    for file in staging.iterdir():
        file.unlink()
    staging.rmdir()
    sandbox.take_snapshot()
    sandbox.assert_refused(sandbox.migrate(ova, via=ENGINE), "disk href '/dev/zero' is an absolute path", error=UnsafeImageError)
