"""The export worker's startup script is valid bash, and its plan refuses names that would reach elsewhere."""

from __future__ import annotations

import subprocess

import pytest
from pydantic import ValidationError

from hyperexport.providers.gcp.startup_script import SCRIPT, ExportStep, plan_json


def test_the_script_is_valid_bash_and_reads_its_plan(tmp_path):
    script = tmp_path / "startup.sh"
    script.write_text(SCRIPT)
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True, timeout=30).returncode == 0
    plan = plan_json([ExportStep(device="export-0", object="gs://b-1/hyperexport/r/web01.qcow2", format="qcow2")])
    # The script's own plan reader, run as the worker runs it.
    reader = SCRIPT.split("steps=$(python3 -c '", 1)[1].split("' \"$plan\")", 1)[0]
    done = subprocess.run(["python3", "-c", reader, plan], capture_output=True, text=True, timeout=30, check=True)
    assert done.stdout == "export-0 gs://b-1/hyperexport/r/web01.qcow2 qcow2\n"


@pytest.mark.parametrize(
    "step",
    [
        {"device": "../sda", "object": "gs://b-1/x.qcow2", "format": "qcow2"},
        {"device": "export-0", "object": "gs://b-1/x y;rm -rf /", "format": "qcow2"},
        {"device": "export-0", "object": "file:///etc/passwd", "format": "raw"},
        {"device": "export-0", "object": "gs://b-1/x.vmdk", "format": "vmdk"},
    ],
)
def test_hostile_plan_steps_are_refused(step):
    with pytest.raises(ValidationError):
        ExportStep(**step)
