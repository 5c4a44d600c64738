"""Where the time goes: pyinstrument profiles of the pipeline's commands at one size.

Usage: python benchmarks/profile_stages.py [--patients N] (run by `make profile`)

Synthesises a cohort in a scratch folder under benchmarks/out/, then runs ingest, tte,
analyze and report under pyinstrument (a sampling profiler: about 1 ms between samples,
little overhead) and writes each call tree as text to
benchmarks/results/profile-<command>-<patients>.txt. Read them top down: the first
frames of the package under `ingest_file`, `analyse...` or `render...` with most seconds
are the bottlenecks. The scratch folder is deleted afterwards.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from run import AS_OF, OUT, RESULTS, find_registry


def main() -> None:
    """Profile every stage at one size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1_000_000)
    args = parser.parse_args()
    registry = find_registry()
    OUT.mkdir(exist_ok=True)
    RESULTS.mkdir(exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix=f"profile-{args.patients}-", dir=OUT))
    db, data = root / "registry.duckdb", root / "data"
    try:
        subprocess.run(
            [registry, "synth", "--out", str(data), "--patients", str(args.patients)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        subprocess.run([registry, "init", "--db", str(db)], check=True, stdout=subprocess.DEVNULL)
        stages = {
            "ingest": ["ingest", str(data), "--db", str(db), "--as-of", AS_OF],
            "tte": ["tte", "--db", str(db), "--out", str(root / "tte")],
            "analyze": ["analyze", "--db", str(db), "--out", str(root / "a"), "--as-of", AS_OF],
            "report": ["report", "--db", str(db), "--out", str(root / "r"), "--as-of", AS_OF],
        }
        for name, argv in stages.items():
            target = RESULTS / f"profile-{name}-{args.patients}.txt"
            print(f"profiling {name} -> {target}", flush=True)
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pyinstrument",
                    "-r",
                    "text",
                    "-o",
                    str(target),
                    registry,
                    *argv,
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
