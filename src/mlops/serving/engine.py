"""The serving engine of one process: the model manager, the data plane, and the
follower that keeps them in step with the registry.

Changes arrive on the ``registry-events`` channel (Redis pub/sub across processes,
in-process in ``mlops up``) and trigger a refresh at once; a poll every
``MLOPS_CATALOG_POLL_SECONDS`` catches anything a lost message missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry

from mlops.kv import KeyValueStore
from mlops.kv.channels import REGISTRY_EVENTS, REGISTRY_GENERATION
from mlops.serving.catalog import Catalog
from mlops.serving.dataplane import DataPlane
from mlops.serving.manager import BatchingConfig, ModelManager
from mlops.serving.metrics import ServingMetrics
from mlops.storage import ArtifactStore

log = logging.getLogger("mlops.serving")
FULL_REFRESH_EVERY = 20  # quiet polls between unconditional re-reads


class ServingEngine:
    def __init__(
        self,
        *,
        catalog: Catalog,
        store: ArtifactStore,
        kv: KeyValueStore,
        registry: CollectorRegistry,
        cache_dir: Path,
        batching: BatchingConfig,
        max_rows: int,
        poll_seconds: float,
        sees_every_change: bool = True,
        conversion_secret: str | None = None,
        conversion_previous_secrets: Sequence[str] = (),
    ) -> None:
        """``sees_every_change``: the registry generation in ``kv`` moves with every change
        (Redis, or the in-process store of ``mlops up``, where the API writes in this very
        process). When False (a model server alone without Redis), every poll re-reads.
        ``conversion_secret``: see ``ModelManager``."""
        self.metrics = ServingMetrics(registry)
        self.manager = ModelManager(
            catalog=catalog,
            store=store,
            cache_dir=cache_dir,
            metrics=self.metrics,
            batching=batching,
            conversion_secret=conversion_secret,
            conversion_previous_secrets=conversion_previous_secrets,
        )
        self.dataplane = DataPlane(
            manager=self.manager, catalog=catalog, metrics=self.metrics, max_rows=max_rows
        )
        self._kv = kv
        self._poll_seconds = poll_seconds
        self._sees_every_change = sees_every_change
        self._changed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Load what the registry says to serve, then follow its changes."""
        await self.manager.refresh()
        self._tasks = [
            asyncio.create_task(self._follow(), name="catalog-follow"),
            asyncio.create_task(self._listen(), name="catalog-listen"),
        ]

    async def _follow(self) -> None:
        seen: str | None = None
        quiet_polls = 0
        while not self._stopping.is_set():
            notified = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), self._poll_seconds)
                notified = True
            self._changed.clear()
            if self._stopping.is_set():
                return
            try:
                generation = await self._kv.get(REGISTRY_GENERATION)
            except Exception:  # cannot tell whether anything moved: re-read
                generation, notified = None, True
            try:
                # A re-read costs tens of milliseconds of event-loop time: on a quiet poll,
                # skip it unless the generation moved, and do a full one now and then.
                quiet = not notified and generation == seen and self._sees_every_change
                if quiet and quiet_polls < FULL_REFRESH_EVERY:
                    quiet_polls += 1
                    continue
                quiet_polls = 0
                await self.manager.refresh()
                seen = generation
            except Exception:
                log.exception("could not refresh the model catalog; serving what is loaded")

    async def _listen(self) -> None:
        while not self._stopping.is_set():
            try:
                async for message in self._kv.subscribe(REGISTRY_EVENTS):
                    if self._stopping.is_set():
                        return  # leaves the subscription cleanly, not mid-read
                    if message is not None:
                        self._changed.set()
            except Exception:
                log.warning("registry events unavailable; polling until they are back")
                await asyncio.sleep(1)

    async def stop(self) -> None:
        # Ask the tasks to finish rather than cancelling them: a refresh cancelled in the
        # middle of a database call can leave its connection waiting forever.
        self._stopping.set()
        self._changed.set()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=10)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=2)
        await self.dataplane.drain()
        await self.manager.close()
