#!/usr/bin/env python3
"""Benchmark of the transfer engine against curl and aria2c, over a rate-capped local nginx.

    python bench/transfer_bench.py                    # 2 GiB file, 4 GiB sparse image (a few minutes)
    python bench/transfer_bench.py --size 256M --sparse-size 512M --skip-curl   # quick

nginx (Debian package nginx-light) is started on 127.0.0.1 with its own
temporary prefix and ``limit_rate`` per connection. The engine runs in a child
process (8 connections, default 8 MiB ranges, sha256 computed, fsync and
atomic rename included) so its peak RSS is its own; curl (one connection) and
``aria2c -x8 -s8 -k1M`` download the same file in the same run. Times are wall
clock of each child process. The sparse case serves an image where 10% of the
4 MiB blocks hold data and gives the engine that range list, against a full
download of the same image.

Note on nginx's cap: ``limit_rate`` is per *request* and lets the first
second's worth of bytes (40 MiB at 40m) out at once, so requests shorter than
that are barely throttled. ``--long-ranges`` adds an engine run with one range
per connection (like aria2c's segments), where the cap binds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MiB = 1024 * 1024
GiB = 1024 * MiB


def parse_size(text: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([kKmMgG]?)(?:i?[bB])?", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text}")
    unit = {"": 1, "k": 1024, "m": MiB, "g": GiB}[match.group(2).lower()]
    return int(float(match.group(1)) * unit)


# -- child: one engine download, reported as JSON -----------------------------
def child(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(REPO))
    from hyperexport.transfer import DataRange, HttpRangeSource, TransferOptions, download

    ranges = None
    if args.ranges:
        ranges = [DataRange(o, n) for o, n in json.loads(Path(args.ranges).read_text())]
    options = TransferOptions(connections=args.connections, chunk_size=args.chunk_size)
    started = time.monotonic()
    result = download(HttpRangeSource(args.url, data_ranges=ranges), Path(args.dest), options)
    print(json.dumps({
        "seconds": time.monotonic() - started,
        "bytes_fetched": result.bytes_fetched,
        "sha256": result.sha256,
        "size": result.size,
    }))  # fmt: skip


# -- parent ---------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_nginx(prefix: Path, root: Path, rate: str) -> tuple[subprocess.Popen, int]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)
    port = free_port()
    template = (HERE / "transfer_nginx.conf.template").read_text()
    user_line = "user root;" if os.geteuid() == 0 else ""
    conf = prefix / "nginx.conf"
    conf.write_text(template.format(prefix=prefix, root=root, port=port, rate=rate, user_line=user_line))
    proc = subprocess.Popen([nginx, "-p", str(prefix), "-c", str(conf)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"nginx failed to start: {proc.stderr.read().decode()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("nginx did not listen in time")


def run_timed(cmd: list[str], **kw) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (KiB) and stdout of a child process.

    The peak RSS comes from GNU time (Debian package ``time``): a process forked
    straight from this script would inherit this script's high-water mark.
    """
    gnu_time = Path("/usr/bin/time")
    rss_file = None
    if gnu_time.exists():
        fd, rss_file = tempfile.mkstemp(prefix="transfer-bench-rss-")
        os.close(fd)
        cmd = [str(gnu_time), "-f", "%M", "-o", rss_file, *cmd]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, **kw)
    out = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{cmd} failed with exit code {code}")
    rss = usage.ru_maxrss
    if rss_file is not None:
        rss = int(Path(rss_file).read_text().split()[-1])
        os.unlink(rss_file)
    return seconds, rss, out


def make_file(path: Path, size: int) -> str:
    """Incompressible-enough data, fast: a 16 MiB random block, each copy salted. Returns its sha256."""
    block = bytearray(os.urandom(16 * MiB))
    digest = hashlib.sha256()
    with open(path, "wb") as handle:
        written, counter = 0, 0
        while written < size:
            block[:8] = counter.to_bytes(8, "little")
            piece = memoryview(block)[: min(len(block), size - written)]
            handle.write(piece)
            digest.update(piece)
            written += len(piece)
            counter += 1
    return digest.hexdigest()


def make_sparse(path: Path, size: int, block: int, fraction: float) -> tuple[list[list[int]], str]:
    """A sparse image with ``fraction`` of its blocks holding data; its range list and sha256."""
    rng = random.Random(4)
    blocks = size // block
    chosen = sorted(rng.sample(range(blocks), max(1, int(blocks * fraction))))
    data = os.urandom(block)
    with open(path, "wb") as handle:
        handle.truncate(size)
        for index in chosen:
            handle.seek(index * block)
            handle.write(index.to_bytes(8, "little") + data[8:])
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(16 * MiB), b""):
            digest.update(chunk)
    return [[i * block, block] for i in chosen], digest.hexdigest()


