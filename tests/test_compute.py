"""registry/compute.py: the Runner of replicate work (serial, local processes, a real Dask
LocalCluster) gives the same results, in item order, whatever the backend and worker count;
an unreachable scheduler is one clear error."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import pickle
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from registry import compute
from registry.analysis.imputation import impute
from registry.analysis.target_trial.estimate import emulate
from registry.analysis.target_trial.protocol import Protocol
from registry.cli import main
from registry.compute import (
    DaskRunner,
    ProcessRunner,
    Runner,
    SerialRunner,
    chunks,
    describe,
    make_runner,
    open_runner,
)
from registry.config import Scheduler, Settings
from registry.errors import ClusterLost, ConfigError, SchedulerUnreachable
from registry.missing_data import MissingData
from registry.pipeline import (
    Analysis,
    analyse,
    build_analysis,
    ingest_into,
    init_registry,
    synthesise,
)
from registry.study import COVARIATES
from tests.test_imputation_engine import aux_frame, cohort_frame
from tests.test_target_trial_imputed import with_missing

AS_OF = dt.date(2026, 1, 1)
UNREACHABLE = "tcp://127.0.0.1:9"  # the discard port: nothing listens there


def square_plus(shared: int, item: int) -> tuple[int, int]:
    """A module-level (picklable) fn(shared, item) that says which item it saw."""
    return item, item * item + shared


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A real Dask cluster: a scheduler and two single-threaded worker processes."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as local:  # fmt: skip
        yield local.scheduler_address


@pytest.fixture(scope="module")
def runners(cluster: str) -> Iterator[dict[str, Runner]]:
    dask = DaskRunner(cluster)
    yield {"serial": SerialRunner(), "processes": ProcessRunner(2), "dask": dask}
    dask.close()


# -- chunks ---------------------------------------------------------------------------------


@given(st.integers(0, 300), st.integers(1, 16))
def test_chunks_deal_every_position_once_into_at_most_workers_even_chunks(
    count: int, workers: int
) -> None:
    parts = chunks(count, workers)
    assert sorted(p for part in parts for p in part) == list(range(count))
    assert len(parts) == min(count, workers)
    assert all(part for part in parts)  # none empty: each worker that gets shared has work
    sizes = [len(part) for part in parts]
    assert not sizes or max(sizes) - min(sizes) <= 1


def test_chunks_are_round_robin() -> None:
    assert chunks(7, 3) == [[0, 3, 6], [1, 4], [2, 5]]
    assert chunks(0, 4) == [] and chunks(3, 1) == [[0, 1, 2]]


# -- local runners --------------------------------------------------------------------------


@pytest.mark.parametrize("runner", [SerialRunner(), ProcessRunner(1), ProcessRunner(2)])
def test_local_runners_keep_item_order_and_handle_empty_and_single_items(runner: Runner) -> None:
    items = [5, 3, 9, 0, 7, 1, 2]
    assert runner.map(square_plus, items, 10) == [(i, i * i + 10) for i in items]
    assert runner.map(square_plus, [], 10) == []
    assert runner.map(square_plus, [4], 1) == [(4, 17)]


def test_runners_run_with_one_blas_thread() -> None:
    for runner in (SerialRunner(), ProcessRunner(2)):
        assert set(runner.map(blas_threads, [0, 1, 2, 3])) == {1}


def blas_threads(shared: Any, item: int) -> int:
    from threadpoolctl import threadpool_info

    return max((pool["num_threads"] for pool in threadpool_info()), default=1)


def test_make_runner_picks_serial_for_one_worker_or_a_small_cohort(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(compute, "default_workers", lambda: 2)  # a two-core machine
    assert make_runner(workers=1, patients=10**6).name == "serial"
    assert make_runner(workers=2, patients=compute.PROCESS_THRESHOLD - 1).name == "serial"
    chosen = make_runner(workers=2, patients=compute.PROCESS_THRESHOLD)
    assert (chosen.name, chosen.workers) == ("processes", 2)
    assert make_runner(workers=None, patients=None).workers == compute.default_workers()
    assert describe(ProcessRunner(3)) == {"backend": "processes", "workers": 3}


def test_default_workers_leave_room_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    # ten million patients on a 24 GiB machine: two workers beside the parent were killed
    # for lack of memory; by default the work then stays in process
    monkeypatch.setattr(compute, "default_workers", lambda: 2)
    monkeypatch.setattr(compute, "available_gib", lambda: 22.0)
    assert make_runner(patients=10_000_000).name == "serial"
    assert make_runner(patients=1_000_000).workers == 2
    assert make_runner(workers=2, patients=10_000_000).workers == 2  # asked for: obeyed
    monkeypatch.setattr(compute, "available_gib", lambda: None)  # unknown: the cores decide
    assert make_runner(patients=10_000_000).workers == 2


@given(
    patients=st.integers(min_value=0, max_value=10**9),
    available=st.one_of(st.none(), st.floats(min_value=0, max_value=10**5)),
)
def test_workers_that_fit_is_at_least_one_and_fits(patients: int, available: float | None) -> None:
    count = compute.workers_that_fit(patients, available)
    assert count >= 1
    if available is not None and count > 1:
        millions = patients / 1_000_000
        need = (compute.PARENT_GIB_PER_MILLION + count * compute.WORKER_GIB_PER_MILLION) * millions
        assert need <= available + 1e-9


def test_make_runner_starts_no_more_local_processes_than_cores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # each process holds its own copy of the shared inputs: 64 on two cores would be 64 copies
    monkeypatch.setattr(compute, "default_workers", lambda: 2)
    chosen = make_runner(workers=64, patients=10**6)
    assert (chosen.name, chosen.workers) == ("processes", 2)
    monkeypatch.setattr(compute, "default_workers", lambda: 1)
    assert make_runner(workers=64, patients=10**6).name == "serial"


# -- Dask -----------------------------------------------------------------------------------


def test_dask_runner_counts_the_cluster_workers_and_keeps_order(runners: dict[str, Runner]) -> None:
    dask = runners["dask"]
    assert (dask.name, dask.workers) == ("dask", 2)
    items = list(range(11))[::-1]
    assert dask.map(square_plus, items, 3) == [(i, i * i + 3) for i in items]
    assert dask.map(square_plus, [], 3) == []
    assert dask.map(square_plus, [2], 0) == [(2, 4)]
    assert set(dask.map(blas_threads, [0, 1, 2])) == {1}


def test_an_unreachable_scheduler_is_one_error_naming_address_and_setting() -> None:
    started = time.monotonic()
    with pytest.raises(SchedulerUnreachable) as caught:
        make_runner(scheduler=UNREACHABLE, source="environment variable X", workers=2)
    assert time.monotonic() - started < 30  # a timeout, never a hang
    message = str(caught.value)
    assert UNREACHABLE in message and "(from environment variable X)" in message
    assert "could not reach the Dask scheduler" in message and "within 10 s" in message


@pytest.mark.parametrize("address", ["ucx://127.0.0.1:8786", "tls://127.0.0.1:8786"])
def test_a_scheduler_scheme_this_install_cannot_use_is_one_error_not_a_traceback(
    address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the settings accept ucx:// and tls://; without ucx installed or a TLS configuration,
    # distributed raises TypeError, which the CLI's funnel does not catch, and the failed
    # Client's __del__ then blocks the exit for 20 s and prints a traceback: no Client
    import distributed

    def no_client(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a Client was started for an address it cannot use")

    monkeypatch.setattr(distributed, "Client", no_client)
    with pytest.raises(SchedulerUnreachable) as caught:
        DaskRunner(address, source="option --scheduler", timeout=1)
    message = str(caught.value)
    assert address in message and "(from option --scheduler)" in message
    assert "TypeError" in message


def exit_worker(shared: int, item: int) -> int:
    """fn(shared, item) that kills the worker process running it."""
    os._exit(1)


def test_a_cluster_that_loses_its_workers_mid_run_is_one_error_not_a_traceback() -> None:
    import dask
    from distributed import LocalCluster

    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
        ) as local,
    ):
        runner = DaskRunner(local.scheduler_address, source="option --scheduler")
        try:
            with pytest.raises(ClusterLost) as caught:
                runner.map(exit_worker, [1, 2], 3)
        finally:
            runner.close()
    message = str(caught.value)
    assert local.scheduler_address in message and "(from option --scheduler)" in message
    assert "KilledWorker" in message and "so the run stopped" in message


def test_open_runner_closes_its_cluster_connection(cluster: str) -> None:
    with open_runner(scheduler=cluster) as runner:
        assert isinstance(runner, DaskRunner) and runner.client.status == "running"
    assert runner.client.status == "closed"


# -- identical results whatever the backend -------------------------------------------------


def test_imputations_are_identical_on_every_backend(runners: dict[str, Runner]) -> None:
    patients = cohort_frame(150, 3, {"bmd_t_score": 0.3, "sex": 0.1, "age": 0.05})
    aux = aux_frame(patients, 3)
    spec = MissingData(imputations=5, iterations=3, seed=4)
    done = {name: impute(patients, aux, COVARIATES, spec, runner=r) for name, r in runners.items()}
    serial = done.pop("serial")
    assert len(serial.completed) == 5 and not serial.completed[0].equals(serial.completed[1])
    for other in done.values():
        assert all(a.equals(b) for a, b in zip(serial.completed, other.completed, strict=True))
        assert serial.chains.equals(other.chains)


def test_target_trial_bootstrap_intervals_are_identical_on_every_backend(
    runners: dict[str, Runner],
) -> None:
    frame, scores, completed = with_missing()
    protocol = Protocol(years=(1, 2), replicates=24, seed=5, margin_year=2)
    for imputed in ((), completed):
        blocks = {
            name: emulate(frame, scores, protocol, outcome="adjacent", runner=r, imputed=imputed)
            for name, r in runners.items()
        }
        serial = blocks.pop("serial")
        assert serial["bootstrap"]["succeeded"] == 24
        assert serial["risk_difference"]["2"]["ci_lower"] is not None  # intervals exist
        for block in blocks.values():
            assert json.dumps(block) == json.dumps(serial)  # ==, to the last bit


class Recording:
    """A serial runner that keeps what each map would send to a worker, pickled."""

    name = "recording"
    workers = 1

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def map(self, fn: Any, items: Any, shared: Any = None) -> list[Any]:
        self.sent.append(pickle.dumps((fn, list(items), shared)))
        return SerialRunner().map(fn, items, shared)


def test_no_patient_id_is_sent_to_the_workers() -> None:
    # a Dask cluster is another machine: the bootstrap, imputation and pooling payloads
    # carry arrays by position, never the registry's patient ids (pseudonyms, but ids)
    frame, scores, completed = with_missing()
    ids = [p.encode() for p in frame.get_column("patient_id").to_list()]
    recording = Recording()
    protocol = Protocol(years=(1, 2), replicates=3, seed=5, margin_year=2)
    for imputed in ((), completed):
        emulate(frame, scores, protocol, outcome="adjacent", runner=recording, imputed=imputed)
    patients = cohort_frame(60, 3, {"bmd_t_score": 0.3})
    impute(patients, aux_frame(patients, 3), COVARIATES, MissingData(imputations=2,
           iterations=2, seed=4), runner=recording)  # fmt: skip
    ids += [p.encode() for p in patients.get_column("patient_id").to_list()]
    assert len(recording.sent) == 5  # point + 3 imputed bootstraps, the chains
    leaked = {i for payload in recording.sent for i in ids if i in payload}
    assert not leaked, sorted(leaked)[:5]


# -- the whole analysis and the CLI ---------------------------------------------------------


@pytest.fixture(scope="module")
def registry_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 400-patient registry with BMD and glucocorticoids missing at random."""
    folder = tmp_path_factory.mktemp("compute")
    synthesise(folder / "input", patients=400, seed=7, missing="mar", missing_rate=0.3)
    db = folder / "registry.duckdb"
    init_registry(db)
    ingest_into(Settings(db=db), [folder / "input"], as_of=AS_OF)
    return db


