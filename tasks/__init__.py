"""Prefect tasks: each wraps one engine step with retries, tags, caching, artifacts and logging."""

from .cleanup import cleanup_export
from .convert import convert_disks
from .download import download_disk
from .export import export_vm
from .kvm import check_boot, write_domain
from .manifest import detect_provider, generate_manifest
from .report import publish_report
from .validate import validate_disks

__all__ = [
    "check_boot",
    "cleanup_export",
    "convert_disks",
    "detect_provider",
    "download_disk",
    "export_vm",
    "generate_manifest",
    "publish_report",
    "validate_disks",
    "write_domain",
]
