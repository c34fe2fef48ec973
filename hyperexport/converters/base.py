"""The contract every converter keeps (the seeds' Converter interface)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Protocol

from ..models import ConversionResult, ConverterCapabilities, ConvertOptions

LogLine = Callable[[str], None]


def discard(_: str) -> None:
    """A LogLine that drops everything: the engine never prints."""


class Converter(Protocol):
    name: str

    def convert(self, manifest_path: Path, options: ConvertOptions) -> ConversionResult:
        """Convert every disk of the manifest; never modify the disks it names. What to do (format, guest fixes,
        dry run, compression) comes from ``options`` alone: the manifest's pipeline and options sections are a
        record of them for its readers, and only its disks and output directory are read."""
        ...

    def version(self) -> str: ...

    def validate(self) -> None:
        """Raise ConverterNotFoundError when the converter cannot run here."""
        ...

    def capabilities(self) -> ConverterCapabilities: ...


def output_path(directory: Path, disk_id: str, target_format: str) -> Path:
    return directory / f"{disk_id}.{target_format}"
