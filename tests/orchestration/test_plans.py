"""Where a nightly plan comes from: a variable (the default), a file, a block or the parameter; clear refusals."""

from __future__ import annotations

import json

import pytest
from prefect.variables import Variable

from blocks.plan import MigrationPlan, MigrationPlanBlock
from flows.nightly_migrations import load_plan
from hyperexport.errors import InvalidInputError


def _vm(tmp_path, name: str) -> dict:
    return {"provider": "local", "source": {"source": f"/srv/{name}.ova"}, "export": {"output_dir": str(tmp_path / name)}}


def test_plan_sources_and_their_precedence(prefect_server, tmp_path):
    MigrationPlanBlock(vms=[_vm(tmp_path, "from-block")]).save("test-plan-block", overwrite=True)
    Variable.set("test-plan-text", json.dumps({"vms": [_vm(tmp_path, "from-variable")]}), overwrite=True)
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps([_vm(tmp_path, "from-file")]))  # a bare list of VMs is a plan too

    def first_vm(**sources) -> tuple[str, str]:
        where, plan = load_plan(**sources)
        return where, plan.vms[0].source["source"]

    assert first_vm(plan_variable="test-plan-text") == ("Prefect variable 'test-plan-text'", "/srv/from-variable.ova")
    # A file, block or plan given for one run wins over the deployment's default variable.
    assert first_vm(plan_variable="test-plan-text", plan_block="test-plan-block") == (
        "plan block 'test-plan-block'", "/srv/from-block.ova")
    assert first_vm(plan_variable="test-plan-text", plan_file=str(plan_file))[1] == "/srv/from-file.ova"
    inline = MigrationPlan.model_validate({"vms": [_vm(tmp_path, "inline")]})
    assert first_vm(plan_variable="test-plan-text", plan=inline) == ("the plan parameter", "/srv/inline.ova")

    with pytest.raises(InvalidInputError, match="in one of plan, plan_file or plan_block, not plan_file and plan_block"):
        load_plan(plan_file=str(plan_file), plan_block="test-plan-block")
    with pytest.raises(InvalidInputError, match="no migration plan given"):
        load_plan()
    with pytest.raises(InvalidInputError, match="plan block 'nope' does not exist"):
        load_plan(plan_block="nope")
    with pytest.raises(InvalidInputError, match=r"plan file .*missing.yaml does not exist on this worker"):
        load_plan(plan_file=str(tmp_path / "missing.yaml"))
    (tmp_path / "broken.yaml").write_text("vms: [unclosed\n")
    with pytest.raises(InvalidInputError, match="is not valid YAML or JSON"):
        load_plan(plan_file=str(tmp_path / "broken.yaml"))
