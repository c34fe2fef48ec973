"""``--stream`` against hostile input: what is not raw is never streamed as raw, and a partial image planted in
the output, naming a host file as its backing file, is not trusted to resume into."""

from __future__ import annotations

import subprocess

from images import qcow2_with_backing
from sandbox import CLI

from hyperexport import cli
from hyperexport.errors import UnsafeImageError
from hyperexport.transfer import HttpRangeSource, journal
from hyperexport.transfer.source import DataRange

MiB = 2**20


def test_a_remote_qcow2_with_a_host_backing_file_is_not_streamed(sandbox, http_server):
    host = sandbox.host_file()
    disk = qcow2_with_backing(sandbox.src / "disk.qcow2", str(host))
    url = http_server.add_file("/images/disk.qcow2", disk.read_bytes())
    disk.unlink()
    sandbox.take_snapshot()
    run = sandbox.migrate(url, "--stream", via=CLI)
    sandbox.assert_refused(run, "is a qcow2 with a backing file", str(host), error=UnsafeImageError)


def test_a_planted_partial_output_naming_a_host_file_is_emptied_and_written_again(sandbox, http_server):
    size = 4 * MiB
    source = sandbox.src / "disk.img"
    source.write_bytes(bytes(MiB) + b"guest data" * (MiB // 10) + bytes(2 * MiB + MiB % 10))
    url = http_server.add_file("/images/disk.img", source.read_bytes())
    host = sandbox.host_file(size=size)
    sandbox.out.mkdir()
    output = sandbox.out / "disk-0.qcow2"
    planted = output.with_name("disk-0.qcow2.part")
    qcow2_with_backing(planted, str(host), size=str(size))
    record = journal.ResumeRecord(journal.sidecar_path(output))
    record.start(identity=HttpRangeSource(url).describe().identity, size=size, source="x",
                 completed=[DataRange(0, size)], layout="qcow2")  # fmt: skip
    record.close()
    sandbox.take_snapshot()

    run = sandbox.migrate(url, "--stream", via=CLI)

    assert run.code == cli.EXIT_OK, run.stderr[-3000:]
    compare = subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "qcow2", str(source), str(output)])
    assert compare.returncode == 0, "the output is not the source"
    info = subprocess.run(["qemu-img", "info", "--output=json", str(output)], capture_output=True, text=True)
    assert "backing" not in info.stdout
    sandbox.assert_untouched()  # the host file is unchanged, and no output holds its bytes
