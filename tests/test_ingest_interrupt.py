"""Ctrl-C during ingest: exit 130, one line naming what was committed, nothing half-stored."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from registry.pipeline import synthesise

pytestmark = pytest.mark.slow
REGISTRY = [sys.executable, "-c", "from registry.cli import main; main()"]


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("export")
    synthesise(folder, patients=200_000, seed=11)
    return folder


def interrupt_after(export: Path, db: Path, committed_lines: int) -> tuple[int, str, str]:
    """Ingest the export and press Ctrl-C once `committed_lines` files have been reported."""
    subprocess.run([*REGISTRY, "init", "--db", str(db)], check=True, capture_output=True)
    proc = subprocess.Popen(
        [*REGISTRY, "ingest", str(export), "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    seen: list[str] = []
    while sum(" (batch " in line for line in seen) < committed_lines:
        line = proc.stdout.readline()
        assert line, f"ingest ended before {committed_lines} files: {seen}"
        seen.append(line)
    time.sleep(0.3)  # inside the next file
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, "".join(seen) + out, err


@pytest.mark.parametrize("committed_lines", [1, 3])
def test_ctrl_c_exits_130_and_names_exactly_the_committed_files(
    export: Path, tmp_path: Path, committed_lines: int
) -> None:
    db = tmp_path / "r.duckdb"
    code, out, err = interrupt_after(export, db, committed_lines)
    assert code == 130, (out, err)
    assert "Traceback" not in err and "RuntimeError" not in err
    (line,) = [x for x in err.splitlines() if x.startswith("Interrupted:")]
    found = re.fullmatch(
        r"Interrupted: (?:(\S+) was not stored|stopped after (\S+)); (.+) committed", line
    )
    assert found, line
    named = found.group(3).removesuffix(" was").removesuffix(" were")
    committed = [] if named == "nothing was" else named.split(", ")
    con = duckdb.connect(str(db), read_only=True)
    stored = [
        n
        for (n,) in con.execute(
            "SELECT file_name FROM ingest_batches WHERE status = 'loaded' ORDER BY batch_id"
        ).fetchall()
    ]
    assert stored == committed
    assert len(committed) >= committed_lines
    if found.group(1):  # the file that was not stored left no rows behind
        table = found.group(1).removesuffix(".csv")
        assert con.execute(f"SELECT count(*) FROM {table}").fetchall() == [(0,)]
    con.close()
