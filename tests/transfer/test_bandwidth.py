"""The bandwidth limit holds the average rate within 10%."""

from __future__ import annotations

import os

from hyperexport.transfer import HttpRangeSource, download

from ._helpers import KiB, MiB, fast_options


def test_bandwidth_limit_within_ten_percent(fault_server, tmp_path):
    size, limit = 3 * MiB, int(1.5 * MiB)  # about 2 seconds
    url = fault_server.add_file("/disk.raw", os.urandom(size))
    result = download(
        HttpRangeSource(url), tmp_path / "disk.raw", fast_options(bandwidth_limit_bps=limit, chunk_size=128 * KiB)
    )
    rate = result.size / result.duration_seconds
    assert 0.9 * limit <= rate <= 1.1 * limit, f"{rate / MiB:.2f} MiB/s against a limit of {limit / MiB:.2f} MiB/s"