def engine(url: str, dest: Path, connections: int, chunk_size: int, ranges: Path | None = None) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "_child", url, str(dest),
           "--connections", str(connections), "--chunk-size", str(chunk_size)]  # fmt: skip
    if ranges is not None:
        cmd += ["--ranges", str(ranges)]
    wall, rss, out = run_timed(cmd, cwd=REPO)
    report = json.loads(out.strip().splitlines()[-1])
    report.update(wall=wall, rss_kib=rss)
    dest.unlink()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=parse_size, default=2 * GiB, help="size of the dense file (default 2G)")
    parser.add_argument("--sparse-size", type=parse_size, default=4 * GiB, help="size of the sparse image (default 4G)")
    parser.add_argument("--rate", default="40m", help="nginx limit_rate per connection (default 40m)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--chunk-size", type=parse_size, default=8 * MiB)
    parser.add_argument("--skip-curl", action="store_true", help="curl at one capped connection is the slow part")
    parser.add_argument("--skip-sparse", action="store_true")
    parser.add_argument("--long-ranges", action="store_true", help="also run the engine with one range per connection")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where to put files (default: a temp dir in /var/tmp)"
    )
    args = parser.parse_args()

    rate = parse_size(args.rate)
    work = Path(tempfile.mkdtemp(prefix="transfer-bench-", dir=args.workdir or "/var/tmp"))
    www, out = work / "www", work / "out"
    www.mkdir()
    out.mkdir()
    nginx = None
    try:
        print(f"generating {args.size / GiB:.2f} GiB test file in {www} ...", flush=True)
        expected = make_file(www / "disk.raw", args.size)
        nginx, port = start_nginx(work / "nginx", www, args.rate)
        url = f"http://127.0.0.1:{port}/disk.raw"
        cap = args.connections * rate
        rows = []

        eng = engine(url, out / "disk.raw", args.connections, args.chunk_size)
        assert eng["sha256"] == expected, "engine output does not match"
        rows.append(
            (f"engine ({args.connections} conn, {args.chunk_size // MiB} MiB ranges)", eng["wall"], eng["rss_kib"])
        )
        if args.long_ranges:
            long_chunk = -(-args.size // args.connections)
            eng_long = engine(url, out / "disk.raw", args.connections, long_chunk)
            rows.append((f"engine ({args.connections} conn, 1 range each)", eng_long["wall"], eng_long["rss_kib"]))

        aria = ["aria2c", "-q", "-x8", "-s8", "-k1M", "--file-allocation=none", "--allow-overwrite=true",
                "--auto-file-renaming=false", "-d", str(out), "-o", "aria.raw", url]  # fmt: skip
        wall, rss, _ = run_timed(aria)
        (out / "aria.raw").unlink()
        rows.append(("aria2c -x8 -s8 -k1M", wall, rss))
        aria_wall = wall
        curl_wall = None
        if not args.skip_curl:
            curl_wall, rss, _ = run_timed(["curl", "-sS", "-o", str(out / "curl.raw"), url])
            (out / "curl.raw").unlink()
            rows.append(("curl (1 conn)", curl_wall, rss))

        mib = args.size / MiB
        print(f"\ndense file: {mib:.0f} MiB, nginx limit_rate {args.rate} per connection, "
              f"aggregate cap {args.connections} x {rate / MiB:.0f} = {cap / MiB:.0f} MiB/s")  # fmt: skip
        print(f"{'tool':44} {'wall s':>8} {'MiB/s':>8} {'peak RSS':>10}")
        for name, wall, rss in rows:
            print(f"{name:44} {wall:8.2f} {mib / wall:8.1f} {rss / 1024:7.1f} MiB")
        speed = mib / eng["wall"]
        print(
            f"engine in-call time {eng['seconds']:.2f} s ({mib / eng['seconds']:.1f} MiB/s; "
            "wall adds interpreter start)"
        )
        print(f"ratios: engine / cap = {speed / (cap / MiB):.2f}, engine / aria2c = {aria_wall / eng['wall']:.2f}"
              + (f", engine / curl = {curl_wall / eng['wall']:.2f}" if curl_wall else ""))  # fmt: skip
        (www / "disk.raw").unlink()

        if not args.skip_sparse:
            print(f"\ngenerating {args.sparse_size / GiB:.2f} GiB sparse image (10% of 4 MiB blocks hold data) ...")
            ranges, sparse_sha = make_sparse(www / "sparse.raw", args.sparse_size, 4 * MiB, 0.10)
            allocated = sum(n for _, n in ranges)
            (work / "ranges.json").write_text(json.dumps(ranges))
            surl = f"http://127.0.0.1:{port}/sparse.raw"
            sparse = engine(surl, out / "sparse.raw", args.connections, args.chunk_size, work / "ranges.json")
            full = engine(surl, out / "sparse.raw", args.connections, args.chunk_size)
            assert sparse["sha256"] == full["sha256"] == sparse_sha, "sparse output does not match"
            print(
                f"sparse image: {args.sparse_size / MiB:.0f} MiB, "
                f"{allocated / MiB:.0f} MiB allocated in {len(ranges)} ranges"
            )
            print(f"{'run':44} {'wall s':>8} {'fetched MiB':>12} {'fetched/allocated':>18}")
            for name, rep in (("engine with range list", sparse), ("engine, full download", full)):
                print(f"{name:44} {rep['wall']:8.2f} {rep['bytes_fetched'] / MiB:12.1f} "
                      f"{rep['bytes_fetched'] / allocated:18.3f}")  # fmt: skip
            print(f"sparse vs full: {full['wall'] / sparse['wall']:.1f}x faster, "
                  f"{full['bytes_fetched'] / max(1, sparse['bytes_fetched']):.1f}x fewer bytes")  # fmt: skip
    finally:
        if nginx is not None:
            nginx.terminate()
            nginx.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        p = argparse.ArgumentParser()
        p.add_argument("cmd")
        p.add_argument("url")
        p.add_argument("dest")
        p.add_argument("--connections", type=int, default=8)
        p.add_argument("--chunk-size", type=int, default=8 * MiB)
        p.add_argument("--ranges", default=None)
        child(p.parse_args())
    else:
        main()
