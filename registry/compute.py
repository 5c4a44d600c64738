"""Where replicate work runs: one interface for bootstrap replicates and imputations.

A `Runner` maps a function over items, `fn(shared, item)` for each, and returns the results
in item order. `shared` (the prepared arrays, the analysis frames) is sent to each worker
once, the items (replicate or imputation numbers) are small. Three backends:

* `SerialRunner`: in this process, one item after the other;
* `ProcessRunner`: joblib's loky processes on this machine (the default for large cohorts);
* `DaskRunner`: a Dask `distributed` cluster named by its scheduler address
  (`REGISTRY_DASK_SCHEDULER` or `--scheduler`), with `shared` scattered to every worker.

Results do not depend on the backend or the number of workers: every item draws its random
numbers from its own seed (`default_rng([seed, item])`), and every backend runs the work with
one BLAS thread (threadpoolctl), so the floating-point sums happen in the same order.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from threadpoolctl import threadpool_limits

T = TypeVar("T")
R = TypeVar("R")

# Below this many patients a run stays in process: starting workers and sending them the
# frames costs more than the work (measured in benchmarks/executor_timing.py).
PROCESS_THRESHOLD = 50_000


class Runner(Protocol):
    """Maps fn(shared, item) over items, results in item order."""

    name: str  # "serial", "processes" or "dask"
    workers: int

    def map(self, fn: Callable[[Any, T], R], items: Sequence[T], shared: Any = None) -> list[R]:
        """[fn(shared, item) for item in items], wherever it runs."""
        ...


def _run_chunk(fn: Callable[[Any, T], R], shared: Any, chunk: Sequence[T]) -> list[R]:
    """A worker's share of the items, with one BLAS thread."""
    with threadpool_limits(limits=1):
        return [fn(shared, item) for item in chunk]


def chunks(count: int, workers: int) -> list[list[int]]:
    """Positions 0..count-1 dealt round-robin into at most `workers` chunks (none empty), so
    each worker receives `shared` once and replicates of similar cost spread evenly."""
    k = max(1, min(workers, count))
    return [list(range(i, count, k)) for i in range(k) if i < count]


def _in_order(parts: list[list[int]], results: list[list[R]], count: int) -> list[R]:
    out: list[Any] = [None] * count
    for positions, values in zip(parts, results, strict=True):
        for position, value in zip(positions, values, strict=True):
            out[position] = value
    return out


class SerialRunner:
    """In this process."""

    name = "serial"
    workers = 1

    def map(self, fn: Callable[[Any, T], R], items: Sequence[T], shared: Any = None) -> list[R]:
        return _run_chunk(fn, shared, list(items))


class ProcessRunner:
    """joblib's loky processes on this machine (reused between calls)."""

    name = "processes"

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)

    def map(self, fn: Callable[[Any, T], R], items: Sequence[T], shared: Any = None) -> list[R]:
        from joblib import Parallel, delayed

        items = list(items)
        parts = chunks(len(items), self.workers)
        if len(parts) <= 1:
            return _run_chunk(fn, shared, items)
        work = Parallel(n_jobs=len(parts), backend="loky", inner_max_num_threads=1)
        results = work(delayed(_run_chunk)(fn, shared, [items[p] for p in part]) for part in parts)
        return _in_order(parts, list(results), len(items))


class DaskRunner:
    """A Dask `distributed` cluster: `shared` scattered to every worker once."""

    name = "dask"

    def __init__(self, address: str) -> None:
        from distributed import Client

        self.address = address
        self.client = Client(address, set_as_default=False)
        self.workers = max(1, len(self.client.scheduler_info().get("workers", {})))

    def map(self, fn: Callable[[Any, T], R], items: Sequence[T], shared: Any = None) -> list[R]:
        items = list(items)
        parts = chunks(len(items), self.workers)
        if not parts:
            return []
        handle = self.client.scatter(shared, broadcast=True) if shared is not None else None
        futures = [
            self.client.submit(_run_chunk, fn, handle, [items[p] for p in part], pure=False)
            for part in parts
        ]
        results = self.client.gather(futures)
        return _in_order(parts, results, len(items))

    def close(self) -> None:
        self.client.close()


def default_workers() -> int:
    """The machine's cores (os.process_cpu_count where Python has it)."""
    count = getattr(os, "process_cpu_count", os.cpu_count)()
    return max(1, count or 1)


def make_runner(
    *, workers: int | None = None, scheduler: str | None = None, patients: int | None = None
) -> Runner:
    """The runner for a run: Dask when a scheduler is named, else local processes when more
    than one worker is allowed and the cohort is large enough to gain, else serial."""
    if scheduler:
        return DaskRunner(scheduler)
    count = default_workers() if workers is None else workers
    if count <= 1 or (patients is not None and patients < PROCESS_THRESHOLD):
        return SerialRunner()
    return ProcessRunner(count)