def small(analysis: Analysis) -> Analysis:
    """The default study with 3 imputations and a 21-replicate bootstrap, adjacent only."""
    study = analysis.study
    trial = dataclasses.replace(study.target_trial, replicates=21)
    spec = dataclasses.replace(study.missing_data, imputations=3, iterations=3)
    changed = dataclasses.replace(
        study, missing_data=spec, target_trial=trial, outcomes=("adjacent",)
    )
    return dataclasses.replace(analysis, study=changed)


def without_compute(results: Any) -> dict[str, Any]:
    document = json.loads(json.dumps(results))
    document["provenance"].pop("compute")
    return document


@pytest.mark.slow
def test_pooled_fits_and_the_whole_results_are_identical_on_every_backend(
    registry_db: Path, runners: dict[str, Runner]
) -> None:
    analysis = small(build_analysis(registry_db, None))
    done = {name: analyse(analysis, as_of=AS_OF, runner=r) for name, r in runners.items()}
    assert {n: r["provenance"]["compute"]["backend"] for n, r in done.items()} == {
        "serial": "serial", "processes": "processes", "dask": "dask"}  # fmt: skip
    serial = without_compute(done.pop("serial"))
    assert serial["missing_data"]["method"] == "multiple_imputation"
    pooled = serial["outcomes"]["adjacent"]["cox"]["adjusted"]
    assert pooled["hr"] is not None and pooled != serial["outcomes"]["adjacent"]["cox"][
        "adjusted_complete_case"]  # fmt: skip
    assert serial["target_trial"]["outcomes"]["adjacent"]["bootstrap"]["succeeded"] == 21
    for results in done.values():
        assert without_compute(results) == serial


