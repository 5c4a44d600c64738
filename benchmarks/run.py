"""Time and measure the registry's commands at several data sizes (run by `make bench`).

Each case is one `registry` command line run as a subprocess: synth -> init -> ingest ->
tte -> analyze -> report, then the whole nightly refresh. For every size the cases run in
list order, once per repeat, in a scratch folder under benchmarks/out/ that is deleted
afterwards; then, on that size's registry, the pandas baseline and the comparison with R
(benchmarks/side_by_side.py). Results go to benchmarks/results/<date>.md (and latest.md)
and to the terminal.

Peak RSS: each command runs under a fresh `python -c` wrapper whose only child
is the command, so the wrapper's RUSAGE_CHILDREN ru_maxrss is that command's
own peak (the largest single process among it and any children it waited for),
never an earlier command's. Wall time is taken inside the wrapper around the
child alone. Only python3 is needed, as for every other Makefile target.

To add a benchmark, append a Case to CASES: a name, a function building the
argv from the Workspace, the paths to clear before each run, and optionally a
function returning (rows, notes) after it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import side_by_side
from bench_page import MIB, Result, print_table, table_rows, to_markdown
from side_by_side import SideBySide

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
RESULTS = HERE / "results"
AS_OF = "2026-01-01"

# Runs in a fresh interpreter so RUSAGE_CHILDREN covers exactly one command.
WRAPPER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.call(sys.argv[2:])
seconds = time.perf_counter() - start
maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
with open(sys.argv[1], "w") as handle:
    json.dump({"seconds": seconds, "maxrss": maxrss, "returncode": code}, handle)
"""


@dataclass(frozen=True)
class Workspace:
    """The scratch folder of one size: synthetic files, database and logs."""

    root: Path
    patients: int
    registry: str
    study: Path | None = None  # --study for tte, analyze, report and refresh
    memory_limit: str | None = None  # REGISTRY_MEMORY_LIMIT for every command

    def study_args(self) -> list[str]:
        """`--study FILE` when a study file was given."""
        return ["--study", str(self.study)] if self.study else []

    @property
    def data(self) -> Path:
        """Folder of contract files written by `registry synth`."""
        return self.root / "data"

    @property
    def db(self) -> Path:
        """The registry database file."""
        return self.root / "registry.duckdb"


@dataclass(frozen=True)
class Case:
    """One measured command line, with what to clear before it and what to report after."""

    name: str
    argv: Callable[[Workspace], list[str]]
    clear: Callable[[Workspace], list[Path]] = lambda ws: []
    report: Callable[[Workspace], tuple[int | None, str]] = lambda ws: (None, "")
    prepare: Callable[[Workspace], None] = lambda ws: None  # untimed, after clear


def csv_rows(folder: Path) -> tuple[int | None, str]:
    """Data rows summed over the CSV files (newlines minus headers; the contract has no
    quoted newlines) and their total size."""
    files = sorted(folder.glob("*.csv"))
    rows = sum(count_newlines(p) - 1 for p in files)
    mib = sum(p.stat().st_size for p in files) / MIB
    return rows, f"{len(files)} CSV files, {mib:,.1f} MiB"


