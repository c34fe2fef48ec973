"""The README's server walk-through runs as written: its sh blocks, in order, in one fresh bash at the repository's
root, against a throwaway server (a free port instead of 4200, a temporary directory instead of demo-output)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SECTION = ("## Running migrations on a Prefect server", "### Scaling out")


def walkthrough_blocks() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split(SECTION[0], 1)[1].split(SECTION[1], 1)[0]
    return [textwrap.dedent(indent + body) for indent, body in re.findall(r"^( *)```sh\n(.*?)^\1```", section, re.M | re.S)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _script(blocks: list[str], port: int, work: Path) -> str:
    lines = ["set -eo pipefail"]
    for number, block in enumerate(blocks, 1):
        block = block.replace("4200", str(port)).replace("$PWD/demo-output", str(work)).replace("demo-output", str(work))
        lines += [f"echo '### walk-through block {number}' >&2", block]
    return "\n".join(lines) + "\n"


def _end_group(proc: subprocess.Popen, grace_s: float = 15) -> None:
    """SIGTERM the shell's process group until it is gone, SIGKILL after ``grace_s`` (dead members may linger
    as zombies of this process, the session's subreaper: they are reaped as they come)."""
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline + 5:
        proc.poll()
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-proc.pid, os.WNOHANG)[0]:
                pass
        try:
            os.killpg(proc.pid, signal.SIGTERM if time.monotonic() < deadline else signal.SIGKILL)
        except ProcessLookupError:
            return
        time.sleep(0.5)


def test_the_server_walkthrough_runs_as_written(tmp_path):
    blocks = walkthrough_blocks()
    assert len(blocks) >= 6 and "prefect server start" in blocks[0] and "kill $WORKER_PID $SERVER_PID" in blocks[-1]
    port, work = _free_port(), tmp_path / "walkthrough"
    work.mkdir()
    # A fresh shell of a new user: no server configured, a Prefect home of its own, the port of the server it starts.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_URL", "VIRTUAL_ENV"))}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_SERVER_API_PORT=str(port),
               PATH=":".join(p for p in env["PATH"].split(":") if ".venv" not in p))  # fmt: skip
    proc = subprocess.Popen(["bash", "-c", _script(blocks, port, work)], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)  # fmt: skip
    try:
        output, _ = proc.communicate(timeout=900)
    finally:
        # The server and the worker are background jobs of that shell, in its process group (gone when the
        # walk-through's last block ran).
        _end_group(proc)
        proc.wait()
    failed_at = re.findall(r"### walk-through block (\d+)", output)
    assert proc.returncode == 0, f"block {failed_at[-1] if failed_at else '?'} failed:\n{output[-4000:]}"
    assert "Flow run finished successfully in 'Completed'" in output, output[-4000:]

    report = json.loads((work / "server-run" / "migration-report.json").read_text())
    assert report["conversion"]["success"] and (work / "server-run" / "disk-0.qcow2").is_file()
    verdicts = [(d["check"], d["virtual_size"], d["compare"]) for d in report["validation"]["disks"]]
    assert verdicts == [("passed", "passed", "passed")], verdicts
