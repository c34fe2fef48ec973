"""The PowerShell the hyperv provider runs on a Hyper-V host: fixed scripts, and their arguments as data.

No value is ever spliced into a script. Each script is sent as the same text every time; its arguments travel
as one base64-encoded JSON document that the script decodes into ``$a`` (the base64 alphabet cannot end the
quoted string it sits in), so a VM named ``x'; Remove-Item C:\\ -Recurse; '`` is a string inside ``$a.name``
and nothing else. Names are compared with ``-eq`` (never ``-Name``, which takes wildcards). Every answer is
written with ``ConvertTo-Json``; a failure is caught and written as ``{"hyperexport_error": {...}}`` with exit
code 1, never parsed from formatted text.
"""

from __future__ import annotations

import base64
import json
from typing import Any

ARGUMENTS_MARK = "__HYPEREXPORT_ARGUMENTS__"
BODY_MARK = "__HYPEREXPORT_BODY__"

PRELUDE = """$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
[Console]::OutputEncoding = [Text.Encoding]::UTF8
$a = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String('__HYPEREXPORT_ARGUMENTS__')) | ConvertFrom-Json
try {
    $r = & {
__HYPEREXPORT_BODY__
    }
    [Console]::Out.Write((ConvertTo-Json -InputObject $r -Depth 6 -Compress))
} catch {
    $e = $_
    $f = [pscustomobject]@{
        id = [string]$e.FullyQualifiedErrorId; category = [string]$e.CategoryInfo.Category
        message = [string]$e.Exception.Message; hresult = $e.Exception.HResult
    }
    [Console]::Out.Write((ConvertTo-Json -InputObject ([pscustomobject]@{ hyperexport_error = $f }) -Compress))
    exit 1
}
"""

