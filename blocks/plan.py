"""A nightly migration plan: the VMs to migrate, each with its provider, credentials block and options.

The nightly-migrations flow reads a plan from a YAML/JSON file, a Prefect
variable (JSON) or a ``MigrationPlanBlock`` (edited in the UI as a form):

    vms:
      - provider: aws
        credentials_block: aws-prod
        source: {instance: i-0123456789abcdef0, region: eu-west-1}
        export: {output_dir: /srv/kvm/web-01}
      - provider: local
        source: {source: /srv/exports/db.ova}
        export: {output_dir: /srv/kvm/db}
        convert_options: {compression_level: 1}

Each entry is a whole ``MigrationRequest`` (the migrate-vm flow's parameter).
"""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import BaseModel, ConfigDict, Field

from .request_form import RequestForm


class MigrationPlan(BaseModel):
    """The VMs one nightly run migrates; each becomes one migrate-vm flow run."""

    model_config = ConfigDict(extra="forbid", title="Migration plan")

    vms: list[RequestForm] = Field(  # type: ignore[valid-type]
        default_factory=list, title="VMs", description="One entry per VM: provider, source, export options, credentials block."
    )


class MigrationPlanBlock(Block):
    """A migration plan kept on the server and edited in the UI (Blocks → Hyperexport Migration Plan)."""

    model_config = ConfigDict(title="Hyperexport Migration Plan")  # the schema's title, not the class name

    _block_type_name = "Hyperexport Migration Plan"
    _description = "The VMs that the nightly-migrations deployment migrates, one migrate-vm run each."

    vms: list[RequestForm] = Field(  # type: ignore[valid-type]
        default_factory=list, title="VMs", description="One entry per VM: provider, source, export options, credentials block."
    )

    def plan(self) -> MigrationPlan:
        return MigrationPlan(vms=list(self.vms))
