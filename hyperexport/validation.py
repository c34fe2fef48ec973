"""Our own verdict on a converted disk; the converter's own validation is never trusted."""

from __future__ import annotations

from pathlib import Path

from . import qemu
from .errors import ValidationError
from .overlap import same_file
from .models import CheckVerdict, DiskValidation, StagedDisk, ValidationOptions, ValidationReport


def validate_disk(
    source: StagedDisk, output: Path, output_format: str, *, guest_modified: bool, options: ValidationOptions
) -> DiskValidation:
    itself = same_file(source.path, output)
    streamed = itself and source.streamed is not None
    if itself and not streamed:
        raise ValidationError(f"{source.id}: output {output} is the source file itself; refusing to compare it with itself")
    out_info = qemu.info(output, output_format)
    if options.check:
        checked = qemu.check(output, output_format)
        check = CheckVerdict.passed if checked.clean else CheckVerdict.failed
        check_evidence = checked.evidence
    else:
        check, check_evidence = CheckVerdict.skipped, "disabled by options"
    size_ok = out_info.virtual_size == source.virtual_size_bytes
    proof = "qemu-img compare"
    if streamed:
        compare, compare_evidence, proof = *_stream_verdict(source), "stream digests"
    elif guest_modified:
        compare, compare_evidence, proof = CheckVerdict.skipped, "guest fixes changed the disk on purpose", "none"
    elif not options.compare:
        compare, compare_evidence, proof = CheckVerdict.skipped, "disabled by options", "none"
    else:
        compared = qemu.compare(source.path, source.format.qemu_format, output, output_format)
        compare = CheckVerdict.passed if compared.identical else CheckVerdict.failed
        compare_evidence = compared.evidence
    return DiskValidation(
        disk_id=source.id,
        source=source.path,
        output=output,
        check=check,
        check_evidence=check_evidence,
        virtual_size=CheckVerdict.passed if size_ok else CheckVerdict.failed,
        source_virtual_size=source.virtual_size_bytes,
        output_virtual_size=out_info.virtual_size,
        compare=compare,
        compare_evidence=compare_evidence,
        proof=proof,
    )


def _stream_verdict(disk: StagedDisk) -> tuple[CheckVerdict, str]:
    """A streamed disk was read back from its output once, range by range, against the digests its bytes
    arrived with; the download fails on the first range that differs, so a staged streamed disk has passed."""
    proof = disk.streamed
    assert proof is not None
    evidence = (
        f"{proof.ranges_checked} ranges matched the xxh3-128 digests of the bytes as they arrived: "
        f"{proof.bytes_checked} bytes read back from the {proof.layout} output, {proof.bytes_zero} bytes that "
        f"arrived as zeros left as holes; {proof.bytes_sparse} bytes declared empty by the source"
    )
    if proof.source_checksums:
        evidence += f"; the source's own checksums matched: {', '.join(proof.source_checksums)}"
    if proof.bytes_unchecked:
        return CheckVerdict.skipped, evidence + f"; {proof.bytes_unchecked} bytes kept from an earlier run had no digest"
    return CheckVerdict.passed, evidence


def validate_conversion(
    sources: list[StagedDisk], outputs: list[Path], output_format: str, *, guest_modified: bool, options: ValidationOptions
) -> ValidationReport:
    return ValidationReport(
        disks=[
            validate_disk(source, output, output_format, guest_modified=guest_modified, options=options)
            for source, output in zip(sources, outputs, strict=True)
        ]
    )