def count_newlines(path: Path) -> int:
    """Lines in a file, read in 16 MiB chunks."""
    with path.open("rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(16 * MIB), b""))


def db_size(ws: Workspace) -> str:
    """Size of the database file (and its WAL, if one was left)."""
    wal = ws.db.with_name(ws.db.name + ".wal")
    size = sum(p.stat().st_size for p in (ws.db, wal) if p.exists())
    return f"DB {size / MIB:,.1f} MiB"


def ingest_report(ws: Workspace) -> tuple[int | None, str]:
    """Input rows and the database size after ingest."""
    rows, _ = csv_rows(ws.data)
    return rows, db_size(ws)


def tte_report(ws: Workspace) -> tuple[int | None, str]:
    """Rows of the analysis frames written by `registry tte`."""
    import polars as pl

    sizes = {n: pl.scan_parquet(ws.root / "tte" / f"{n}.parquet").select(pl.len()).collect().item()
             for n in ("outcomes", "counting", "landmark")}  # fmt: skip
    return sum(sizes.values()), ", ".join(f"{n} {v:,}" for n, v in sizes.items())


def report_sizes(folder: Path) -> tuple[int | None, str]:
    """Sizes of the report files a command wrote."""
    sizes = [
        f"{p.name} {p.stat().st_size / MIB:,.1f} MiB"
        for p in (folder / "index.html", folder / "results.json")
        if p.exists()
    ]
    return None, ", ".join(sizes)


def fill_inbox(ws: Workspace) -> None:
    """Copy the synthetic export into a fresh inbox (refresh moves what it ingests)."""
    shutil.copytree(ws.data, ws.root / "inbox" / "export")


def refresh_report(ws: Workspace) -> tuple[int | None, str]:
    """Report sizes of the build the refresh published."""
    return report_sizes(ws.root / "publish" / "latest")


CASES: list[Case] = [
    Case(
        "synth (csv)",
        lambda ws: [ws.registry, "synth", "--out", str(ws.data), "--patients", str(ws.patients)],
        clear=lambda ws: [ws.data],
        report=lambda ws: csv_rows(ws.data),
    ),
    Case(
        "init",
        lambda ws: [ws.registry, "init", "--db", str(ws.db)],
        clear=lambda ws: [ws.db, ws.db.with_name(ws.db.name + ".wal")],
        report=lambda ws: (None, db_size(ws)),
    ),
    Case(
        "ingest",
        lambda ws: [ws.registry, "ingest", str(ws.data), "--db", str(ws.db), "--as-of", AS_OF],
        report=ingest_report,
    ),
    Case(
        "tte (read + cohort + frames + parquet)",
        lambda ws: [
            *[ws.registry, "tte", "--db", str(ws.db), "--out", str(ws.root / "tte")],
            *ws.study_args(),
        ],
        clear=lambda ws: [ws.root / "tte"],
        report=tte_report,
    ),
    Case(
        "analyze (every model -> results.json)",
        lambda ws: [
            ws.registry,
            "analyze",
            *ws.study_args(),
            "--db",
            str(ws.db),
            "--out",
            str(ws.root / "analysis"),
            "--as-of",
            AS_OF,
        ],
        clear=lambda ws: [ws.root / "analysis"],
        report=lambda ws: report_sizes(ws.root / "analysis"),
    ),
    Case(
        "report (analyze + HTML)",
        lambda ws: [
            ws.registry,
            "report",
            *ws.study_args(),
            "--db",
            str(ws.db),
            "--out",
            str(ws.root / "report"),
            "--as-of",
            AS_OF,
        ],
        clear=lambda ws: [ws.root / "report"],
        report=lambda ws: report_sizes(ws.root / "report"),
    ),
    Case(
        "refresh (whole nightly run, empty registry)",
        lambda ws: [
            ws.registry,
            "refresh",
            *ws.study_args(),
            "--db",
            str(ws.root / "nightly.duckdb"),
            "--inbox",
            str(ws.root / "inbox"),
            "--publish",
            str(ws.root / "publish"),
            "--as-of",
            AS_OF,
        ],
        clear=lambda ws: [
            ws.root / "nightly.duckdb",
            ws.root / "nightly.duckdb.wal",
            ws.root / "inbox",
            ws.root / "publish",
        ],
        prepare=fill_inbox,
        report=refresh_report,
    ),
]


def remove(path: Path) -> None:
    """Delete a file or folder if it exists."""
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def measure(argv: Sequence[str], ws: Workspace) -> tuple[float, float]:
    """Run one command under the wrapper; return (wall seconds, peak RSS in MiB)."""
    stats = ws.root / "stats.json"
    stats.unlink(missing_ok=True)  # never read the previous command's numbers
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    if ws.memory_limit:
        env["REGISTRY_MEMORY_LIMIT"] = ws.memory_limit
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, str(stats), *argv],
        cwd=ws.root,  # no registry.toml or REGISTRY_* settings leak into the run
        env=env,
        capture_output=True,
        text=True,
    )
    result = json.loads(stats.read_text()) if stats.exists() else {"returncode": done.returncode}
    if done.returncode or result["returncode"]:
        sys.exit(f"Error: {' '.join(argv)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    scale = MIB if sys.platform == "darwin" else 1024
    return result["seconds"], result["maxrss"] / scale


@dataclass(frozen=True)
class Options:
    """What to run beyond the sizes: a subset of the cases, a study file, a DuckDB limit."""

    cases: tuple[str, ...] = ()  # first words of case names (synth, ingest, refresh...)
    study: Path | None = None
    memory_limit: str | None = None


def run_size(
    patients: int, repeats: int, registry: str, *, compare: bool, options: Options | None = None
) -> tuple[list[Result], SideBySide | None]:
    """Every case at one size (those named in options.cases), `repeats` times, then (if
    compare) the pandas and R comparisons on that size's registry, in a scratch folder
    deleted afterwards."""
    options = options or Options()
    OUT.mkdir(exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix=f"n{patients}-", dir=OUT))
    ws = Workspace(root, patients, registry, options.study, options.memory_limit)
    cases = [c for c in CASES if not options.cases or c.name.split()[0] in options.cases]
    results = [Result(patients, case.name) for case in cases]
    try:
        for repeat in range(1, repeats + 1):
            for case, result in zip(cases, results, strict=True):
                for path in case.clear(ws):
                    remove(path)
                case.prepare(ws)
                seconds, peak = measure(case.argv(ws), ws)
                result.seconds.append(seconds)
                result.peak_mib.append(peak)
                result.rows, result.notes = case.report(ws)
                print(
                    f"  {patients:>10,} {case.name:<14} #{repeat}: {seconds:8.2f} s "
                    f"{peak:8.0f} MiB",
                    flush=True,
                )
        found = side_by_side.compare(root, ws.db, registry, patients, repeats) if compare else None
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return results, found


