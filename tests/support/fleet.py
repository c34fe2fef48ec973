"""A fleet on the session's server: several process workers, each in a home of its own as on another host, sharing
only the server, a result storage block and the VM sources; and the server-wide settings a fleet test changes
(result storage, a tag limit), each put back as it was.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import requests

from support.prefect_stack import Worker, client, run_bootstrap

RESULTS_BLOCK = "fleet-results"


class Fleet:
    """Workers under ``root``: worker ``a`` lives in ``root/a`` (working directory, PREFECT_HOME, logs)."""

    def __init__(self, server, root: Path, env: dict[str, str] | None = None) -> None:
        self.server = server
        self.root = root
        self.env = env or {}

    def home(self, name: str) -> Path:
        return self.root / f"worker-{name}"

    @contextlib.contextmanager
    def worker(self, name: str) -> Iterator[Worker]:
        worker = Worker(self.server, self.home(name), name=f"fleet-{name}", extra_env=self.env)
        worker.start()
        try:
            yield worker
        finally:
            worker.stop()

    def ran(self, name: str, flow_run_id) -> int:
        """How many times worker ``name`` ran the flow run: its submissions, less those the server aborted
        because another worker had taken the run first (every worker sees a scheduled run)."""
        log = self.home(name) / "worker.log"
        lines = [line for line in (log.read_text() if log.exists() else "").splitlines() if str(flow_run_id) in line]
        return sum("submitting flow run" in line for line in lines) - sum("Aborted submission" in line for line in lines)

    def take_away_home(self, name: str) -> Path:
        """The stopped worker's host is gone: nothing it kept to itself can be read any more."""
        gone = self.home(name).with_name(f"{self.home(name).name}-gone")
        shutil.move(self.home(name), gone)
        gone.chmod(0)
        return gone


@contextlib.contextmanager
def paused(worker: Worker) -> Iterator[None]:
    """The session's worker stopped for a while (it would otherwise take runs meant for the fleet)."""
    worker.stop()
    try:
        yield
    finally:
        worker.start()


def bootstrap_ok(server, *args: str) -> str:
    proc = run_bootstrap(server, "--no-deploy", *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@contextlib.contextmanager
def result_storage(server, slug: str, *, limits: dict[str, int] | None = None) -> Iterator[str]:
    """``deployments.bootstrap --result-storage SLUG [--limit TAG=N ...]`` for a while (one run: each costs seconds
    of Prefect start-up); then the server's previous default and limits again, put back through the client."""
    limits = limits or {}
    with client() as c:
        before = c.read_server_default_result_storage().default_result_storage_block_id
        limits_before = {tag: c.read_concurrency_limit_by_tag(tag).concurrency_limit for tag in limits}
    try:
        yield bootstrap_ok(server, "--result-storage", slug, *(f"--limit={tag}={n}" for tag, n in limits.items()))
    finally:
        with client() as c:
            if before:
                c.update_server_default_result_storage(before)
            else:
                c.clear_server_default_result_storage()
            for tag, limit in limits_before.items():
                c.create_concurrency_limit(tag=tag, concurrency_limit=limit)  # the API updates an existing tag's limit


def local_results_block(directory: Path) -> str:
    """A ``local-file-system`` block on ``directory`` (a shared NFS path in production); returns its slug."""
    from prefect.filesystems import LocalFileSystem

    directory.mkdir(parents=True, exist_ok=True)
    LocalFileSystem(basepath=str(directory)).save(RESULTS_BLOCK, overwrite=True)
    return f"local-file-system/{RESULTS_BLOCK}"


def s3_results_block(moto, bucket: str) -> str:
    """An ``s3-bucket`` block (prefect-aws) on a bucket of the moto server; returns its slug."""
    from prefect_aws import AwsCredentials, S3Bucket
    from prefect_aws.client_parameters import AwsClientParameters

    from support.moto_aws import REGION

    moto.client("s3").create_bucket(Bucket=bucket)
    credentials = AwsCredentials(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION,
        aws_client_parameters=AwsClientParameters(endpoint_url=moto.endpoint),
    )  # fmt: skip
    S3Bucket(bucket_name=bucket, credentials=credentials).save(RESULTS_BLOCK, overwrite=True)
    return f"s3-bucket/{RESULTS_BLOCK}"


def s3_keys(moto, bucket: str) -> list[str]:
    pages = moto.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


@contextlib.contextmanager
def moto_server() -> Iterator:
    """The session's moto server when tests/aws started one (one per process: it patches moto), else one of ours."""
    from support import moto_aws

    current = moto_aws._CURRENT
    if current is not None:
        try:
            requests.get(f"{current.endpoint}/moto-api/", timeout=5)
        except requests.RequestException:
            current = None
    if current is not None:
        yield current
        return
    with moto_aws.MotoAws() as server:
        yield server


def children_of(nightly_id) -> list:
    """The migrate-vm runs a nightly run started (its child flow runs)."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
    )

    with client() as c:
        return c.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[nightly_id])), limit=200
        )


def most_at_once(intervals: list[tuple]) -> int:
    """The largest number of (start, end) intervals open at one instant; one ending as another starts is not overlap."""
    edges = sorted([(end, 0) for _, end in intervals] + [(start, 1) for start, _ in intervals])
    open_now = most = 0
    for _, is_start in edges:
        open_now += 1 if is_start else -1
        most = max(most, open_now)
    return most