@pytest.mark.slow
def test_cli_analyze_runs_on_the_cluster_named_by_scheduler(
    registry_db: Path, cluster: str, tmp_path: Path
) -> None:
    base = ["analyze", "--db", str(registry_db), "--as-of", "2026-01-01", "--out"]
    on_dask = CliRunner().invoke(main, [*base, str(tmp_path / "dask"), "--scheduler", cluster])
    assert on_dask.exit_code == 0, on_dask.output
    local = CliRunner().invoke(main, [*base, str(tmp_path / "local"), "--workers", "1"])
    assert local.exit_code == 0, local.output
    dask_json = json.loads((tmp_path / "dask" / "results.json").read_text())
    local_json = json.loads((tmp_path / "local" / "results.json").read_text())
    assert dask_json["provenance"]["compute"] == {"backend": "dask", "workers": 2}
    assert local_json["provenance"]["compute"] == {"backend": "serial", "workers": 1}
    assert without_compute(dask_json) == without_compute(local_json)


@pytest.mark.parametrize(
    ("args", "env", "source"),
    [
        (["--scheduler", UNREACHABLE], {}, "option --scheduler"),
        (
            [],
            {"REGISTRY_DASK_SCHEDULER": UNREACHABLE},
            "environment variable REGISTRY_DASK_SCHEDULER",
        ),
    ],
)
def test_cli_unreachable_scheduler_is_one_error_line_and_exit_1(
    registry_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    args: list[str], env: dict[str, str], source: str,
) -> None:  # fmt: skip
    monkeypatch.setattr(compute, "CONNECT_TIMEOUT", 2.0)
    command = ["analyze", "--db", str(registry_db), "--out", str(tmp_path), *args]
    result = CliRunner().invoke(main, command, env=env)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("Error: could not reach the Dask scheduler at " + UNREACHABLE)
    assert f"(from {source})" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "results.json").exists()


