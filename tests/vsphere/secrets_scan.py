"""Where the password could leak to, read back after a run: the command's output, every file of the output
directory, and the flow run's logs and artifacts on the Prefect server."""

from __future__ import annotations

from pathlib import Path

from support.vsphere_sim import PASSWORD


def run_texts(flow_run_id=None, output: Path | None = None, *extra: str) -> list[tuple[str, str]]:
    texts = [("output", text) for text in extra]
    if output is not None:
        texts += [(str(p), p.read_text(errors="replace")) for p in sorted(output.rglob("*"))
                  if p.is_file() and p.stat().st_size < 2**20]  # fmt: skip
    if flow_run_id is not None:
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, LogFilter, LogFilterFlowRunId
        from support.prefect_stack import client

        with client() as c:
            logs = c.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])), limit=200)
            artifacts = c.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
        assert logs, "the flow run has no logs to scan"
        texts += [("log", log.message) for log in logs] + [("artifact", repr(a.data) + str(a.description)) for a in artifacts]
    return texts


def assert_password_never_shown(texts: list[tuple[str, str]]) -> None:
    assert texts
    for where, text in texts:
        assert PASSWORD not in text, f"the password appears in {where}"
