"""Time and measure the registry's commands at several data sizes (run by `make bench`).

Each case is one `registry` command line run as a subprocess. For every size the
cases run in list order, once per repeat, in a scratch folder under
benchmarks/out/ that is deleted afterwards. Results go to benchmarks/results.md
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
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
AS_OF = "2026-01-01"
MIB = 1024 * 1024

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


@dataclass
class Result:
    """Every repeat of one case at one size."""

    size: int
    case: str
    seconds: list[float] = field(default_factory=list)
    peak_mib: list[float] = field(default_factory=list)
    rows: int | None = None
    notes: str = ""


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
        lambda ws: [ws.registry, "tte", "--db", str(ws.db), "--out", str(ws.root / "tte")],
        clear=lambda ws: [ws.root / "tte"],
        report=tte_report,
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


def run_size(patients: int, repeats: int, registry: str) -> list[Result]:
    """Every case at one size, `repeats` times, in a scratch folder deleted afterwards."""
    OUT.mkdir(exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix=f"n{patients}-", dir=OUT))
    ws = Workspace(root, patients, registry)
    results = [Result(patients, case.name) for case in CASES]
    try:
        for repeat in range(1, repeats + 1):
            for case, result in zip(CASES, results, strict=True):
                for path in case.clear(ws):
                    remove(path)
                seconds, peak = measure(case.argv(ws), ws)
                result.seconds.append(seconds)
                result.peak_mib.append(peak)
                result.rows, result.notes = case.report(ws)
                print(
                    f"  {patients:>10,} {case.name:<14} #{repeat}: {seconds:8.2f} s "
                    f"{peak:8.0f} MiB",
                    flush=True,
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return results


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


HEADER = ["size (patients)", "case", "median s", "min s", "max s", "peak RSS MiB", "rows", "notes"]


def table_rows(results: list[Result]) -> list[list[str]]:
    """One row of text cells per (size, case)."""
    return [
        [
            f"{r.size:,}",
            r.case,
            f"{statistics.median(r.seconds):.2f}",
            f"{min(r.seconds):.2f}",
            f"{max(r.seconds):.2f}",
            f"{max(r.peak_mib):,.0f}",
            "" if r.rows is None else f"{r.rows:,}",
            f"n={len(r.seconds)}; {r.notes}",
        ]
        for r in results
    ]


def to_markdown(preamble: list[str], rows: list[list[str]], note: str) -> str:
    """The results page: machine, method note and the table."""
    lines = ["# Benchmarks", "", *preamble, f"- {note}", ""]
    lines += ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    method = (
        "Wall time and peak RSS of each command as a subprocess, measured by a fresh "
        "`python -c` wrapper (`resource.getrusage(RUSAGE_CHILDREN)` after its only child). "
        "Peak RSS is the largest over the repeats; n is the number of repeats. "
        f"`ingest` loads the whole synthetic folder into a fresh database, `--as-of {AS_OF}`."
    )
    return "\n".join([*lines, "", method, ""])


def print_table(rows: list[list[str]]) -> None:
    """The results on the terminal as a rich table."""
    table = Table(*HEADER, title="registry benchmarks")
    for row in rows:
        table.add_row(*row)
    console = Console()
    console.width = max(console.width, 130)  # keep rows on one line when piped
    console.print(table)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="Patients, comma-separated.")
    parser.add_argument(
        "--repeats", type=int, help="Repeats per size (default 3 up to 100,000 patients, else 1)."
    )
    parser.add_argument("--results", type=Path, default=HERE / "results.md", help="Markdown out.")
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
    """Run every case at every size and write benchmarks/results.md."""
    args = parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    registry = find_registry()
    preamble = machine()
    results: list[Result] = []
    for size in sizes:
        repeats = args.repeats or (3 if size <= 100_000 else 1)
        print(f"{size:,} patients, {repeats} repeat(s):", flush=True)
        results += run_size(size, repeats, registry)
    rows = table_rows(results)
    preamble.append(f"- Load average at end {load_average()}")
    args.results.write_text(to_markdown(preamble, rows, args.note), encoding="utf-8")
    print_table(rows)
    print(f"Wrote {args.results}")


if __name__ == "__main__":
    main()