def test_cli_refuses_bad_workers_and_scheduler_values_naming_the_option(tmp_path: Path) -> None:
    db = str(tmp_path / "none.duckdb")
    zero = CliRunner().invoke(
        main, ["analyze", "--db", db, "--out", str(tmp_path), "--workers", "0"]
    )
    assert zero.exit_code == 1 and "option --workers: workers must be at least 1" in zero.output
    bad = CliRunner().invoke(
        main, ["report", "--db", db, "--out", str(tmp_path), "--scheduler", "http://x"]
    )
    assert bad.exit_code == 1 and "option --scheduler: dask_scheduler must be" in bad.output


def test_settings_layers_for_workers_and_scheduler(tmp_path: Path) -> None:
    from registry.config import load_settings

    toml = tmp_path / "registry.toml"
    toml.write_text('workers = 3\ndask_scheduler = "tcp://head:8786"\n')
    s = load_settings(toml_path=toml, env={})
    assert s.workers == 3 and s.dask_scheduler == Scheduler("tcp://head:8786", str(toml))
    env = {"REGISTRY_WORKERS": "2", "REGISTRY_DASK_SCHEDULER": "tls://other:8786"}
    s = load_settings(toml_path=toml, env=env)
    assert s.workers == 2
    assert s.dask_scheduler == Scheduler(
        "tls://other:8786", "environment variable REGISTRY_DASK_SCHEDULER"
    )
    s = load_settings(toml_path=toml, env=env, workers=1, dask_scheduler="tcp://flag:1")
    assert (s.workers, s.dask_scheduler) == (1, Scheduler("tcp://flag:1", "option --scheduler"))
    assert load_settings(toml_path=tmp_path / "none", env={}).workers is None
    for bad in ("workers = 2.5\n", "workers = 0\n", 'dask_scheduler = "host"\n'):
        toml.write_text(bad)
        with pytest.raises(ConfigError, match=str(toml)):
            load_settings(toml_path=toml, env={})
