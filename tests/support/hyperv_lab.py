"""The names and secrets of the hyperv tests' lab: its WinRM account, a hostile value, the host's VM folder."""

from __future__ import annotations

from support.hyperv_samba import SMB_PASSWORD

WINRM_USER = "HV01\\migrator"
WINRM_PASSWORD = "Winrm-Pa55-w0rd!"
SECRETS = (WINRM_PASSWORD, SMB_PASSWORD)
HOSTILE = "x'; Remove-Item C:\\ -Recurse; '"
VM_DIR = "C:\\Hyper-V\\Virtual Hard Disks"
