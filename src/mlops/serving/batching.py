"""Adaptive batching: requests that arrive together share one runtime call.

Each model version has at most one batch with its inference thread at a time
(the model server gives each model one thread, shared by its versions).
Requests that arrive while the batch runs (or in the same turn of the event
loop) wait in a queue on the loop; when the thread hands a batch back, the
loop settles its futures and at once sends everything queued (up to
``max_batch_size`` rows) as the next batch. Under light load a request runs
alone at once; under heavy load batches grow by themselves.
``max_batch_time`` > 0 also holds a first request back that long for company.

Why a thread of our own rather than an asyncio worker task plus an executor:
the runtime must never run on the event loop, and the task-plus-executor hop
cost the loop several task steps, a lock and a ``concurrent.futures`` round
trip per batch (a fifth of the loop's time on 100-row requests, profiled). Here
the loop does one ``SimpleQueue.put`` and one callback per batch.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count

import numpy as np

from mlops.modelformats import Prediction, Runtime

BatchObserver = Callable[[int, float], None]  # (rows, runtime seconds)

_thread_ids = count()


class RunnerClosed(RuntimeError):
    """The version was unloaded while the request waited."""


@dataclass(slots=True)
class Mirrored:
    """A shadow copy's answer, handed to its sink with the rest of its batch."""

    expected: np.ndarray  # what the primary version answered
    started: float  # perf_counter() when it was queued
    prediction: Prediction | None = None  # None when the batch failed


# Called on the event loop once per batch: (the copies, the runtime's error or None).
MirrorSink = Callable[[list[Mirrored], BaseException | None], None]


@dataclass(slots=True)
class _Pending:
    x: np.ndarray
    future: asyncio.Future[Prediction] | None  # None: a shadow copy, see ``mirror``
    mirrored: Mirrored | None = None
    sink: MirrorSink | None = None
    seconds_per_row: float = 0.0  # the runtime's, over the batch this request ran in


# (one prediction per request, runtime seconds per row of the batch), or the error.
_Outcome = tuple[list[Prediction], float] | BaseException


