"""Pydantic models at every boundary of the engine."""

from .conversion import (
    ConversionResult,
    ConverterCapabilities,
    ConverterConfig,
    ConvertOptions,
    ConverterName,
    TargetFormat,
)
from .disks import DiskFormat, DiskSource, DiskType, StagedDisk, StreamedDisk
from .provider_name import PROVIDER_NAMES, ProviderName
from .export import ExportOptions, ExportResult, NicInfo, Resource, VmInfo
from .validation import CheckVerdict, DiskValidation, ValidationOptions, ValidationReport

__all__ = [
    "CheckVerdict",
    "ConversionResult",
    "ConvertOptions",
    "ConverterCapabilities",
    "ConverterConfig",
    "ConverterName",
    "DiskFormat",
    "DiskSource",
    "DiskType",
    "DiskValidation",
    "ExportOptions",
    "ExportResult",
    "NicInfo",
    "PROVIDER_NAMES",
    "ProviderName",
    "Resource",
    "StagedDisk",
    "StreamedDisk",
    "TargetFormat",
    "ValidationOptions",
    "ValidationReport",
    "VmInfo",
]
