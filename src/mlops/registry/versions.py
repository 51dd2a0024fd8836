"""Model versions: validated uploads with atomic numbering, reads, edits, archiving.

Registering a version takes three steps so that no database transaction is held
open during slow work, and a failure at any step leaves nothing behind:

1. validate the uploaded file (load it, predict on a sample, convert it to ONNX and
   compare) in a separate process under memory and time limits (``sandbox``);
2. put it in the artifact store under a key made from ids;
3. in one short transaction, take the next version number (``UPDATE ... RETURNING``
   locks the model row, so concurrent uploads never share a number), insert the
   row and its audit event, and commit. If that fails, the stored object is deleted.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import PurePath

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mlops.audit.service import record_event
from mlops.db.paging import Page, fetch_object_page
from mlops.db.session import run_post_commit
from mlops.errors import Conflict, NotFound
from mlops.kv import KeyValueStore
from mlops.modelformats import ModelInfo
from mlops.registry.events import notify_after_commit
from mlops.registry.models import ModelAlias, ModelVersion, RegisteredModel
from mlops.registry.sandbox import OwnFileInspector, UploadSandbox
from mlops.registry.schemas import Lineage, VersionMetadata, VersionRead
from mlops.registry.service import require_model
from mlops.registry.uploads import ReceivedFile
from mlops.storage import ArtifactStore

READY = "ready"
ARCHIVED = "archived"


def storage_key(model_id: int, info: ModelInfo, filename: str) -> str:
    suffix = PurePath(filename).suffix.lower().lstrip(".") or info.format
    return f"models/{model_id}/{uuid.uuid4().hex}.{suffix}"


async def register_version(
    *,
    sessions: async_sessionmaker[AsyncSession],
    store: ArtifactStore,
    kv: KeyValueStore,
    model_name: str,
    upload: ReceivedFile,
    metadata: VersionMetadata,
    actor: str,
    sandbox: UploadSandbox | OwnFileInspector,
) -> tuple[RegisteredModel, ModelVersion]:
    """Validate (in ``sandbox``), store and record a new version; the upload's temp file
    is the caller's."""
    async with sessions() as session:
        model_id = (await require_model(session=session, name=model_name)).id
    info = await sandbox.inspect(upload.path, upload.filename)
    key = storage_key(model_id, info, upload.filename)
    await store.put_file(key, upload.path)
    committed = False
    try:
        async with sessions() as session:
            number = await session.scalar(
                update(RegisteredModel)
                .where(RegisteredModel.id == model_id, RegisteredModel.archived_at.is_(None))
                .values(last_version=RegisteredModel.last_version + 1)
                .returning(RegisteredModel.last_version)
            )
            if number is None:
                raise Conflict(
                    f"model {model_name!r} was archived meanwhile", code="model_archived"
                )
            version = ModelVersion(
                model_id=model_id,
                version=number,
                status=READY,
                format=info.format,
                filename=upload.filename,
                storage_key=key,
                sha256=upload.sha256,
                size=upload.size,
                signature=info.signature.model_dump(mode="json"),
                details=info.details,
                created_by=actor,
                **metadata.model_dump(exclude={"reference_uri"}),
            )
            session.add(version)
            await session.flush()
            await record_event(
                session=session,
                actor=actor,
                action="version.created",
                target=f"model:{model_name}/v{number}",
                after={"sha256": upload.sha256, "size": upload.size, "format": info.format},
            )
            notify_after_commit(session, kv, model_name, "version")
            await session.commit()
            committed = True
            await run_post_commit(session)
            model = await session.get_one(RegisteredModel, model_id)
    except BaseException:
        if not committed:
            # The row never landed: the stored object would be an orphan.
            await store.delete(key)
        raise
    return model, version


async def require_version(
    *, session: AsyncSession, model: RegisteredModel, version: int
) -> ModelVersion:
    row = await session.scalar(
        select(ModelVersion).where(
            ModelVersion.model_id == model.id, ModelVersion.version == version
        )
    )
    if row is None:
        raise NotFound(f"model {model.name!r} has no version {version}", code="version_not_found")
    return row


async def list_versions(
    *,
    session: AsyncSession,
    model: RegisteredModel,
    include_archived: bool,
    page: Page,
) -> tuple[list[ModelVersion], int]:
    """One page of the versions, oldest first, and how many there are."""
    query = select(ModelVersion).where(ModelVersion.model_id == model.id)
    if not include_archived:
        query = query.where(ModelVersion.archived_at.is_(None))
    return await fetch_object_page(session, query.order_by(ModelVersion.version), page)


async def update_version(
    *,
    session: AsyncSession,
    actor: str,
    model: RegisteredModel,
    version: int,
    description: str | None,
    tags: dict[str, str] | None,
) -> ModelVersion:
    row = await require_version(session=session, model=model, version=version)
    before = {"description": row.description, "tags": row.tags}
    if description is not None:
        row.description = description
    if tags is not None:
        row.tags = tags
    await session.flush()
    await record_event(
        session=session,
        actor=actor,
        action="version.updated",
        target=f"model:{model.name}/v{version}",
        before=before,
        after={"description": row.description, "tags": row.tags},
    )
    return row


async def archive_version(
    *, session: AsyncSession, kv: KeyValueStore, actor: str, model: RegisteredModel, version: int
) -> ModelVersion:
    row = await require_version(session=session, model=model, version=version)
    aliases = list(
        await session.scalars(select(ModelAlias.name).where(ModelAlias.version_id == row.id))
    )
    if aliases:
        raise Conflict(
            f"version {version} of {model.name!r} is what alias(es) {', '.join(aliases)} "
            "point at; move or delete them first",
            code="version_in_use",
        )
    if row.archived_at is None:
        row.status = ARCHIVED
        row.archived_at = datetime.now(UTC)
        await session.flush()
        await record_event(
            session=session,
            actor=actor,
            action="version.archived",
            target=f"model:{model.name}/v{version}",
        )
        notify_after_commit(session, kv, model.name, "version")
    return row


async def version_read(
    *, session: AsyncSession, model: RegisteredModel, row: ModelVersion
) -> VersionRead:
    aliases = list(
        await session.scalars(
            select(ModelAlias.name).where(ModelAlias.version_id == row.id).order_by(ModelAlias.name)
        )
    )
    return VersionRead(
        model=model.name,
        version=row.version,
        status=row.status,
        format=row.format,
        filename=row.filename,
        sha256=row.sha256,
        size=row.size,
        signature=row.signature,
        runtime=row.details,
        description=row.description,
        tags=row.tags,
        metrics=row.metrics,
        params=row.params,
        lineage=Lineage(
            source_uri=row.source_uri,
            git_commit=row.git_commit,
            dataset_sha256=row.dataset_sha256,
            run_id=row.run_id,
        ),
        aliases=aliases,
        created_by=row.created_by,
        created_at=row.created_at,
        archived_at=row.archived_at,
    )
