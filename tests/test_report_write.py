"""Writing results.json and index.html: both or neither, no temporary file left behind, and a
failure (a full disk) names the file. The disk is filled by a monkeypatched write or rename
that raises ENOSPC at each point of the sequence."""

from __future__ import annotations

import datetime as dt
import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.errors import ReportWriteError
from registry.refresh import RefreshFailed
from registry.refresh.publish import current_stamp
from registry.report import write
from tests.test_refresh_support import drop_export, refresh

BUILT = dt.datetime(2026, 1, 2, 3, 4)
NEW = {"results.json": '{"new": 1}\n', "index.html": "<p>new</p>"}
OLD = {"results.json": '{"old": 1}\n', "index.html": "<p>old</p>"}


def full_disk_at(call: int, real: Callable[..., Any]) -> Callable[..., Any]:
    """A stand-in for `real` whose `call`-th call (1-based) fails with ENOSPC."""
    calls = {"n": 0}

    def fake(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == call:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*args, **kwargs)

    return fake


def write_pair(folder: Path) -> None:
    write.write_together([(folder / name, text) for name, text in NEW.items()])


def contents(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(folder.iterdir())}


POINTS = [("_fill", 1), ("_fill", 2), ("replace", 1), ("replace", 2)]


def fail_at(monkeypatch: pytest.MonkeyPatch, point: str, call: int) -> None:
    if point == "_fill":
        monkeypatch.setattr(write, "_fill", full_disk_at(call, write._fill))
    else:
        monkeypatch.setattr(write.os, "replace", full_disk_at(call, os.replace))


@pytest.mark.parametrize(("point", "call"), POINTS)
def test_a_full_disk_leaves_neither_file_nor_a_temporary_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str, call: int
) -> None:
    fail_at(monkeypatch, point, call)
    with pytest.raises(ReportWriteError) as exc:
        write_pair(tmp_path)
    failed = list(NEW)[call - 1]
    assert str(exc.value) == f"could not write {tmp_path / failed}: No space left on device"
    assert contents(tmp_path) == {}  # nothing published, no .results-*.json / .index-*.html


@pytest.mark.parametrize(("point", "call"), POINTS)
def test_a_full_disk_keeps_the_previous_pair(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str, call: int
) -> None:
    for name, text in OLD.items():
        (tmp_path / name).write_text(text)
    fail_at(monkeypatch, point, call)
    with pytest.raises(ReportWriteError, match="No space left on device"):
        write_pair(tmp_path)
    assert contents(tmp_path) == OLD  # the second rename failed: the first was rolled back


@settings(max_examples=40, deadline=None)
@given(
    existed=st.booleans(),
    point=st.sampled_from(["_fill", "replace", None]),
    call=st.integers(1, 3),
)
def test_both_or_neither_whatever_fails(existed: bool, point: str | None, call: int) -> None:
    """Invariant: afterwards the folder holds exactly the old pair, the new pair, or (if
    there was none before) nothing; never a mix and never a temporary file."""
    with tempfile.TemporaryDirectory() as name, pytest.MonkeyPatch.context() as mp:
        folder = Path(name)
        if existed:
            for file, text in OLD.items():
                (folder / file).write_text(text)
        if point:
            fail_at(mp, point, call)
        try:
            write_pair(folder)
        except ReportWriteError as exc:
            assert "No space left on device" in str(exc) and str(folder) in str(exc)
        assert contents(folder) in ({}, OLD, NEW) and (contents(folder) != {} or not existed)


def test_write_report_renders_before_it_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(results: dict[str, Any], *, built_at: dt.datetime) -> str:
        raise ValueError("a figure could not be drawn")

    monkeypatch.setattr(write, "render_report", broken)
    with pytest.raises(ValueError, match="figure"):
        write.write_report({"x": 1}, tmp_path, built_at=BUILT)
    assert contents(tmp_path) == {}  # results.json is not written without its page


def test_the_history_page_and_results_json_alone_are_written_atomically_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(write, "_fill", full_disk_at(1, write._fill))
    with pytest.raises(ReportWriteError, match=f"could not write {tmp_path / 'results.json'}"):
        write.write_json({"a": 1}, tmp_path / "results.json")
    assert contents(tmp_path) == {}


def test_a_refresh_on_a_full_disk_fails_naming_the_file_and_keeps_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drop_export(tmp_path, "day1")
    first = refresh(tmp_path)
    real = write._write_temp

    def no_room_for_pages(path: Path, text: str) -> Path:
        if path.name == "index.html":
            raise write._cannot_write(path, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
        return real(path, text)

    monkeypatch.setattr(write, "_write_temp", no_room_for_pages)
    with pytest.raises(RefreshFailed) as exc:
        refresh(tmp_path, force=True)
    assert "failed at step reports: could not write " in str(exc.value)
    assert "index.html: No space left on device" in str(exc.value)
    assert f"build {first.stamp} is still current" in str(exc.value)
    out = tmp_path / "out"
    assert current_stamp(out) == first.stamp
    left = [p.name for p in out.rglob(".*") if p.name != ".tmp"]
    assert left == [], left  # no .tmp-<stamp> build, no .index-*.html
