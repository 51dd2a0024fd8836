"""The demo model: a 5-feature classifier named ``demo``, released as ``production``
and made the default model, so the guide's ``{"data": [[1,2,3,4,5]]}`` request works
out of the box. It is trained at registration from a fixed-seed synthetic data set;
no model file is shipped."""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from pathlib import Path

from mlops.context import PlatformContext
from mlops.db.session import transaction
from mlops.modelformats import build_demo_model
from mlops.registry import aliases, defaults, service, versions
from mlops.registry.sandbox import OwnFileInspector
from mlops.registry.schemas import VersionMetadata
from mlops.registry.uploads import ReceivedFile

DEMO_MODEL = "demo"
ACTOR = "system"


def _received(path: Path) -> ReceivedFile:
    data = path.read_bytes()
    return ReceivedFile(path, path.name, len(data), hashlib.sha256(data).hexdigest())


async def register_demo_model(ctx: PlatformContext) -> bool:
    """Register ``demo`` unless a model of that name exists. True when it was registered."""
    async with transaction(ctx.sessions) as session:
        if await service.find_model(session=session, name=DEMO_MODEL, include_archived=True):
            return False
        await service.create_model(
            session=session,
            actor=ACTOR,
            name=DEMO_MODEL,
            description="Demo: logistic regression on 5 synthetic features (f0..f4).",
            tags={"demo": "true"},
        )
    ctx.settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tempfile.TemporaryDirectory(dir=ctx.settings.data_dir) as tmp:
        path = await asyncio.to_thread(build_demo_model, Path(tmp))
        model, version = await versions.register_version(
            sessions=ctx.sessions,
            store=ctx.store,
            kv=ctx.kv,
            model_name=DEMO_MODEL,
            upload=_received(path),
            metadata=VersionMetadata(
                description="Trained at start-up from make_classification(random_state=42).",
                params={"random_state": 42},
            ),
            actor=ACTOR,
            # Built above by the platform itself: nothing to sandbox.
            sandbox=OwnFileInspector(),
        )
    async with transaction(ctx.sessions) as session:
        await aliases.set_alias(
            session=session,
            kv=ctx.kv,
            actor=ACTOR,
            model=model,
            alias="production",
            version=version.version,
        )
        name, _ = await defaults.get_default_model(session=session, settings=ctx.settings)
        if name is None:
            await defaults.set_default_model(
                session=session, kv=ctx.kv, actor=ACTOR, name=DEMO_MODEL
            )
    return True
