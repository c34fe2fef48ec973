"""A 50-VM nightly plan on two process workers under a local tag limit of 4: makespan against the ideal.

    .venv/bin/python bench/fleet_bench.py [--vms 50] [--limit 4] [--workers 2] [--worker-limit 4]

Starts what the fleet tests start (tests/support): a throwaway PostgreSQL cluster, `prefect server start` on it
with filesystem leases, the bootstrap (``--limit local=N``), and process workers in homes of their own. The plan's
VMs are raw disks of 8, 12 and 16 MiB on local disk, converted by qemu-img. Printed:

* makespan: the nightly run's creation to the last VM's end;
* ideal: the larger of (sum of per-VM busy time / limit) and the longest VM, where a VM's busy time is the time
  its provider-tagged tasks held a slot (what the limit caps), and the longest VM is its run's duration;
* scheduling overhead per VM: its flow run's creation to its first task's start (median, p90, max).

A benchmark, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

# Before prefect is imported: conftest sets PREFECT_HOME and the test settings (and holds PrefectServer).
import conftest
from prefect.settings import PREFECT_API_URL, temporary_settings
from support.fleet import children_of, most_at_once
from support.postgres import PostgresCluster
from support.prefect_stack import (
    Worker,
    run_bootstrap,
    start_deployment,
    wait_for_state,
)

from flows.plan_status import read_all
from hyperexport.samples import make_base_raw

SIZES_MIB = (8, 12, 16)


def plan(directory: Path, count: int) -> tuple[list[dict], dict[int, Path]]:
    disks = {size: make_base_raw(directory / f"disk-{size}.raw", size, seed=size) for size in SIZES_MIB}
    vms = [
        {
            "provider": "local",
            "source": {"source": str(disks[SIZES_MIB[i % len(SIZES_MIB)]]), "vm_name": f"bench-{i:02d}"},
            "export": {"output_dir": str(directory / "out" / f"vm-{i:02d}")},
            "converter": "qemu-img",
        }
        for i in range(count)
    ]
    return vms, disks


def report(nightly, children: list, limit: int) -> None:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from support.prefect_stack import client

    with client() as c:
        task_runs = read_all(c.read_task_runs, flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[r.id for r in children])))
    by_flow: dict = {}
    for run in task_runs:
        by_flow.setdefault(run.flow_run_id, []).append(run)
    busy = [sum((r.end_time - r.start_time).total_seconds() for r in by_flow[c.id] if "local" in r.tags and r.start_time)
            for c in children]  # fmt: skip
    longest = max((c.end_time - c.start_time).total_seconds() for c in children)
    overhead = sorted(
        (min(r.start_time for r in by_flow[c.id] if r.start_time) - c.created).total_seconds() for c in children
    )
    makespan = (max(c.end_time for c in children) - nightly.created).total_seconds()
    ideal = max(sum(busy) / limit, longest)
    tagged = [(r.start_time, r.end_time) for r in task_runs if "local" in r.tags and r.start_time]
    states = {c.state.name for c in children}
    print(f"VMs: {len(children)} ({', '.join(sorted(states))}); local limit {limit}; most tagged tasks at once: "
          f"{most_at_once(tagged)}")  # fmt: skip
    print(f"makespan: {makespan:.1f} s")
    print(f"ideal: {ideal:.1f} s = max(sum of busy time {sum(busy):.1f} s / {limit} = {sum(busy) / limit:.1f} s, "
          f"longest VM {longest:.1f} s)")  # fmt: skip
    print(f"makespan / ideal: {makespan / ideal:.2f} (target <= 1.3)")
    print(f"per-VM busy time: median {statistics.median(busy):.1f} s, max {max(busy):.1f} s")
    print(f"scheduling overhead (run created -> first task start): median {statistics.median(overhead):.1f} s, "
          f"p90 {overhead[int(0.9 * (len(overhead) - 1))]:.1f} s, max {overhead[-1]:.1f} s")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vms", type=int, default=50)
    parser.add_argument("--limit", type=int, default=4, help="the local tag limit")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-limit", type=int, default=4, help="flow runs at once per worker (--limit)")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    root.chmod(0o711)  # the cluster runs as the postgres user when this runs as root
    database = PostgresCluster(root / "postgres", conftest._free_port())
    database.start()
    workers: list[Worker] = []
    server = None
    try:
        database.create_database("prefect")
        server = conftest.PrefectServer(root / "server-home", database.url("prefect"))
        server.start()
        os.environ["PREFECT_API_URL"] = server.api_url
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            return run(server, workers, root, args)
    finally:
        for worker in workers:
            worker.stop()
        if server:
            server.stop()
        database.stop()


def run(server, workers: list[Worker], root: Path, args: argparse.Namespace) -> int:
    """Bootstrap, start the workers (appended to ``workers``, which the caller stops), run the plan, report."""
    proc = run_bootstrap(server, "--limit", f"local={args.limit}")
    if proc.returncode != 0:
        print(proc.stdout + proc.stderr)
        return 1
    for n in range(args.workers):
        workers.append(Worker(server, root / f"worker-{n}", name=f"bench-{n}", limit=args.worker_limit))
        workers[-1].start()
    vms, _ = plan(root / "vms", args.vms)
    print(f"{args.vms} VMs ({'/'.join(map(str, SIZES_MIB))} MiB raw), {args.workers} workers "
          f"(--limit {args.worker_limit} each), local tag limit {args.limit}", flush=True)  # fmt: skip
    started = time.monotonic()
    nightly = start_deployment("nightly-migrations/nightly-migrations", {"plan": {"vms": vms}})
    nightly = wait_for_state(nightly.id, timeout=3600)
    print(f"nightly run {nightly.state.name} after {time.monotonic() - started:.0f} s")
    report(nightly, children_of(nightly.id), args.limit)
    return 0

if __name__ == "__main__":
    sys.exit(main())