class InferenceThread:
    """The thread that runs the batches of one or more runners, in the order sent.

    The model server gives each model one (its primary, canary and shadow versions
    share it): one thread wakes for a primary batch and a canary batch sent together,
    and fewer threads contend for the GIL, which cost a canary a fifth of the
    throughput when each version had its own (bench/serve_bench.sh).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._queue: queue.SimpleQueue[tuple[InferenceRunner, list[_Pending]] | None] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def send(self, runner: InferenceRunner, batch: list[_Pending]) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
                    self._thread.start()
        self._queue.put((runner, batch))

    def _serve(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            runner, batch = item
            runner.run_and_hand_back(batch)

    def close(self) -> None:
        """The thread ends after the batches already sent."""
        self._queue.put(None)


class InferenceRunner:
    """Runs a runtime on an inference thread (its own, or one shared with the other
    versions of its model), batching concurrent calls when enabled.

    Bound to the event loop of its first call: runners live as long as the
    model server's loop.
    """

    def __init__(
        self,
        runtime: Runtime,
        *,
        batching: bool,
        max_batch_size: int,
        max_batch_time: float,
        observe: BatchObserver | None = None,
        thread: InferenceThread | None = None,
    ) -> None:
        self.runtime = runtime
        self.batching = batching
        self.max_batch_size = max_batch_size
        self.max_batch_time = max_batch_time
        self._observe = observe
        self._waiting: deque[_Pending] = deque()
        self._waiting_rows = 0
        self._busy = False  # a batch is with the thread
        self._dispatch_scheduled: asyncio.Handle | asyncio.TimerHandle | None = None
        # Without a shared thread (tests, tools), the runner has one of its own.
        self._own_thread = thread is None
        self._thread = thread or InferenceThread(f"inference_{next(_thread_ids)}")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    async def predict(self, x: np.ndarray) -> Prediction:
        """Predict ``x`` (2-D, the signature's dtype); identical with or without batching."""
        future: asyncio.Future[Prediction] = self._bind().create_future()
        self._enqueue(_Pending(x, future))
        return await future

    async def predict_timed(self, x: np.ndarray) -> tuple[Prediction, float]:
        """``predict``, and the runtime's seconds per row over the batch ``x`` ran in:
        how fast the version is, whatever the request's size or its wait in the queue."""
        future: asyncio.Future[Prediction] = self._bind().create_future()
        pending = _Pending(x, future)
        self._enqueue(pending)
        prediction = await future
        return prediction, pending.seconds_per_row

    def mirror(self, x: np.ndarray, expected: np.ndarray, sink: MirrorSink) -> None:
        """Queue a shadow copy of ``x``: no future and no task per request; ``sink``
        gets the batch's copies at once (so a shadow costs the loop little)."""
        self._bind()
        self._enqueue(_Pending(x, None, Mirrored(expected, time.perf_counter()), sink))

    def _enqueue(self, pending: _Pending) -> None:
        if self._closed:
            raise RunnerClosed("model unloaded")
        self._waiting.append(pending)
        self._waiting_rows += len(pending.x)
        if not self._busy:
            self._schedule_dispatch()

    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError("an InferenceRunner serves one event loop")
        return loop

    def _schedule_dispatch(self) -> None:
        loop = self._loop
        assert loop is not None
        full = self._waiting_rows >= self.max_batch_size
        if self._dispatch_scheduled is not None:
            if not full or not isinstance(self._dispatch_scheduled, asyncio.TimerHandle):
                return
            self._dispatch_scheduled.cancel()  # full before its wait ended: go now
        elif self.batching and self.max_batch_time > 0 and not full:
            self._dispatch_scheduled = loop.call_later(self.max_batch_time, self._dispatch)
            return
        # call_soon, not now: requests read in this turn of the loop join the batch.
        self._dispatch_scheduled = loop.call_soon(self._dispatch)

    def _dispatch(self) -> None:
        """On the loop: send the queued requests (up to the batch size) to the thread."""
        self._dispatch_scheduled = None
        if self._busy:
            return
        batch: list[_Pending] = []
        rows = 0
        while self._waiting:
            pending = self._waiting[0]
            if batch and (not self.batching or rows + len(pending.x) > self.max_batch_size):
                break
            self._waiting.popleft()
            self._waiting_rows -= len(pending.x)
            if pending.future is not None and pending.future.done():  # the caller went away
                continue
            batch.append(pending)
            rows += len(pending.x)
        if batch:
            self._busy = True
            self._thread.send(self, batch)

    def _settle(self, batch: list[_Pending], outcome: _Outcome) -> None:
        """On the loop: answer every waiter of the batch, then send the next batch."""
        self._busy = False
        failed: BaseException | None = None
        parts: list[Prediction] | None = None
        per_row = 0.0
        if isinstance(outcome, BaseException):
            failed = outcome
        else:
            parts, per_row = outcome
        mirrored: list[_Pending] = []
        for index, pending in enumerate(batch):
            if pending.future is None:
                if parts is not None and pending.mirrored is not None:
                    pending.mirrored.prediction = parts[index]
                mirrored.append(pending)
            elif pending.future.done():
                continue
            elif failed is not None:
                pending.future.set_exception(failed)
            elif parts is not None:
                pending.seconds_per_row = per_row
                pending.future.set_result(parts[index])
        if mirrored:
            _report_mirrored(mirrored, failed)
        if self._waiting and self._dispatch_scheduled is None:
            self._dispatch()

    # --- the inference thread

    def run_and_hand_back(self, batch: list[_Pending]) -> None:
        """On the inference thread: run the batch, hand the answers to the loop."""
        outcome = self._run(batch)
        loop = self._loop
        assert loop is not None
        try:
            loop.call_soon_threadsafe(self._settle, batch, outcome)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass

    def _run(self, batch: list[_Pending]) -> _Outcome:
        x = batch[0].x if len(batch) == 1 else np.concatenate([p.x for p in batch])
        try:
            start = time.perf_counter()
            prediction = self.runtime.predict(x)
            seconds = time.perf_counter() - start
        except Exception as exc:  # every waiter of the batch gets the runtime's error
            return exc
        if self._observe is not None:
            self._observe(len(x), seconds)
        return _split(prediction, batch), seconds / max(len(x), 1)

    async def close(self) -> None:
        """Stop taking requests; queued ones fail, the batch running now still answers."""
        self._closed = True
        if self._dispatch_scheduled is not None:
            self._dispatch_scheduled.cancel()
            self._dispatch_scheduled = None
        mirrored = []
        while self._waiting:
            pending = self._waiting.popleft()
            if pending.future is None:
                mirrored.append(pending)
            elif not pending.future.done():
                pending.future.set_exception(RunnerClosed("model unloaded"))
        if mirrored:
            _report_mirrored(mirrored, RunnerClosed("model unloaded"))
        self._waiting_rows = 0
        if self._own_thread:
            self._thread.close()


def _report_mirrored(pendings: list[_Pending], error: BaseException | None) -> None:
    by_sink: dict[MirrorSink, list[Mirrored]] = {}
    for pending in pendings:
        assert pending.sink is not None and pending.mirrored is not None
        by_sink.setdefault(pending.sink, []).append(pending.mirrored)
    for sink, copies in by_sink.items():
        sink(copies, error)


def _split(prediction: Prediction, batch: list[_Pending]) -> list[Prediction]:
    if len(batch) == 1:
        return [prediction]
    parts = []
    start = 0
    for pending in batch:
        end = start + len(pending.x)
        parts.append(
            Prediction(
                values=prediction.values[start:end],
                probabilities=None
                if prediction.probabilities is None
                else prediction.probabilities[start:end],
            )
        )
        start = end
    return parts
