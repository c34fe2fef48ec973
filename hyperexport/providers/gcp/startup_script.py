"""The export worker's startup script, and the plan it reads from the instance's metadata.

The script is the same for every run: it reads its plan (which device goes to which object, in which
format) from the metadata key ``hyperexport-exports``, streams each read-only disk to Cloud Storage
(``qemu-img convert`` to a sparse, compressed qcow2 on the worker's own boot disk first, since qcow2 cannot be
written to a pipe; raw straight from the device), and reports through guest attributes: one
``hyperexport/crc32c-<device>`` per object as Cloud Storage computed it, then ``hyperexport/status``,
``done`` or ``failed:<exit status>``. Its progress goes to the serial console, which a failure quotes.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

PLAN_KEY = "hyperexport-exports"
NAMESPACE = "hyperexport"
STATUS_KEY = "status"
DONE = "done"


class ExportStep(BaseModel):
    """One disk of the worker: its device name and where its bytes go."""

    model_config = ConfigDict(frozen=True)

    device: str = Field(pattern=r"^[a-z][a-z0-9-]{0,61}$")
    object: str = Field(pattern=r"^gs://[a-z0-9][a-z0-9_.-]+/[A-Za-z0-9_./-]+$")
    format: Literal["qcow2", "raw"]


def crc_key(device: str) -> str:
    return f"crc32c-{device}"


def plan_json(steps: list[ExportStep]) -> str:
    return json.dumps([step.model_dump() for step in steps])


SCRIPT = r"""#!/bin/bash
# hyperexport export worker: streams the attached read-only disks to Cloud Storage, then signals.
set -o errexit -o nounset -o pipefail
MD=http://metadata.google.internal/computeMetadata/v1/instance
say() { echo "hyperexport: $*" > /dev/console; echo "hyperexport: $*"; }
signal() { curl -sSf -X PUT -H "Metadata-Flavor: Google" --data "$2" "$MD/guest-attributes/hyperexport/$1"; }
trap 'status=$?; say "failed with exit status $status"; signal status "failed:$status"' ERR
plan=$(curl -sSf -H "Metadata-Flavor: Google" "$MD/attributes/hyperexport-exports")
steps=$(python3 -c 'import json,sys
for s in json.loads(sys.argv[1]): print(s["device"], s["object"], s["format"])' "$plan")
if grep -q ' qcow2$' <<< "$steps" && ! command -v qemu-img > /dev/null; then
  say "installing qemu-utils"
  apt-get -qq update && DEBIAN_FRONTEND=noninteractive apt-get -qq install -y qemu-utils
fi
while read -r device object format; do
  source=/dev/disk/by-id/google-$device
  say "exporting $device to $object as $format"
  if [ "$format" = qcow2 ]; then
    qemu-img convert -f raw -O qcow2 -c "$source" /var/tmp/export.qcow2
    gcloud storage cp --quiet /var/tmp/export.qcow2 "$object"
    rm -f /var/tmp/export.qcow2
  else
    dd if="$source" bs=8M status=none | gcloud storage cp --quiet - "$object"
  fi
  crc=$(gcloud storage objects describe "$object" --format='value(crc32c_hash)')
  signal "crc32c-$device" "$crc"
  say "exported $device (crc32c $crc)"
done <<< "$steps"
signal status done
say "done"
"""
