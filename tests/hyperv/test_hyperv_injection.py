"""A VM named ``x'; Remove-Item C:\\ -Recurse; '`` is looked up literally and nothing else runs: the fake host's
record of every script it received holds only the provider's own fixed scripts, the name inside their data."""

from __future__ import annotations

from support.hyperv_lab import HOSTILE
from support.hyperv_host import identify
from support.migrate import assert_identical

from hyperexport import migration
from hyperexport.providers.hyperv.scripts import SCRIPTS


def test_a_hostile_vm_name_is_data_and_runs_nothing(hyperv, make_request, tmp_path):
    request = make_request(tmp_path / "out", vm=HOSTILE)

    report = migration.run_migration(request, credentials=hyperv.login())

    assert report.success and report.vm_name == HOSTILE
    [output] = report.conversion.converted_files
    assert_identical(hyperv.boot_raw, "raw", output)
    assert hyperv.checkpoints() == []
    received = list(hyperv.host.received)
    names = [identify(script) for script in received]
    assert all(name in SCRIPTS for name, _ in names), [s[:200] for s, (n, _) in zip(received, names) if n is None]
    assert [n for n, _ in names] == ["whoami", "find_vm", "describe_vm", "checkpoint", "remove_checkpoint"]
    for script in received:
        assert HOSTILE not in script and "Remove-Item" not in script
    arguments = dict(names)
    assert arguments["find_vm"] == {"name": HOSTILE, "id": None}
    hostile_vm = next(vm for vm in hyperv.host.vms if vm.name == HOSTILE)
    assert arguments["checkpoint"]["id"] == hostile_vm.id


def test_a_script_that_is_not_the_providers_is_refused_by_the_fake(hyperv):
    """The fake host runs fixed scripts only: the same script with one more statement is not recognised."""
    from hyperexport.providers.hyperv.scripts import script_text

    script = script_text("find_vm", {"name": "web01", "id": None})
    assert identify(script)[0] == "find_vm"
    assert identify(script.replace("[pscustomobject]@{", "Remove-Item C:\\ -Recurse\n[pscustomobject]@{", 1))[0] is None
