"""Benchmark of a vSphere datastore read: vcsim's /folder behind transfer_bench.py's per-connection cap.

    python bench/vsphere_bench.py                 # a 1 GiB disk at 20 MiB/s per connection (about 2 minutes)
    python bench/vsphere_bench.py --size 256M     # quick

Needs root (tc, a network namespace), vcsim (``make test-deps`` builds it into .cache/vcsim/) and the Debian
packages aria2, curl, iproute2, qemu-utils and time.

ESXi throttles each connection (Proxmox measured 445 Mbit/s on one, 730-770 Mbit/s with 8). Here every TCP
connection from vcsim to a client is capped at ``--rate`` by the same HTB tree as bench/transfer_bench.py
(one class per client port, in a private network namespace). vcsim serves a VM whose disk is a flat VMDK of
random data; three clients read its extent through /folder with the session cookie and TLS verified against
the bench's own CA, in the same run: hyperexport's datastore source (``FolderDiskSource``: its own login, the
provider's 8 connections and 16 MiB ranges, sha256, fsync), ``aria2c -x8 -s8 -k1M`` and ``curl`` (one
connection). Printed: wall time, MiB/s, share of the aggregate cap, and the engine's ratio to each of the
others (not asserted). Every copy's sha256 is checked against the disk.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO), str(REPO / "tests")]

import transfer_bench as tb  # noqa: E402 - the cap, the connection watch and the timed runs are that bench's

MiB = tb.MiB
NETNS_ENV = "VSPHERE_BENCH_NETNS"
PASSWORD_ENV = "VSPHERE_BENCH_PASSWORD"


def child(args: argparse.Namespace) -> None:
    """One engine download through the provider's datastore source, reported as JSON."""
    import ssl
    import time

    from pydantic import SecretStr

    from hyperexport.providers.vsphere import provider
    from hyperexport.providers.vsphere.credentials import VsphereLogin
    from hyperexport.providers.vsphere.datastore import FolderDiskSource, FolderLocation
    from hyperexport.transfer import TransferOptions, download

    login = VsphereLogin(host=args.host, port=args.port, user=args.user, password=SecretStr(os.environ[PASSWORD_ENV]),
                         ssl_context=ssl.create_default_context(cafile=args.ca))  # fmt: skip
    location = FolderLocation(url=args.url, name="bench disk", vm="vm-0", snapshot="snapshot-0", device_key=0, cbt=False)
    defaults = provider.transfer
    options = TransferOptions(connections=defaults.connections, chunk_size=defaults.chunk_size)
    started = time.monotonic()
    result = download(FolderDiskSource(login, location), Path(args.dest), options)
    print(json.dumps({"seconds": time.monotonic() - started, "sha256": result.sha256, "bytes": result.bytes_fetched}))


def make_image(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "wb") as handle:
        for _ in range(size // MiB):
            block = os.urandom(MiB)
            digest.update(block)
            handle.write(block)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(4 * MiB):
            digest.update(block)
    return digest.hexdigest()


def enter_netns(mode: str) -> None:
    """Re-execute this script in a private network namespace, as transfer_bench.py does (see there)."""
    tb.enter_netns(mode, Path(__file__), NETNS_ENV)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=tb.parse_size, default=1024 * MiB, help="size of the disk (default 1G; 1-2G)")
    parser.add_argument("--rate", type=tb.parse_size, default=20 * MiB, help="cap per TCP connection (default 20M/s)")
    parser.add_argument("--netns", choices=["auto", "yes", "no"], default="auto", help="run in a private network namespace")
    args = parser.parse_args()
    for tool in ("aria2c", "curl", "tc", "unshare", "/usr/bin/time", "qemu-img"):
        if not (Path(tool).exists() or subprocess.run(["which", tool], capture_output=True).returncode == 0):
            raise SystemExit(f"{tool} is missing: install the Debian packages named in this script's docstring")
    enter_netns(args.netns)
    private = bool(os.environ.get(NETNS_ENV))
    if private:
        tb.setup_netns()
    signal.signal(signal.SIGTERM, tb._raise_exit)
    signal.signal(signal.SIGHUP, tb._raise_exit)

    from support.vsphere_inventory import Disk, make_vm
    from support.vsphere_sim import PASSWORD, USER, Vcsim

    with tempfile.TemporaryDirectory(prefix="vsphere-bench-") as tmp:
        work = Path(tmp)
        image = work / "disk.raw"
        digest = make_image(image, args.size // MiB * MiB)
        with Vcsim(work / "vcsim", listen=f"127.0.0.1:{tb.NETNS_SERVER_PORT}" if private else "127.0.0.1:0") as sim:
            si = sim.connect()
            made = make_vm(si, "bench01", [Disk(image, boot=True)], power_on=False)
            image.unlink()  # the datastore holds the copy now
            cookie = str(si._stub.cookie).split(";", 1)[0]
            url = f"https://127.0.0.1:{sim.port}/folder/bench01/{made.extents[0].name}?dcPath=DC0&dsName=LocalDS_0"
            ca = str(sim.certificates.ca)
            out = work / "out"
            out.mkdir()
            clients = {
                "hyperexport": [sys.executable, str(Path(__file__).resolve()), "_child", url, str(out / "engine.raw"),
                                "--host", "127.0.0.1", "--port", str(sim.port), "--user", USER, "--ca", ca],
                "aria2c -x8": ["aria2c", "-q", "-x8", "-s8", "-k1M", "--allow-overwrite=true", f"--ca-certificate={ca}",
                               f"--header=Cookie: {cookie}", "-d", str(out), "-o", "aria2c.raw", url],
                "curl": ["curl", "-sS", "--fail", "--cacert", ca, "-H", f"Cookie: {cookie}", "-o", str(out / "curl.raw"), url],
            }  # fmt: skip
            results = []
            with tb.LoopbackCap(args.rate, sim.port, private):
                for name, cmd in clients.items():
                    env = dict(os.environ, **{PASSWORD_ENV: PASSWORD})
                    run = tb.timed_tool(name, sim.port, lambda c=cmd, e=env: tb.run_timed(c, cwd=REPO, env=e))
                    written = out / {"hyperexport": "engine.raw", "aria2c -x8": "aria2c.raw", "curl": "curl.raw"}[name]
                    run["identical"] = sha256_of(written) == digest
                    written.unlink()
                    results.append(run)
    size = args.size // MiB * MiB
    print(f"vSphere datastore read: {size / MiB:.0f} MiB from vcsim /folder, cap {args.rate / MiB:.0f} MiB/s per connection")
    by_name = {r["name"]: r for r in results}
    for run in results:
        speed = size / run["wall"] / MiB
        print(f"  {run['name']:12s} {run['wall']:7.2f} s  {speed:7.1f} MiB/s  peak RSS {run['rss_kib'] / 1024:6.0f} MiB  "
              f"{run['conns']}  {'identical' if run['identical'] else 'DIFFERENT'}")  # fmt: skip
    engine = by_name["hyperexport"]["wall"]
    print(f"  ratio (time of the other / hyperexport's): curl {by_name['curl']['wall'] / engine:.2f}x, "
          f"aria2c -x8 {by_name['aria2c -x8']['wall'] / engine:.2f}x")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        parser = argparse.ArgumentParser()
        parser.add_argument("_child")
        for name in ("url", "dest"):
            parser.add_argument(name)
        for name in ("--host", "--user", "--ca"):
            parser.add_argument(name)
        parser.add_argument("--port", type=int)
        child(parser.parse_args())
    else:
        main()
