"""Adaptive batching: merged runtime calls give exactly the unbatched answers."""

from __future__ import annotations

import asyncio
import threading

import numpy as np

from mlops.modelformats import Prediction, Runtime, Signature
from mlops.serving.batching import InferenceRunner, InferenceThread

SIGNATURE = Signature(
    n_features=3,
    feature_names=None,
    input_dtype="float64",
    output_kind="regression",
    classes=None,
    has_probabilities=False,
)


class CountingRuntime(Runtime):
    """A small test runtime: a fixed linear model that counts its calls."""

    name = "counting"
    signature = SIGNATURE

    def __init__(self) -> None:
        self.calls: list[int] = []

    def _predict(self, x: np.ndarray) -> Prediction:
        self.calls.append(len(x))
        return Prediction(values=x @ np.array([1.0, -2.0, 0.5]), probabilities=None)


async def test_batched_equals_unbatched_and_merges_calls() -> None:
    rng = np.random.default_rng(3)
    inputs = [rng.normal(size=(int(rng.integers(1, 5)), 3)) for _ in range(200)]
    batched_runtime = CountingRuntime()
    batched = InferenceRunner(
        batched_runtime, batching=True, max_batch_size=64, max_batch_time=0.002
    )
    plain = InferenceRunner(CountingRuntime(), batching=False, max_batch_size=64, max_batch_time=0)
    together = await asyncio.gather(*(batched.predict(x) for x in inputs))
    alone = [await plain.predict(x) for x in inputs]
    for a, b in zip(together, alone, strict=True):
        assert np.array_equal(a.values, b.values)
    assert len(batched_runtime.calls) < len(inputs) / 4
    assert max(batched_runtime.calls) <= 64
    assert sum(batched_runtime.calls) == sum(len(x) for x in inputs)
    await batched.close()
    await plain.close()


async def test_a_runtime_error_reaches_every_waiter_of_the_batch() -> None:
    class Failing(CountingRuntime):
        def _predict(self, x: np.ndarray) -> Prediction:
            raise ValueError("boom")

    runner = InferenceRunner(Failing(), batching=True, max_batch_size=64, max_batch_time=0.002)
    results = await asyncio.gather(
        *(runner.predict(np.ones((1, 3))) for _ in range(10)), return_exceptions=True
    )
    assert all(isinstance(r, ValueError) for r in results)
    # The runner keeps working after a failed batch.
    runner.runtime = CountingRuntime()
    assert (await runner.predict(np.ones((2, 3)))).values.tolist() == [-0.5, -0.5]
    await runner.close()


async def test_versions_sharing_a_thread_each_get_their_own_answers() -> None:
    class NamedRuntime(CountingRuntime):
        def __init__(self, weight: float) -> None:
            super().__init__()
            self.weight = weight
            self.threads: set[str] = set()

        def _predict(self, x: np.ndarray) -> Prediction:
            self.threads.add(threading.current_thread().name)
            return Prediction(values=x.sum(axis=1) * self.weight, probabilities=None)

    shared = InferenceThread("inference_shared-test")
    first, second = NamedRuntime(1.0), NamedRuntime(-1.0)
    runners = [
        InferenceRunner(r, batching=True, max_batch_size=64, max_batch_time=0, thread=shared)
        for r in (first, second)
    ]
    x = np.arange(6, dtype=np.float64).reshape(2, 3)
    answers = await asyncio.gather(*(runners[i % 2].predict(x) for i in range(40)))
    for i, answer in enumerate(answers):
        assert answer.values.tolist() == ([3.0, 12.0] if i % 2 == 0 else [-3.0, -12.0])
    assert first.threads == second.threads == {"inference_shared-test"}
    for runner in runners:
        await runner.close()
    shared.close()
