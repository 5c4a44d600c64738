"""The demo's output folder: never overwrite what the demo did not write.

`registry demo --out DIR` writes a marker file DIR/.registry-demo listing the entries it owns
(written first, so a demo stopped half-way still owns its folder). A folder that is missing,
empty, or holds only what a previous demo wrote is reused: those entries are replaced. Any
other folder is refused (exit 2) naming up to three foreign entries, unless --force.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from registry.errors import DemoFolderNotEmpty, RegistryError
from registry.refresh.wording import listing

MARKER = ".registry-demo"
WRITES = ("input", "registry.duckdb", "registry.duckdb.wal", "tte", "results.json", "index.html",
          "checklist.md")  # fmt: skip
HEADER = "# Written by `registry demo`; a later demo replaces the entries listed here.\n"


def owned(out_dir: Path) -> set[str]:
    """Entries of the folder a previous demo wrote (from its marker file)."""
    marker = out_dir / MARKER
    if not marker.is_file():
        return _written_before_markers(out_dir)
    lines = marker.read_text(encoding="utf-8").splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def _written_before_markers(out_dir: Path) -> set[str]:
    """A folder of a demo older than the marker file: only the demo's own entries, and the
    synthetic cohort's truth.json in input/ (no real export has one)."""
    names = {p.name for p in out_dir.iterdir()} if out_dir.is_dir() else set()
    if names and names <= set(WRITES) and (out_dir / "input" / "truth.json").is_file():
        return names
    return set()


def foreign_entries(out_dir: Path) -> list[str]:
    """Entries of the folder the demo did not write, sorted."""
    if not out_dir.exists():
        return []
    if not out_dir.is_dir():
        raise RegistryError(f"{out_dir} is a file; give --out a folder")
    mine = owned(out_dir) | {MARKER}
    found = (p for p in out_dir.iterdir() if p.name not in mine)
    return sorted(p.name + ("/" if p.is_dir() else "") for p in found)


def claim(out_dir: Path, *, force: bool) -> None:
    """Make the folder the demo's: refuse a foreign one unless `force`, remove what the
    previous demo (or, with force, what this demo is about to) write, write the marker."""
    foreign = foreign_entries(out_dir)
    if foreign and not force:
        raise DemoFolderNotEmpty(
            f"{out_dir} holds files the demo did not write ({listing(foreign)}); "
            "give --out a new or empty folder, or pass --force to write the demo there anyway "
            "(it replaces input/, registry.duckdb, tte/, results.json, index.html and checklist.md)"
        )
    for name in sorted(owned(out_dir) | set(WRITES)):
        _remove(out_dir / name)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MARKER).write_text(HEADER + "\n".join(WRITES) + "\n", encoding="utf-8")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
