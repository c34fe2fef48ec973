"""An OVA behind a URL is read in place: its OVF from the archive, each disk downloaded straight from the byte
range it occupies (one copy, no extraction, through staging's progress); what an OVA read this way may not
hold is refused before a disk byte moves."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from support.migrate import assert_identical, local_request

from hyperexport.errors import UnsafeArchiveError
from hyperexport.migration import run_migration
from hyperexport.samples import make_ova


def test_an_ova_url_migrates_without_a_copy_of_the_archive(base_raw, second_raw, http_server, tmp_path):
    package = make_ova([base_raw, second_raw], tmp_path / "pkg" / "app.ova", "app")
    url = http_server.add_file("/pkg/app.ova", package)

    report = run_migration(local_request(url, tmp_path / "out"))

    out = tmp_path / "out"
    assert not list(out.rglob("*.ova")) and not list(out.rglob("*.extracting"))
    assert [d.path.parent.name for d in report.disks] == ["disk-0", "disk-1"]
    with tarfile.open(package) as archive:
        disk_bytes = sum(m.size for m in archive.getmembers() if m.name.endswith(".vmdk"))
    assert sum(d.bytes_fetched for d in report.disks) == disk_bytes
    assert http_server.stats.bytes_served < package.stat().st_size + 2 * 2**20  # headers and the OVF: a little more
    for disk, base in zip(report.disks, [base_raw, second_raw]):
        assert_identical(base, "raw", out / f"{disk.id}.qcow2")


def test_an_ova_url_on_a_server_without_ranges_is_fetched_whole_then_extracted(base_raw, http_server, tmp_path):
    package = make_ova([base_raw], tmp_path / "pkg" / "app.ova", "app")
    url = http_server.add_file("/pkg/app.ova", package, accept_ranges=False)

    report = run_migration(local_request(url, tmp_path / "out"))

    assert report.export_method == "ova"
    assert_identical(base_raw, "raw", tmp_path / "out" / "disk-0.qcow2")


def _hostile_ova(good: Path, member: tarfile.TarInfo, data: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(good) as source, tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as out:
        for entry in source.getmembers():
            out.addfile(entry, source.extractfile(entry))
        out.addfile(member, io.BytesIO(data) if data else None)
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["escape", "symlink", "device"])
def test_a_hostile_ova_url_is_refused_before_any_disk_byte(kind, base_raw, http_server, tmp_path):
    good = make_ova([base_raw], tmp_path / "pkg" / "good.ova", "vm")
    member = tarfile.TarInfo({"escape": "../../evil.txt", "symlink": "link.vmdk", "device": "tty"}[kind])
    data = b""
    if kind == "escape":
        data = b"pwned"
        member.size = len(data)
    elif kind == "symlink":
        member.type, member.linkname = tarfile.SYMTYPE, "/etc/shadow"
    else:
        member.type = tarfile.CHRTYPE
    url = http_server.add_file("/pkg/bad.ova", _hostile_ova(good, member, data))

    with pytest.raises(UnsafeArchiveError, match="refusing the whole archive|Refusing the whole archive"):
        run_migration(local_request(url, tmp_path / "run" / "out"))

    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "run" / "evil.txt").exists()
    assert not list((tmp_path / "run").rglob("*.vmdk"))


def test_an_ova_url_whose_member_runs_past_its_end_is_refused(base_raw, http_server, tmp_path):
    good = make_ova([base_raw], tmp_path / "pkg" / "good.ova", "vm").read_bytes()
    truncated = good[: len(good) // 2]
    url = http_server.add_file("/pkg/cut.ova", truncated)

    with pytest.raises(Exception, match="truncated|not a readable OVA|past the end") as caught:
        run_migration(local_request(url, tmp_path / "out"))
    assert caught.type.__name__ in ("UnsafeArchiveError", "InvalidInputError", "SourceNotFoundError")
