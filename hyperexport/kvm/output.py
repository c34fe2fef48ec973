"""The KVM-ready steps of a migration: the domain XML beside the converted disks, and the boot check."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import ConverterNotFoundError
from ..manifest import load_manifest
from .boot_check import boot_check, require_boot
from .domain import define_domain, domain_xml, validate_domain_xml, write_domain_xml
from .models import BootCheckResult, DomainResult, KvmOutput
from .plan import plan_domain


def write_domain(manifest_path: Path, outputs: Sequence[Path], kvm: KvmOutput, output_dir: Path) -> DomainResult:
    """``<name>.xml`` in ``output_dir``, validated against libvirt's schema (and defined, with ``define_uri``)."""
    manifest = load_manifest(manifest_path)
    plan = plan_domain(manifest, outputs, kvm.domain_options)
    xml_path = write_domain_xml(domain_xml(plan), output_dir / f"{plan.name}.xml")
    try:
        verdict = validate_domain_xml(xml_path)
    except ConverterNotFoundError as error:  # the XML is still written; the check needs Debian's libvirt-clients
        verdict = f"not validated: {error}"
    defined = None
    if kvm.define_uri:
        define_domain(xml_path, kvm.define_uri)
        defined = kvm.define_uri
    return DomainResult(name=plan.name, xml_path=xml_path, validation=verdict, defined_on=defined, warnings=plan.warnings)


def check_boot(manifest_path: Path, outputs: Sequence[Path], kvm: KvmOutput, output_dir: Path) -> BootCheckResult:
    """Boot the converted disks with the domain's devices; a guest that does not reach the marker is a
    ValidationError with the console's last lines."""
    result = boot_check(outputs, load_manifest(manifest_path), kvm.boot_check_options, domain=kvm.domain_options,
                        work_dir=output_dir)
    return require_boot(result)
