"""A download cut off part-way resumes under a new grant without fetching again what it had."""

from __future__ import annotations

import pytest
from support.azure_arm import RG
from support.migrate import assert_identical

from hyperexport.errors import SourceNotFoundError
from hyperexport.migration import export_vm, preflight, run_migration, stage
from hyperexport.providers import lifecycle
from hyperexport.providers.registry import get_provider


def _served(proxy) -> int:
    return sum(end - start + 1 for path, start, end, _ in proxy.ranges if "/snapshots/" in path and end - start + 1 != 512)


def test_a_cut_off_download_resumes_where_it_stopped(arm, web01, data_raw, make_request, tmp_path):
    request = make_request(tmp_path / "out", vm="web01", export={"keep_cloud_artifacts": True, "connections": 1})
    login = arm.login()
    export = export_vm(preflight(request), login)
    proxy = arm.azurite.proxy
    try:
        proxy.hook = lambda number: 404 if number == 4 else None
        with pytest.raises(SourceNotFoundError):
            stage(preflight(request), export, 1, credentials=login)
        first = _served(proxy)
        assert first > 0 and arm.open_grants() == set()  # the cut-off download revoked its grant

        proxy.hook = None
        proxy.ranges.clear()
        staged = stage(preflight(request), export, 1, credentials=login)
        second = _served(proxy)
    finally:
        provider = get_provider("azure")
        lifecycle.cleanup(provider, export, provider.parse(request.source), login)  # kept for the retry until now

    written = arm.azurite.written_bytes("disks", f"{RG}-web01-data", data_raw.stat().st_size)
    assert second > 0 and first + second == written, (first, second, written)
    assert arm.grants_made == 2 and staged.virtual_size_bytes == data_raw.stat().st_size
    assert_identical(data_raw, "raw", staged.path, "raw")
    assert arm.snapshot_ids() == set() and arm.open_grants() == set()


def test_a_range_damaged_on_the_way_fails_its_content_md5_and_is_read_again(arm, web01, os_raw, data_raw, make_request, tmp_path):
    proxy = arm.azurite.proxy
    proxy.corrupt_next = True
    report = run_migration(make_request(tmp_path / "out", vm="web01"), credentials=arm.login())

    assert not proxy.corrupt_next, "no range was damaged"
    for raw, output in zip((os_raw, data_raw), report.conversion.converted_files):
        assert_identical(raw, "raw", output)
    written = sum(arm.azurite.written_bytes("disks", f"{RG}-{d}", r.stat().st_size)
                  for d, r in (("web01-os", os_raw), ("web01-data", data_raw)))  # fmt: skip
    reads = [(path, start, end) for path, start, end, _ in proxy.ranges if "/snapshots/" in path and end - start + 1 != 512]
    twice = [r for r in set(reads) if reads.count(r) == 2]
    assert len(twice) == 1 and len(reads) == len(set(reads)) + 1, twice  # the damaged range alone, read again
    assert _served(proxy) == written + (twice[0][2] - twice[0][1] + 1)
