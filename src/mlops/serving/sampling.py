"""Samples of live prediction inputs and answers, for drift monitoring.

``offer`` runs on the request path: most requests only count down to the next sampled
one (gaps drawn from a geometric distribution, so on average ``MLOPS_DRIFT_SAMPLE_RATE``
of the requests are sampled, at random, for the cost of a decrement), and a sampled
request copies a few rows into memory; each model version takes at most
``MLOPS_DRIFT_SAMPLES_PER_MINUTE`` rows a minute, whatever the traffic. A background
task writes what was gathered to the artifact store every ``flush_seconds``, as Parquet
under
``drift/samples/<model>/v<version>/<unix time in ms>-<random>.parquet`` (features in the
model's signature order, then ``prediction``), where the workers' drift reports read
them. A failed write drops its samples: monitoring never holds traffic back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mlops.serving.catalog import VersionSpec
from mlops.storage import ArtifactStore

log = logging.getLogger("mlops.serving")
SAMPLES_PREFIX = "drift/samples"
FLUSH_SECONDS = 30.0


def samples_prefix(model: str, version: int) -> str:
    return f"{SAMPLES_PREFIX}/{model}/v{version}/"


@dataclass
class _Buffer:
    columns: list[str]
    minute: int = -1
    taken: int = 0  # rows this minute
    features: list[np.ndarray] = field(default_factory=list)
    values: list[np.ndarray] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(len(part) for part in self.features)


class DriftSampler:
    def __init__(
        self,
        store: ArtifactStore,
        *,
        rate: float,
        per_minute: int,
        flush_seconds: float = FLUSH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self._store = store
        self.rate = rate
        self.per_minute = per_minute
        self._flush_seconds = flush_seconds
        self._clock = clock
        self._draw = draw
        self._buffers: dict[tuple[str, int], _Buffer] = {}
        self._countdown = self._gap() if rate > 0 else 0
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def _gap(self) -> int:
        """Requests until the next sampled one: geometric, with mean 1 / rate."""
        if self.rate >= 1:
            return 1
        return 1 + int(math.log(1.0 - self._draw()) / math.log(1.0 - self.rate))

    def offer(self, spec: VersionSpec, x: np.ndarray, values: np.ndarray) -> None:
        """Maybe keep some of a request's rows and answers (request path: no I/O)."""
        self._countdown -= 1
        if self._countdown > 0 or self.rate <= 0:
            return
        self._countdown = self._gap()
        key = (spec.model, spec.version)
        buffer = self._buffers.get(key)
        if buffer is None:
            signature = spec.signature
            names = signature.feature_names or [f"f{i}" for i in range(signature.n_features)]
            buffer = self._buffers[key] = _Buffer(list(names))
        minute = int(self._clock() // 60)
        if buffer.minute != minute:
            buffer.minute, buffer.taken = minute, 0
        room = self.per_minute - buffer.taken
        if room <= 0:
            return
        rows = x[:room]
        buffer.features.append(np.array(rows, dtype=np.float64))
        buffer.values.append(np.array(values[:room]))
        buffer.taken += len(rows)

    async def start(self) -> None:
        # pyarrow's import holds the GIL for a good part of its ~0.2-0.5 s: done at start,
        # before the process reports ready, not at the first flush with traffic flowing
        # (it showed as a single ~150 ms stall in the steady-load p99).
        await asyncio.to_thread(_import_parquet_writer)
        self._task = asyncio.create_task(self._run(), name="drift-sampler")

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._flush_seconds)
            self._wake.clear()
            await self.flush()

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
        await self.flush()

    async def flush(self) -> int:
        """Write what was gathered; how many rows were written."""
        written = 0
        for (model, version), buffer in list(self._buffers.items()):
            if not buffer.features:
                continue
            features, values = buffer.features, buffer.values
            buffer.features, buffer.values = [], []
            try:
                written += await self._write(model, version, buffer.columns, features, values)
            except Exception:
                log.warning(
                    "could not store drift samples; they are dropped",
                    extra={"model": model, "version": version},
                    exc_info=True,
                )
        return written

    async def _write(
        self,
        model: str,
        version: int,
        columns: list[str],
        features: list[np.ndarray],
        values: list[np.ndarray],
    ) -> int:
        x = np.concatenate(features)
        predictions = np.concatenate(values)
        stamp = int(time.time() * 1000)  # milliseconds: reports take the samples after theirs
        key = f"{samples_prefix(model, version)}{stamp}-{uuid.uuid4().hex[:8]}.parquet"
        with tempfile.TemporaryDirectory(prefix="mlops-samples-") as tmp:
            path = Path(tmp) / "samples.parquet"
            await asyncio.to_thread(_write_parquet, path, columns, x, predictions)
            await self._store.put_file(key, path)
        return len(x)


def _import_parquet_writer() -> None:
    import pyarrow.parquet  # noqa: F401


def _write_parquet(path: Path, columns: list[str], x: np.ndarray, predictions: np.ndarray) -> None:
    # Imported here: a model server that samples nothing never loads pyarrow.
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = [pa.array(x[:, i]) for i in range(x.shape[1])]
    arrays.append(pa.array(predictions))
    pq.write_table(pa.Table.from_arrays(arrays, names=[*columns, "prediction"]), path)
