"""KVM-ready output: libvirt domain XML from the manifest, a boot check under QEMU, and a bootable sample guest."""

from .boot_check import boot_check, kvm_usable, require_boot
from .domain import (
    build_domain_xml,
    define_domain,
    domain_xml,
    validate_domain_xml,
    write_domain_xml,
)
from .models import BootCheckOptions, BootCheckResult, DomainOptions, DomainPlan, DomainResult, KvmOutput
from .output import check_boot, write_domain
from .plan import domain_name, plan_domain
from .sample_guest import SAMPLE_MARKER, make_bootable_guest
from .sample_ova import make_bootable_ova

__all__ = [
    "SAMPLE_MARKER",
    "BootCheckOptions",
    "BootCheckResult",
    "DomainOptions",
    "DomainPlan",
    "DomainResult",
    "KvmOutput",
    "boot_check",
    "build_domain_xml",
    "check_boot",
    "define_domain",
    "domain_name",
    "domain_xml",
    "kvm_usable",
    "make_bootable_guest",
    "make_bootable_ova",
    "plan_domain",
    "require_boot",
    "validate_domain_xml",
    "write_domain",
    "write_domain_xml",
]