def machine() -> list[str]:
    """Lines describing when and where the benchmark ran."""
    versions = ", ".join(
        f"{name} {metadata.version(name)}" for name in ("duckdb", "polars", "vertebral-registry")
    )
    return [
        f"- Date: {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        f"- Machine: {platform.platform()}, {cpus()} CPUs, {memory_gib():.1f} GiB RAM; "
        f"load average at start {load_average()}",
        f"- Python {platform.python_version()}, {versions}",
    ]


def cpus() -> int:
    """CPUs this process may use (what `nproc` prints)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def memory_gib() -> float:
    """Physical memory in GiB."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, to judge how busy a shared machine was."""
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="10000,100000,1000000", help="Patients, comma-separated."
    )
    parser.add_argument(
        "--repeats",
        type=int,
        help="Repeats per size (default 5 up to 10,000 patients, 3 up to 100,000, else 1).",
    )
    parser.add_argument(
        "--results",
        type=Path,
        help="Markdown out (default benchmarks/results/<date>.md, also copied to latest.md).",
    )
    parser.add_argument(
        "--no-compare",
        action="store_true",
        help="Skip the pandas baseline and the comparison with R.",
    )
    parser.add_argument(
        "--cases",
        default="",
        help="Only these cases, comma-separated first words (e.g. synth,init,ingest,refresh: "
        "the 10,000,000-patient row).",
    )
    parser.add_argument(
        "--append",
        action="store_true",
        help="Add this run's page under its own heading to the end of latest.md (and of the "
        "--results or day's page) instead of replacing them: the 10,000,000-patient row "
        "beside the smaller sizes.",
    )
    parser.add_argument("--study", type=Path, help="Study file for tte, analyze, report, refresh.")
    parser.add_argument("--memory-limit", help="DuckDB memory_limit (REGISTRY_MEMORY_LIMIT).")
    parser.add_argument(
        "--note",
        default="Shared 2-core machine: other jobs may have run at the same time.",
        help="Free text recorded above the table.",
    )
    return parser.parse_args(argv)


def find_registry() -> str:
    """The `registry` script next to this interpreter (the venv), else on PATH."""
    beside = Path(sys.executable).parent / "registry"
    found = str(beside) if beside.exists() else shutil.which("registry")
    if not found:
        sys.exit("Error: no `registry` command found. Run `make bench`, which installs it.")
    return found


def main(argv: Sequence[str] | None = None) -> None:
    """Run every case at every size and write the results page."""
    args = parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    registry = find_registry()
    preamble = machine()
    results: list[Result] = []
    found: list[SideBySide] = []
    for size in sizes:
        repeats = args.repeats or (5 if size <= 10_000 else 3 if size <= 100_000 else 1)
        print(f"{size:,} patients, {repeats} repeat(s):", flush=True)
        options = Options(
            tuple(c.strip() for c in args.cases.split(",") if c.strip()),
            args.study.resolve() if args.study else None,
            args.memory_limit,
        )
        measured, compared = run_size(
            size, repeats, registry, compare=not args.no_compare, options=options
        )
        results += measured
        found += [compared] if compared else []
    preamble.append(f"- Load average at end {load_average()}")
    page = to_markdown(preamble, results, args.note, found, as_of=AS_OF)
    RESULTS.mkdir(exist_ok=True)
    target = args.results or RESULTS / f"{dt.date.today():%Y-%m-%d}.md"
    pages = [target] if args.results else [target, RESULTS / "latest.md"]
    if args.append:
        what = args.cases or "every case"
        heading = f"## {', '.join(f'{s:,}' for s in sizes)} patients ({what})"
        page = page.replace("# Benchmarks", heading, 1)
    for path in pages:
        before = (
            path.read_text(encoding="utf-8").rstrip("\n") + "\n\n"
            if (args.append and path.exists())
            else ""
        )
        path.write_text(before + page, encoding="utf-8")
    print_table(table_rows(results))
    print(f"Wrote {target}")


if __name__ == "__main__":
    main()