SCRIPTS: dict[str, str] = {
    # Who the WinRM user is on the host, and whether it may manage Hyper-V (S-1-5-32-578: Hyper-V Administrators).
    "whoami": """$id = [Security.Principal.WindowsIdentity]::GetCurrent()
$p = New-Object Security.Principal.WindowsPrincipal($id)
[pscustomobject]@{
    user = $id.Name; computer = $env:COMPUTERNAME
    hyperv_admin = $p.IsInRole([Security.Principal.SecurityIdentifier]'S-1-5-32-578')
    administrator = $p.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)
}""",
    "find_vm": """if ($a.id) { $found = @(Get-VM | Where-Object { $_.Id -eq [guid]$a.id }) }
else { $found = @(Get-VM | Where-Object { $_.Name -eq $a.name }) }
[pscustomobject]@{
    matches = @($found | ForEach-Object { [pscustomobject]@{ id = $_.Id.ToString(); name = $_.Name; state = $_.State.ToString() } })
    names = @(Get-VM | Select-Object -First 20 | ForEach-Object { $_.Name })
}""",
    "describe_vm": """$vm = Get-VM -Id $a.id
$drives = @(Get-VMHardDiskDrive -VM $vm | ForEach-Object {
    $vhd = $null
    if ($_.Path) { $vhd = Get-VHD -Path $_.Path }
    [pscustomobject]@{
        controller_type = $_.ControllerType.ToString(); controller = $_.ControllerNumber
        location = $_.ControllerLocation; path = $_.Path; disk_number = $_.DiskNumber
        vhd_format = if ($vhd) { $vhd.VhdFormat.ToString() } else { $null }
        vhd_type = if ($vhd) { $vhd.VhdType.ToString() } else { $null }
        parent_path = if ($vhd) { $vhd.ParentPath } else { $null }
        size = if ($vhd) { $vhd.Size } else { $null }
        file_size = if ($vhd) { $vhd.FileSize } else { $null }
    }
})
$boot = @()
$secure = $null
if ($vm.Generation -eq 2) {
    $fw = Get-VMFirmware -VM $vm
    $secure = $fw.SecureBoot.ToString() -eq 'On'
    $boot = @($fw.BootOrder | Where-Object { $_.Device -is [Microsoft.HyperV.PowerShell.HardDiskDrive] } | ForEach-Object {
        [pscustomobject]@{ controller_type = $_.Device.ControllerType.ToString(); controller = $_.Device.ControllerNumber; location = $_.Device.ControllerLocation }
    })
}
[pscustomobject]@{
    id = $vm.Id.ToString(); name = $vm.Name; state = $vm.State.ToString(); generation = $vm.Generation
    processors = $vm.ProcessorCount; memory_bytes = $vm.MemoryStartup; secure_boot = $secure
    drives = $drives; boot_order = $boot
    nics = @(Get-VMNetworkAdapter -VM $vm | ForEach-Object { [pscustomobject]@{ name = $_.Name; mac = $_.MacAddress; switch = $_.SwitchName } })
    checkpoints = @(Get-VMSnapshot -VM $vm | ForEach-Object { $_.Name })
}""",
    # A production checkpoint only (never a standard one, which would freeze a crash-consistent state without
    # saying so); the VM's checkpoint type is put back whatever happens.
    "checkpoint": """$vm = Get-VM -Id $a.id
$previous = $vm.CheckpointType
Set-VM -VM $vm -CheckpointType ProductionOnly
try { $snap = Checkpoint-VM -VM $vm -SnapshotName $a.name -Passthru }
finally { Set-VM -VM $vm -CheckpointType $previous }
[pscustomobject]@{
    id = $snap.Id.ToString(); name = $snap.Name
    drives = @(Get-VMHardDiskDrive -VMSnapshot $snap | ForEach-Object {
        [pscustomobject]@{
            controller_type = $_.ControllerType.ToString(); controller = $_.ControllerNumber
            location = $_.ControllerLocation; path = $_.Path; file_size = (Get-VHD -Path $_.Path).FileSize
        }
    })
}""",
    "find_checkpoints": """[pscustomobject]@{
    checkpoints = @(Get-VM | Get-VMSnapshot | Where-Object { $_.Name -eq $a.name } | ForEach-Object {
        [pscustomobject]@{ vm = $_.VMId.ToString(); name = $_.Name; id = $_.Id.ToString() }
    })
}""",
    "remove_checkpoint": """$snaps = @(Get-VM | Where-Object { $_.Id -eq [guid]$a.vm } | Get-VMSnapshot | Where-Object { $_.Name -eq $a.name })
$snaps | Remove-VMCheckpoint -Confirm:$false
[pscustomobject]@{ removed = @($snaps | ForEach-Object { $_.Id.ToString() }) }""",
    "share_path": """$share = @(Get-SmbShare | Where-Object { $_.Name -eq $a.name })
if ($share.Count -ne 1) { throw [Management.Automation.ItemNotFoundException]::new("no SMB share named '$($a.name)' on this host") }
[pscustomobject]@{ name = $share[0].Name; path = $share[0].Path }""",
    "export_vm": """$vm = Get-VM -Id $a.id
[IO.Directory]::CreateDirectory([IO.Path]::GetDirectoryName($a.path)) | Out-Null
New-Item -ItemType Directory -Path $a.path -ErrorAction Stop | Out-Null
Export-VM -VM $vm -Path $a.path
[pscustomobject]@{
    files = @(Get-ChildItem -LiteralPath $a.path -Recurse -File | Where-Object { $_.Extension -in '.vhdx', '.avhdx', '.vhd' } | ForEach-Object {
        [pscustomobject]@{ path = $_.FullName; size = $_.Length }
    })
}""",
}


def encode_arguments(arguments: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(arguments, ensure_ascii=False).encode("utf-8")).decode("ascii")


def script_text(name: str, arguments: dict[str, Any]) -> str:
    """The full script for ``name``: the fixed prelude and body, the arguments as base64 JSON data."""
    return PRELUDE.replace(BODY_MARK, SCRIPTS[name]).replace(ARGUMENTS_MARK, encode_arguments(arguments))
