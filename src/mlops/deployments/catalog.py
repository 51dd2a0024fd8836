"""The database-backed ``Catalog`` that model servers read (see ``mlops.serving``)."""

from __future__ import annotations

import logging
from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mlops.config import Settings
from mlops.db.session import transaction
from mlops.deployments import service
from mlops.deployments.models import Deployment
from mlops.deployments.schemas import DeploymentPolicy
from mlops.kv import KeyValueStore
from mlops.modelformats import Signature
from mlops.registry.defaults import get_default_model
from mlops.registry.models import ModelAlias, ModelVersion, RegisteredModel
from mlops.registry.service import find_model
from mlops.registry.versions import READY
from mlops.serving.catalog import CatalogSnapshot, ModelSpec, VersionSpec

log = logging.getLogger("mlops.catalog")


class DatabaseCatalog:
    def __init__(
        self, *, sessions: async_sessionmaker[AsyncSession], kv: KeyValueStore, settings: Settings
    ) -> None:
        self._sessions = sessions
        self._kv = kv
        self._settings = settings

    async def snapshot(self) -> CatalogSnapshot:
        async with self._sessions() as session:
            models = list(
                await session.scalars(
                    select(RegisteredModel).where(RegisteredModel.archived_at.is_(None))
                )
            )
            versions = await session.scalars(
                select(ModelVersion).where(ModelVersion.status == READY)
            )
            by_model: dict[int, dict[int, VersionSpec]] = defaultdict(dict)
            names = {m.id: m.name for m in models}
            for row in versions:
                if row.model_id in names:
                    by_model[row.model_id][row.version] = _spec(names[row.model_id], row)
            aliases: dict[int, dict[str, int]] = defaultdict(dict)
            alias_rows = await session.execute(
                select(ModelAlias.model_id, ModelAlias.name, ModelVersion.version).join(
                    ModelVersion, ModelVersion.id == ModelAlias.version_id
                )
            )
            for model_id, alias, version in alias_rows:
                aliases[model_id][alias] = version
            policies = {
                d.model_id: DeploymentPolicy.model_validate(d.policy)
                for d in await session.scalars(select(Deployment))
            }
            default, _ = await get_default_model(session=session, settings=self._settings)
        return CatalogSnapshot(
            models={
                m.name: ModelSpec(
                    name=m.name,
                    aliases=aliases[m.id],
                    versions=by_model[m.id],
                    policy=policies.get(m.id, DeploymentPolicy()),
                )
                for m in models
            },
            default_model=default,
        )

    async def report_guard_breach(self, model: str, version: int, reason: str) -> None:
        async with transaction(self._sessions) as session:
            row = await find_model(session=session, name=model)
            if row is None:
                return
            done = await service.record_canary_rollback(
                session=session, kv=self._kv, model=row, version=version, reason=reason
            )
        if done:
            log.warning(
                "canary taken out of traffic by its guard",
                extra={"model": model, "version": version, "reason": reason},
            )

    async def report_load_failure(self, model: str, version: int, reason: str) -> None:
        async with transaction(self._sessions) as session:
            row = await find_model(session=session, name=model)
            if row is not None:
                await service.record_load_failure(
                    session=session, model=row, version=version, reason=reason
                )


def _spec(model: str, row: ModelVersion) -> VersionSpec:
    return VersionSpec(
        model=model,
        version=row.version,
        format=row.format,
        filename=row.filename,
        storage_key=row.storage_key,
        sha256=row.sha256,
        signature=Signature.model_validate(row.signature),
        details=row.details,
    )
