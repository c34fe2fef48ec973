"""Time the default conversion path against plain `qemu-img convert -W -m 16` on the same input.

    .venv/bin/python bench/convert_bench.py [--size-gib 2] [--rounds 3] [--format raw|vmdk|vpc]

The default path is Hyper2KVMConverter: hyper2kvm loads and reports on the
manifest while qemu-img (explicit source format, -W -m 16) converts. Runs
alternate between the two so page-cache warmth is shared; the medians and
their ratio are printed. A benchmark, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hyperexport.converters import Hyper2KVMConverter
from hyperexport.manifest import ManifestPipeline, PipelineStage, build_manifest, write_manifest
from hyperexport.models import ConvertOptions, DiskFormat, ExportResult, StagedDisk
from hyperexport.qemu import info

MiB = 2**20


def make_input(directory: Path, size_gib: float, fmt: str) -> Path:
    """Half data (incompressible, in 4 MiB runs), half holes: a typical used disk."""
    raw = directory / "input.raw"
    size = int(size_gib * 1024) * MiB
    block = os.urandom(4 * MiB)
    with open(raw, "wb") as handle:
        handle.truncate(size)
        for offset in range(0, size, 8 * MiB):
            handle.seek(offset)
            handle.write(block)
    if fmt == "raw":
        return raw
    converted = directory / f"input.{fmt}"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", fmt, str(raw), str(converted)], check=True)
    raw.unlink()
    return converted


def time_qemu_img(source: Path, fmt: str, dest: Path) -> float:
    dest.unlink(missing_ok=True)
    os.sync()  # the previous run's writeback must not land in this one's time
    started = time.perf_counter()
    subprocess.run(["qemu-img", "convert", "-W", "-m", "16", "-f", fmt, "-O", "qcow2", str(source), str(dest)], check=True)
    return time.perf_counter() - started


def time_default_path(manifest: Path, out_dir: Path) -> float:
    for leftover in out_dir.glob("*.qcow2"):
        leftover.unlink()
    os.sync()
    started = time.perf_counter()
    result = Hyper2KVMConverter().convert(manifest, ConvertOptions())
    elapsed = time.perf_counter() - started
    assert result.success and result.converted_files
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gib", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--format", default="raw", choices=["raw", "vmdk", "vpc", "qcow2"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="convert-bench-", dir=os.environ.get("BENCH_DIR")) as tmp:
        work = Path(tmp)
        source = make_input(work, args.size_gib, args.format)
        disk_format = DiskFormat.vhd if args.format == "vpc" else DiskFormat(args.format)
        virtual = info(source, args.format).virtual_size
        staged = StagedDisk(id="disk-0", path=source, format=disk_format, size_bytes=source.stat().st_size, virtual_size_bytes=virtual)
        export = ExportResult(provider="local", export_method="bench",
                              disks=[{"id": "disk-0", "location": str(source), "format": disk_format, "file_name": source.name}])
        out_dir = work / "out"
        manifest = write_manifest(
            build_manifest(export, [staged], output_dir=out_dir, pipeline=ManifestPipeline(convert=PipelineStage(enabled=True))),
            work,
        )
        print(f"input: {source.name}, {args.format}, virtual {virtual / 2**30:.2f} GiB, file {source.stat().st_size / 2**30:.2f} GiB")
        time_qemu_img(source, args.format, work / "warm.qcow2")  # warm the page cache once
        baseline, default = [], []
        for round_ in range(args.rounds):
            baseline.append(time_qemu_img(source, args.format, work / "baseline.qcow2"))
            default.append(time_default_path(manifest, out_dir))
            print(f"round {round_ + 1}: qemu-img -W -m 16 {baseline[-1]:.2f}s, default path {default[-1]:.2f}s")
        b, d = statistics.median(baseline), statistics.median(default)
        print(f"median: qemu-img convert -W -m 16 {b:.2f}s, default path (hyper2kvm + qemu-img) {d:.2f}s")
        print(f"ratio default/qemu-img: {d / b:.3f} (target <= 1.10)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
