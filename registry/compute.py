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

import importlib.metadata
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import CancelledError
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

from threadpoolctl import threadpool_limits

from registry.errors import ClusterLost, SchedulerUnreachable
from registry.result_types import ComputeRecord

T = TypeVar("T")
R = TypeVar("R")

# Below this many patients a run stays in process: starting workers and sending them the
# frames costs more than the work. Measured (benchmarks/results/executor_timing.md, 2 cores):
# 20 bootstrap replicates with 2 processes took 2x as long as serial at 10,000 patients and
# half as long at 100,000; starting the workers cost another 30-45 s on the loaded machine.
PROCESS_THRESHOLD = 50_000
# What a run needs per million patients, measured at 10,000,000 (benchmarks/results/latest.md):
# the parent process about 1.3 GiB (the cohort, one outcome's frames and a fit), and each
# local worker about 0.5 GiB more (its copy of the replicate inputs and its own fits); the
# constants keep a margin over both. The default number of local processes leaves room for
# the run and its workers; an explicit `workers` is obeyed (up to the cores).
PARENT_GIB_PER_MILLION = 1.4
WORKER_GIB_PER_MILLION = 0.6
CONNECT_TIMEOUT = 10.0  # seconds to reach a Dask scheduler (and for it to have a worker)


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

    def __init__(self, address: str, *, source: str = "", timeout: float | None = None) -> None:
        from distributed import Client

        self.address = address
        timeout = CONNECT_TIMEOUT if timeout is None else timeout
        where = self.where = f" (from {source})" if source else ""
        try:
            _check_scheme(address)  # a Client that fails on it blocks the exit for 2 x timeout
            self.client = Client(address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise SchedulerUnreachable(
                f"could not reach the Dask scheduler at {address}{where} within {timeout:g} s "
                f"({' '.join(str(exc).split()) or type(exc).__name__}); start the scheduler, "
                "correct the address, or unset it to run on this machine"
            ) from None
        except TypeError as exc:  # ucx:// without ucx, tls:// without a TLS configuration
            raise SchedulerUnreachable(
                f"could not connect to the Dask scheduler at {address}{where}: this install "
                f"cannot use its scheme (TypeError: {' '.join(str(exc).split())}); use a "
                "tcp:// address, or configure Dask's TLS settings or its UCX package"
            ) from None
        try:
            self.workers = _check_workers(self.client, timeout, f"{address}{where}")
        except BaseException:
            self.client.close()
            raise

    def map(self, fn: Callable[[Any, T], R], items: Sequence[T], shared: Any = None) -> list[R]:
        items = list(items)
        parts = chunks(len(items), self.workers)
        if not parts:
            return []
        from distributed import KilledWorker

        try:
            results = self._gather(fn, items, parts, shared)
        except (KilledWorker, CancelledError, OSError, TimeoutError) as exc:
            raise ClusterLost(
                f"the Dask cluster at {self.address}{self.where} failed during the run "
                f"({type(exc).__name__}: {' '.join(str(exc).split())[:300]}), so the run stopped: "
                "check its workers (memory, logs) and rerun, or unset the scheduler "
                "to run on this machine"
            ) from None
        return _in_order(parts, results, len(items))

    def _gather(
        self, fn: Callable[[Any, T], R], items: list[T], parts: list[list[int]], shared: Any
    ) -> list[list[R]]:
        # hash=False: a fresh key per call (an equal key still being released by the previous
        # call would cancel the new futures)
        handle = (
            self.client.scatter(shared, broadcast=True, hash=False) if shared is not None else None
        )
        futures = [
            self.client.submit(_run_chunk, fn, handle, [items[p] for p in part], pure=False)
            for part in parts
        ]
        return list(self.client.gather(futures))

    def close(self) -> None:
        self.client.close()


def _check_scheme(address: str) -> None:
    """TypeError, as the Client would raise it, when this install cannot connect with the
    address's scheme: ucx:// without its package, tls:// without Dask's TLS settings."""
    from distributed.comm.addressing import parse_address
    from distributed.comm.registry import get_backend
    from distributed.security import Security

    scheme = parse_address(address)[0]
    get_backend(scheme).get_connector()  # UCX's connector cannot be made without its package
    args = Security().get_connection_args("client")
    if scheme == "tls" and args.get("ssl_context") is None:
        raise TypeError("TLS expects an ssl_context; Dask's configuration sets none")


def package_version() -> str | None:
    """This registry's installed version (run on each Dask worker to compare with ours)."""
    try:
        return importlib.metadata.version("vertebral-registry")
    except importlib.metadata.PackageNotFoundError:
        return None


def _check_workers(client: Any, timeout: float, named: str) -> int:
    """The cluster's worker count, once it has one and every worker runs our version."""
    try:
        if not client.scheduler_info().get("workers"):
            client.wait_for_workers(1, timeout=timeout)
        versions = client.run(package_version)
    except (OSError, TimeoutError) as exc:
        raise SchedulerUnreachable(
            f"the Dask scheduler at {named} has no worker after {timeout:g} s ({exc}); "
            "start workers with: dask worker <address>"
        ) from None
    except Exception as exc:  # a worker that cannot import the registry fails here
        raise SchedulerUnreachable(
            f"the workers of the Dask scheduler at {named} cannot run the registry "
            f"({type(exc).__name__}: {exc}); install vertebral-registry {package_version()} "
            "in the workers' environment"
        ) from None
    wrong = sorted({str(v) for v in versions.values() if v != package_version()})
    if wrong:
        raise SchedulerUnreachable(
            f"the workers of the Dask scheduler at {named} run vertebral-registry "
            f"{', '.join(wrong)}, this run {package_version()}: install the same version on "
            "every worker (results must not depend on where they were computed)"
        )
    return max(1, len(versions))


def default_workers() -> int:
    """The machine's cores (os.process_cpu_count where Python has it)."""
    count = getattr(os, "process_cpu_count", os.cpu_count)()
    return max(1, count or 1)


def available_gib() -> float | None:
    """Memory available to new work, in GiB: the kernel's MemAvailable, or less when this
    process's cgroup (a container's limit) leaves less; None where neither can be read."""
    found = []
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) / 1024**2)
    except (OSError, ValueError, IndexError):
        pass
    try:  # cgroup v2: memory.max is "max" when unlimited
        cgroup = Path("/sys/fs/cgroup")
        limit = (cgroup / "memory.max").read_text(encoding="ascii").strip()
        used = (cgroup / "memory.current").read_text(encoding="ascii").strip()
        if limit != "max":
            found.append((int(limit) - int(used)) / 1024**3)
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def workers_that_fit(patients: int, available: float | None) -> int:
    """How many local worker processes the available memory (GiB) holds beside the parent,
    by the per-million figures above (at least 1: one means the work stays in process).
    Ten million patients on a 24 GiB machine: the parent's ~14 GiB leave room for one, so
    the replicate work runs in process (two workers there were killed for lack of memory)."""
    if available is None:
        return default_workers()
    millions = patients / 1_000_000
    spare = available - PARENT_GIB_PER_MILLION * millions
    return max(1, int(spare // max(WORKER_GIB_PER_MILLION * millions, 1e-9)))


def make_runner(
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    patients: int | None = None,
    source: str = "",
) -> Runner:
    """The runner for a run: Dask when a scheduler is named, else local processes when more
    than one worker is allowed and the cohort is large enough to gain, else serial.
    `source` names the setting the scheduler came from, for the error when it is unreachable."""
    if scheduler:
        return DaskRunner(scheduler, source=source)
    # never more local processes than cores: each holds its own copy of the shared inputs
    # (gigabytes at a million patients) and a third process on two cores gains nothing
    count = default_workers() if workers is None else min(workers, default_workers())
    if workers is None and patients is not None:  # and, by default, than the memory holds
        count = min(count, workers_that_fit(patients, available_gib()))
    if count <= 1 or (patients is not None and patients < PROCESS_THRESHOLD):
        return SerialRunner()
    return ProcessRunner(count)


@contextmanager
def open_runner(
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    patients: int | None = None,
    source: str = "",
) -> Iterator[Runner]:
    """make_runner's runner for the length of a run, its cluster connection closed after."""
    runner = make_runner(workers=workers, scheduler=scheduler, patients=patients, source=source)
    try:
        yield runner
    finally:
        close = getattr(runner, "close", None)
        if close is not None:
            close()


def describe(runner: Runner) -> ComputeRecord:
    """Where the replicate work ran, for the provenance: backend and number of workers."""
    return {"backend": runner.name, "workers": runner.workers}
