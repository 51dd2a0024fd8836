"""Model versions loaded for jobs, exactly as the model server loads them.

The same ``load_runtime`` picks onnxruntime when the conversion agrees with the
model's library (else the library itself), and the same warm-up runs, so a job's
predictions equal the model server's for the same rows.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.modelformats import ModelInfo, Runtime, Signature, load_runtime, sample_input
from mlops.storage import ArtifactStore

KEEP_LOADED = 4


@dataclass(frozen=True, slots=True)
class VersionFile:
    model: str
    version: int
    format: str
    filename: str
    storage_key: str
    sha256: str
    signature: Signature
    details: dict[str, Any]


class RuntimeCache:
    def __init__(self, store: ArtifactStore, cache_dir: Path) -> None:
        self._store = store
        self._dir = cache_dir
        self._loaded: OrderedDict[str, Runtime] = OrderedDict()
        self._lock = asyncio.Lock()

    def loaded(self, version: VersionFile) -> Runtime | None:
        """The version's runtime if it is loaded already (no wait, no load)."""
        return self._loaded.get(version.sha256)

    async def get(self, version: VersionFile) -> Runtime:
        async with self._lock:
            runtime = self._loaded.get(version.sha256)
            if runtime is not None:
                self._loaded.move_to_end(version.sha256)
                return runtime
            path = await self._fetch(version)
            runtime = await asyncio.to_thread(_load, version, path)
            self._loaded[version.sha256] = runtime
            while len(self._loaded) > KEEP_LOADED:
                self._loaded.popitem(last=False)
            return runtime

    async def _fetch(self, version: VersionFile) -> Path:
        # Content-addressed, as in the model server's cache.
        suffix = Path(version.filename).suffix or f".{version.format}"
        path = self._dir / f"{version.sha256}{suffix}"
        if not path.exists():
            self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            await self._store.get_file(version.storage_key, path)
        return path


def _load(version: VersionFile, path: Path) -> Runtime:
    info = ModelInfo.model_validate(
        {"format": version.format, "signature": version.signature, "details": version.details}
    )
    runtime = load_runtime(path, info)
    runtime.predict(sample_input(version.signature, rows=4))
    return runtime
