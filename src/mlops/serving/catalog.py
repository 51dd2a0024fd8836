"""What the model server serves: a snapshot of the registry, read through a ``Catalog``.

The process wiring provides the catalog (``mlops.deployments.catalog`` reads the
database); serving code only sees these plain, immutable records.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from mlops.deployments.schemas import DeploymentPolicy
from mlops.modelformats import Signature


@dataclass(frozen=True, slots=True)
class VersionSpec:
    model: str
    version: int
    format: str
    filename: str
    storage_key: str
    sha256: str
    signature: Signature
    details: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    aliases: Mapping[str, int]
    versions: Mapping[int, VersionSpec]  # ready versions only
    policy: DeploymentPolicy

    @property
    def primary_version(self) -> int | None:
        return self.aliases.get(self.policy.alias)


@dataclass(frozen=True, slots=True)
class CatalogSnapshot:
    models: Mapping[str, ModelSpec] = field(default_factory=dict)
    default_model: str | None = None


class Catalog(Protocol):
    async def snapshot(self) -> CatalogSnapshot:
        """The registry as it is now."""

    async def report_guard_breach(self, model: str, version: int, reason: str) -> None:
        """Take the canary out of the policy (for every process) and record why."""

    async def report_load_failure(self, model: str, version: int, reason: str) -> None:
        """Record that a version failed to load, for GET .../deployment."""
