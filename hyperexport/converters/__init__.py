"""Converters behind one protocol; names mapped to classes in one place."""

from __future__ import annotations

from ..models import ConverterConfig, ConverterName
from .base import Converter, LogLine, discard
from .hyper2kvm import Hyper2KVMConverter
from .qemu_img import QemuImgConverter

__all__ = ["Converter", "Hyper2KVMConverter", "QemuImgConverter", "make_converter"]


def make_converter(name: ConverterName | str, config: ConverterConfig | None = None, log: LogLine = discard) -> Converter:
    name = ConverterName(name)
    if name is ConverterName.qemu_img:
        return QemuImgConverter(config, log=log)
    return Hyper2KVMConverter(config, log=log)
