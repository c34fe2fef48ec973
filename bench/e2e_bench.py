"""End to end: a raw disk behind a URL to a qcow2, hyperexport against the two-line script a user would write.

    python bench/e2e_bench.py                         # 8 GiB raw, 25 % data, 20 MiB/s per connection
    python bench/e2e_bench.py --size 1G --rate 40M    # quick

Needs root (tc, a network namespace) and the Debian packages nginx-light, aria2, time, iproute2, qemu-utils.
Printed, never asserted: the figures are ratios of runs made in the same go on the same machine.

The disk is served by nginx behind ``bench/transfer_bench.py``'s per-connection HTB cap, in a private network
namespace (its machinery is imported, not copied). In one run it measures:

* ``hyperexport --provider local --vm URL --output DIR --convert --converter qemu-img`` (the CLI as a user runs
  it, with Prefect's temporary server, since no ``PREFECT_API_URL`` is set, on a PREFECT_HOME that has had one
  run before: Prefect's database exists, as on a user's second run), then the same with ``--stream``
  (the disk written into the qcow2 as it downloads);
* ``aria2c -x8 -s8`` then ``qemu-img convert -W -m 16 -f raw -O qcow2`` (the script);
* ``aria2c -x8 -s8`` alone (the floor for anything that downloads first);

each with its wall time, its CPU seconds (GNU time: the process and the children it waited for) and its peak
scratch space: the largest allocated size (st_blocks) of its output directory, sampled every 0.1 s. Then the
start-up cost: ``hyperexport --help``, and the CLI on a 16 MiB disk from a local path with the temporary server
and with ``PREFECT_API_URL`` pointing at a ``prefect server start`` the bench runs (time to the first byte of
output, and the whole run).

The issue's targets are printed beside the figures: hyperexport <= 0.8 x the script and <= 1.15 x aria2c alone,
peak scratch <= 1.1 x the allocated data, CPU per GiB <= aria2c's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import transfer_bench as tb  # noqa: E402 - the bench folder is not a package

MARKER = "E2E_BENCH_NETNS"
HYPEREXPORT = tb.HYPEREXPORT


class ScratchWatch(threading.Thread):
    """The largest allocated size of every file under ``root`` seen while the watch runs."""

    def __init__(self, root: Path, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.root, self.interval, self.peak = root, interval, 0
        self._done = threading.Event()

    def _allocated(self) -> int:
        total = 0
        for directory, _, files in os.walk(self.root):
            for name in files:
                try:
                    total += os.lstat(os.path.join(directory, name)).st_blocks * 512
                except FileNotFoundError:
                    pass  # renamed or removed between the listing and the stat
        return total

    def run(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, self._allocated())
            self._done.wait(self.interval)

    def __enter__(self) -> ScratchWatch:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self.join()
        self.peak = max(self.peak, self._allocated())


def measured(name: str, cmd: list[str], scratch: Path, env: dict[str, str] | None = None) -> dict:
    scratch.mkdir(parents=True)
    with ScratchWatch(scratch) as watch:
        run = tb.run_timed(cmd, env=env)
    run.update(name=name, scratch=watch.peak)
    return run


def compare(a: Path, a_fmt: str, b: Path) -> None:
    proc = subprocess.run(["qemu-img", "compare", "-q", "-f", a_fmt, "-F", "qcow2", str(a), str(b)], check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{b} is not identical to the source {a}")


def warmed_env(work: Path) -> dict[str, str]:
    """A clean environment whose PREFECT_HOME has had one run: what a user's second and later runs see.

    The first run on a fresh PREFECT_HOME also creates Prefect's database (migrations, block types); that cost
    is paid once per PREFECT_HOME and is printed on its own in the start-up section, not hidden in every row.
    """
    env = tb.prefect_env()
    tiny = tiny_disk(work / "warm.raw")
    convert_tiny(tiny, work / "warm-out", env)
    shutil.rmtree(work / "warm-out")
    tiny.unlink()
    return env


def tiny_disk(path: Path) -> Path:
    """The 16 MiB raw disk (half its 1 MiB blocks data) the start-up figures are measured on."""
    tb.make_sparse(path, 16 * tb.MiB, 1 * tb.MiB, 0.5)
    return path


def convert_tiny(tiny: Path, out: Path, env: dict[str, str]) -> tuple[float, float]:
    """``hyperexport --convert`` of ``tiny`` from its local path into ``out`` (emptied first): first byte, end."""
    shutil.rmtree(out, ignore_errors=True)
    return first_output_and_end([str(HYPEREXPORT), "--provider", "local", "--vm", str(tiny), "--output", str(out),
                                 "--convert", "--converter", "qemu-img", "--no-progress"], env)  # fmt: skip


def first_output_and_end(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Seconds to the first byte the command writes (stdout or stderr), and to its end."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    assert proc.stdout is not None
    first = proc.stdout.read(1)
    first_at = time.monotonic() - started
    rest = proc.stdout.read()
    if proc.wait() != 0:
        raise SystemExit(f"{cmd} failed: {(first + rest).decode(errors='replace')[-800:]}")
    return first_at, time.monotonic() - started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_prefect_server(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    prefect = Path(sys.executable).parent / "prefect"
    proc = subprocess.Popen([str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("prefect server start ended before it listened")
        probe = subprocess.run(["curl", "-sf", f"{url}/health"], capture_output=True, check=False)
        if probe.returncode == 0:
            return proc, url
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    raise SystemExit("prefect server start did not answer in 120 s")


def startup(work: Path) -> list[tuple[str, float, float]]:
    tiny = tiny_disk(work / "tiny.raw")
    env = tb.prefect_env()
    rows = []
    for _ in range(3):
        rows.append(("hyperexport --help", *first_output_and_end([str(HYPEREXPORT), "--help"], env)))

    for label in ("fresh PREFECT_HOME", "second run"):
        rows.append((f"tiny --convert, temporary server, {label}", *convert_tiny(tiny, work / "tiny-temp", env)))
    server, url = start_prefect_server(env)
    try:
        with_server = dict(env, PREFECT_API_URL=url)
        for _ in range(2):
            rows.append(("tiny --convert, PREFECT_API_URL set", *convert_tiny(tiny, work / "tiny-server", with_server)))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
    compare(tiny, "raw", work / "tiny-server" / "disk-0.qcow2")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=tb.parse_size, default=8 * tb.GiB, help="size of the raw disk (default 8G)")
    parser.add_argument("--data-fraction", type=float, default=0.25, help="share of 4 MiB blocks holding data")
    parser.add_argument("--rate", type=tb.parse_size, default=20 * tb.MiB, help="cap per TCP connection (default 20M/s)")
    parser.add_argument("--netns", choices=["auto", "yes", "no"], default="auto")
    parser.add_argument("--workdir", type=Path, default=None, help="where to put files (default: a temp dir in /var/tmp)")
    parser.add_argument("--skip-startup", action="store_true")
    args = parser.parse_args()
    for tool in ("nginx", "aria2c", "tc", "unshare", "qemu-img", "curl", "/usr/bin/time"):
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            raise SystemExit(f"missing {tool} (Debian packages nginx-light, aria2, iproute2, util-linux, qemu-utils, curl, time)")

    tb.enter_netns(args.netns, Path(__file__), MARKER)
    private = bool(os.environ.get(MARKER))
    if private:
        tb.setup_netns()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, tb._raise_exit)  # noqa: SLF001 - the sibling bench's handler
    work = Path(tempfile.mkdtemp(prefix="e2e-bench-", dir=args.workdir or "/var/tmp"))
    www = work / "www"
    www.mkdir()
    port = tb.NETNS_SERVER_PORT if private else tb.free_port()
    nginx = None
    try:
        print(f"generating a {args.size / tb.GiB:.2f} GiB raw disk, {args.data_fraction:.0%} of its 4 MiB blocks data ...",
              flush=True)  # fmt: skip
        ranges, _ = tb.make_sparse(www / "disk.raw", args.size, 4 * tb.MiB, args.data_fraction)
        allocated = sum(length for _, length in ranges)
        nginx = tb.start_nginx(work / "nginx", www, port)
        url = f"http://127.0.0.1:{port}/disk.raw"
        aria = ["aria2c", "-q", "-x8", "-s8", "-k1M", "--file-allocation=none", "--allow-overwrite=true",
                "--auto-file-renaming=false"]  # fmt: skip
        rows = []
        env = warmed_env(work)
        with tb.LoopbackCap(args.rate, port, private):
            out = work / "hyperexport"
            cli = [str(HYPEREXPORT), "--provider", "local", "--vm", url, "--output", str(out), "--convert",
                   "--converter", "qemu-img", "--no-progress"]  # fmt: skip
            rows.append(measured("hyperexport --convert (qemu-img)", cli, out, env=env))
            compare(www / "disk.raw", "raw", out / "disk-0.qcow2")
            streamed = work / "hyperexport-stream"
            stream_cli = [*cli[:6], str(streamed), *cli[7:], "--stream"]
            rows.append(measured("hyperexport --convert --stream (qemu-img)", stream_cli, streamed, env=env))
            compare(www / "disk.raw", "raw", streamed / "disk-0.qcow2")
            script_dir = work / "script"
            script = (f"{' '.join(aria)} -d {script_dir} -o disk.raw {url} && "
                      f"qemu-img convert -W -m 16 -f raw -O qcow2 {script_dir}/disk.raw {script_dir}/disk.qcow2")  # fmt: skip
            rows.append(measured("aria2c -x8 -s8 && qemu-img convert -W -m 16", ["bash", "-c", script], script_dir))
            compare(www / "disk.raw", "raw", script_dir / "disk.qcow2")
            alone = work / "aria"
            rows.append(measured("aria2c -x8 -s8 alone", [*aria, "-d", str(alone), "-o", "disk.raw", url], alone))

        gib = args.size / tb.GiB
        print(f"\nraw disk {gib:.2f} GiB, {allocated / tb.GiB:.2f} GiB data; cap {args.rate / tb.MiB:g} MiB/s per "
              f"connection ({'private network namespace' if private else 'host loopback'})")  # fmt: skip
        print(f"{'run':46} {'wall s':>8} {'CPU s':>7} {'CPU s/GiB':>10} {'peak scratch GiB':>17} {'scratch/data':>13}")
        for run in rows:
            print(f"{run['name']:46} {run['wall']:8.2f} {run['cpu']:7.1f} {run['cpu'] / gib:10.2f} "
                  f"{run['scratch'] / tb.GiB:17.2f} {run['scratch'] / allocated:13.2f}")  # fmt: skip
        staged, stream, script_run, aria_run = rows
        for label, he in (("staged", staged), ("--stream", stream)):
            targets = [
                ("hyperexport <= 0.8 x script", he["wall"] / script_run["wall"], 0.8),
                ("hyperexport <= 1.15 x aria2c alone", he["wall"] / aria_run["wall"], 1.15),
                ("peak scratch <= 1.1 x allocated data", he["scratch"] / allocated, 1.1),
                ("CPU per GiB <= aria2c's", he["cpu"] / max(aria_run["cpu"], 1e-9), 1.0),
            ]
            for name, ratio, limit in targets:
                print(f"target ({label}) {name}: {ratio:.2f} ({'PASS' if ratio <= limit else 'FAIL'})")

        if not args.skip_startup:
            print("\nstart-up (16 MiB raw disk from a local path):")
            for name, first, end in startup(work):
                print(f"  {name:56} first byte {first:6.2f} s, whole run {end:6.2f} s")
    finally:
        if nginx is not None:
            nginx.terminate()
            nginx.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
