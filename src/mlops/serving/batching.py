"""Adaptive batching: requests that arrive together share one runtime call.

One worker task per model version takes everything queued (up to
``max_batch_size`` rows), optionally waits up to ``max_batch_time`` for more,
runs the runtime once on a dedicated thread (runtimes are single-threaded, and
inference must never block the event loop), and splits the result back. Under
light load a request runs alone at once; under heavy load batches grow by
themselves, which amortises the thread hop and the runtime's per-call cost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from mlops.modelformats import Prediction, Runtime

BatchObserver = Callable[[int, float], None]  # (rows, runtime seconds)


@dataclass(slots=True)
class _Pending:
    x: np.ndarray
    future: asyncio.Future[Prediction]


class InferenceRunner:
    """Runs a runtime on its own thread, batching concurrent calls when enabled."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        batching: bool,
        max_batch_size: int,
        max_batch_time: float,
        observe: BatchObserver | None = None,
    ) -> None:
        self.runtime = runtime
        self.batching = batching
        self.max_batch_size = max_batch_size
        self.max_batch_time = max_batch_time
        self._observe = observe
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def _run(self, x: np.ndarray) -> tuple[Prediction, float]:
        start = time.perf_counter()
        prediction = self.runtime.predict(x)
        return prediction, time.perf_counter() - start

    async def predict(self, x: np.ndarray) -> Prediction:
        """Predict ``x`` (2-D, the signature's dtype); identical with or without batching."""
        if not self.batching or len(x) >= self.max_batch_size:
            async with self._lock:
                loop = asyncio.get_running_loop()
                prediction, seconds = await loop.run_in_executor(self._executor, self._run, x)
            if self._observe:
                self._observe(len(x), seconds)
            return prediction
        if self._worker is None:
            self._worker = asyncio.create_task(self._work(), name="batcher")
        future: asyncio.Future[Prediction] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(x, future))
        return await future

    async def _collect(self) -> list[_Pending]:
        batch = [await self._queue.get()]
        rows = len(batch[0].x)
        deadline = time.perf_counter() + self.max_batch_time
        while rows < self.max_batch_size:
            if self._queue.empty():
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            else:
                item = self._queue.get_nowait()
            if rows + len(item.x) > self.max_batch_size:
                # Too big to join: it leads the next batch.
                self._queue.put_nowait(item)
                break
            batch.append(item)
            rows += len(item.x)
        return batch

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            live = [p for p in batch if not p.future.done()]
            if not live:
                continue
            x = live[0].x if len(live) == 1 else np.concatenate([p.x for p in live])
            try:
                async with self._lock:
                    prediction, seconds = await loop.run_in_executor(self._executor, self._run, x)
            except Exception as exc:  # every waiter gets the runtime's error
                for pending in live:
                    if not pending.future.done():
                        pending.future.set_exception(exc)
                continue
            if self._observe:
                self._observe(len(x), seconds)
            start = 0
            for pending in live:
                end = start + len(pending.x)
                part = Prediction(
                    values=prediction.values[start:end],
                    probabilities=None
                    if prediction.probabilities is None
                    else prediction.probabilities[start:end],
                )
                if not pending.future.done():
                    pending.future.set_result(part)
                start = end

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
        while not self._queue.empty():
            pending = self._queue.get_nowait()
            if not pending.future.done():
                pending.future.set_exception(RuntimeError("model unloaded"))
        self._executor.shutdown(wait=False)
