"""boto3 clients for one region, and the tags that mark what a run created.

``credentials`` is an ``AwsLogin`` (credentials.py), a ``boto3.Session``
(prefect-aws's own block), or None for boto3's default chain.

Every client retries throttling and 5xx answers itself (botocore's adaptive
mode: exponential backoff plus a client-side rate limiter), so callers see
only what is left after ``max_attempts``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from ...errors import InvalidInputError
from ..session import RUN_TAG, ExportSession
from .credentials import AwsLogin, boto3_module

_CLIENT_LOCK = threading.Lock()  # boto3 sessions are not thread-safe when they build clients


@dataclass
class AwsContext:
    """A session, a region and the retry policy: everything needed to make clients."""

    session: Any
    region: str
    max_attempts: int = 10
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def client(self, service: str, *, pool: int | None = None) -> Any:
        """A client for ``service`` in this region; cached unless ``pool`` asks for its own connection pool."""
        key = f"{service}:{pool}"
        with _CLIENT_LOCK:
            if key not in self._cache:
                from botocore.config import Config

                config = Config(
                    region_name=self.region,
                    retries={"mode": "adaptive", "total_max_attempts": self.max_attempts},
                    max_pool_connections=max(10, pool or 0),
                    connect_timeout=15,
                    read_timeout=60,
                    user_agent_extra="hyperexport",
                )
                self._cache[key] = self.session.client(service, config=config)
            return self._cache[key]


def make_context(region: str, credentials: AwsLogin | Any | None, max_attempts: int = 10) -> AwsContext:
    """Clients for ``region`` from an AwsLogin, a boto3.Session (prefect-aws's block) or None (boto3's chain)."""
    boto3 = boto3_module()
    if credentials is None:
        session = boto3.Session(region_name=region)
    elif isinstance(credentials, AwsLogin):
        session = credentials.session()
    elif isinstance(credentials, boto3.Session):
        session = credentials
    else:
        raise InvalidInputError(
            f"aws credentials must be an AwsLogin (from a hyperexport AWS credentials block) or a boto3.Session, "
            f"not {type(credentials).__name__}"
        )
    return AwsContext(session=session, region=region, max_attempts=max_attempts)


def run_tags(session: ExportSession) -> list[dict[str, str]]:
    """The run's tags (see ``ExportSession.tags``), in EC2's form, plus a Name that says who made it."""
    tags = [{"Key": key, "Value": value} for key, value in session.tags().items()]
    return [*tags, {"Key": "Name", "Value": f"hyperexport {session.source or session.run_id}"}]


def tag_specifications(resource_type: str, session: ExportSession) -> list[dict[str, Any]]:
    return [{"ResourceType": resource_type, "Tags": run_tags(session)}]


def run_filter(run_id: str) -> list[dict[str, Any]]:
    """The DescribeSnapshots/DescribeImages filter that finds what run ``run_id`` created."""
    return [{"Name": f"tag:{RUN_TAG}", "Values": [run_id]}]
