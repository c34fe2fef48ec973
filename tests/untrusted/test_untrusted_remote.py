"""Images behind URLs: web pages, descriptors whose extents aim at host paths, colliding names, other origins,
and URL credentials that must reach no report.

One variant of each class of refusal runs through the CLI, the others in the engine (sandbox.py: ``via``).
What must reach no Prefect record, and two disks downloaded by parallel tasks, run through the CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import httpx
import pytest
from images import vmdk_descriptor
from sandbox import ENGINE, one_through_cli

from hyperexport import cli
from hyperexport.errors import InvalidInputError, UnsafeImageError
from hyperexport.samples import make_disk, make_ovf

LOGIN_PAGE = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body><form>password</form></body></html>\n"


@pytest.mark.parametrize(("content_type", "via"), one_through_cli("text/html", "application/octet-stream"))
def test_html_login_page_served_as_a_disk(content_type, via, sandbox, http_server):
    url = http_server.add_file("/images/disk.img", LOGIN_PAGE, content_type=content_type)
    sandbox.take_snapshot()
    run = sandbox.migrate(url, via=via)
    sandbox.assert_refused(run, "web page", "authentication", error=InvalidInputError)


EXTENTS = {"absolute": "{victim}", "dotdot": "../../victim.raw", "nested-dotdot": "sub/../../victim.raw"}


@pytest.mark.parametrize(("kind", "via"), one_through_cli(*EXTENTS))
def test_remote_vmdk_descriptor_whose_extent_aims_outside(kind, via, sandbox, http_server):
    extent = EXTENTS[kind]
    victim = sandbox.host / "victim.raw"
    name = extent.format(victim=victim)
    descriptor = vmdk_descriptor(sandbox.root / "build.vmdk", [(2048, "FLAT", name)])
    url = http_server.add_file("/v/disk.vmdk", descriptor.read_bytes())
    http_server.add_file("/" + str(victim).lstrip("/"), sandbox.marker * 1024)
    http_server.add_file("/victim.raw", sandbox.marker * 1024)
    descriptor.unlink()
    sandbox.take_snapshot()
    run = sandbox.migrate(url, via=via)
    sandbox.assert_refused(run, "VMDK extent", name, error=UnsafeImageError)
    assert not victim.exists()
    assert [r.path for r in http_server.stats.log if "victim" in r.path] == [], "an extent outside was requested"


def test_remote_ovf_with_equal_basenames_keeps_both_disks(sandbox, http_server, base_raw, second_raw):
    pkg = sandbox.root / "pkg"
    ovf = make_ovf([base_raw, second_raw], pkg, "app")
    disks = sorted(pkg.glob("*.vmdk"))
    text = ovf.read_text()
    for old, new in zip([d.name for d in disks], ["a/disk.vmdk", "b/disk.vmdk"]):
        text = text.replace(f'ovf:href="{old}"', f'ovf:href="{new}"')
    http_server.add_file("/pkg/app.ovf", text.encode())
    http_server.add_file("/pkg/a/disk.vmdk", disks[0])
    http_server.add_file("/pkg/b/disk.vmdk", disks[1])
    run = sandbox.migrate(http_server.url("/pkg/app.ovf"))
    assert run.code == cli.EXIT_OK, run.stderr[-3000:]
    for raw, output in ((base_raw, "disk-0.qcow2"), (second_raw, "disk-1.qcow2")):
        compare = subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "qcow2", str(raw), str(sandbox.out / output)])
        assert compare.returncode == 0, f"{output} does not hold {raw.name}"


def test_remote_ovf_naming_a_disk_on_another_server(sandbox, http_server, base_raw):
    pkg = sandbox.root / "pkg"
    ovf = make_ovf([base_raw], pkg, "app")
    elsewhere = http_server.url("/other/disk.vmdk", host="localhost")
    text = re.sub(r'ovf:href="[^"]+"', f'ovf:href="{elsewhere}"', ovf.read_text(), count=1)
    http_server.add_file("/pkg/app.ovf", text.encode())
    sandbox.take_snapshot()
    sandbox.assert_refused(sandbox.migrate(http_server.url("/pkg/app.ovf"), via=ENGINE), "on another server than the OVF",
                           "allow_other_origins", error=UnsafeImageError)
    assert [r.path for r in http_server.stats.log if r.path.startswith("/other")] == []


def test_url_credentials_and_query_reach_no_report_or_output(sandbox, http_server, base_raw):
    disk = make_disk(base_raw, "qcow2", sandbox.root / "served", name="vm")
    password, signature = "pw-" + sandbox.marker.decode()[12:30], "sig-" + sandbox.marker.decode()[12:30]
    http_server.add_file("/d/vm.qcow2", disk, auth=("alice", password))
    url = http_server.url("/d/vm.qcow2", query=f"X-Signature={signature}").replace("://", f"://alice:{password}@", 1)
    run = sandbox.migrate(url)
    assert run.code == cli.EXIT_OK, run.stderr[-3000:]
    report = json.loads((sandbox.out / "migration-report.json").read_text())
    assert report["source"].startswith("local source http://127.0.0.1:")
    for path in [p for p in sandbox.out.rglob("*") if p.is_file() and p.suffix != ".qcow2"]:
        text = path.read_bytes()
        assert password.encode() not in text and signature.encode() not in text, f"a URL secret is in {path}"
    assert password not in run.stdout and signature not in run.stdout
    assert any(r.headers.get("authorization", "").startswith("Basic ") for r in http_server.stats.log)
    assert any(signature in r.query for r in http_server.stats.log), "the download must still send the URL's query"
    # What the run left on the Prefect server (parameters, task runs, artifacts, logs) and in its result storage.
    api = os.environ["PREFECT_API_URL"]
    for kind in ("flow_runs", "task_runs", "artifacts", "logs"):
        body = {"limit": 200, "sort": "TIMESTAMP_DESC"} if kind == "logs" else {"limit": 200}
        answer = httpx.post(f"{api}/{kind}/filter", json=body, timeout=30)
        answer.raise_for_status()
        assert password not in answer.text, f"the URL password is in the server's {kind}"
        assert signature not in answer.text, f"the URL's query string is in the server's {kind}"
    storage = Path(os.environ["PREFECT_HOME"]) / "storage"
    for path in [p for p in storage.rglob("*") if p.is_file()] if storage.exists() else []:
        data = path.read_bytes()
        assert password.encode() not in data and signature.encode() not in data, f"a URL secret is in the persisted result {path}"
