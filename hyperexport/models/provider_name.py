from __future__ import annotations

from enum import Enum


class ProviderName(str, Enum):
    """Every source hyperexport knows; also the Prefect tag of its tasks."""

    local = "local"
    vsphere = "vsphere"
    aws = "aws"
    azure = "azure"
    gcp = "gcp"
    hyperv = "hyperv"


PROVIDER_NAMES: tuple[str, ...] = tuple(p.value for p in ProviderName)
