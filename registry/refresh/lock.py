"""One refresh at a time: an advisory lock file beside the database.

The kernel's flock is released when its process dies, even by SIGKILL, so a lock left by a
killed run can never block the next one; the pid written inside only lets the next run say
whose lock it took over, and lets a refused run say who holds it.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from registry.errors import RegistryError

log = logging.getLogger("registry.refresh")


class RefreshLocked(RegistryError):
    """Another refresh holds the lock of this registry."""


def lock_path(db: Path) -> Path:
    """The lock file of a registry database."""
    return db.with_name(db.name + ".refresh.lock")


def lock_is_held(db: Path) -> bool:
    """Whether a live process holds the refresh lock of a registry (this one included): try
    to take it without waiting; if that works, nobody holds it and it is let go at once."""
    path = lock_path(db)
    if not path.exists():
        return False
    with path.open("a", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        return False  # closing the handle lets the lock go


@contextmanager
def refresh_lock(path: Path, *, started: str) -> Iterator[str | None]:
    """Hold the lock for the block; yield the holder info of a stale lock taken over, if any."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+", encoding="utf-8")
    try:
        _acquire(handle, path)
        stale = _read(handle) or None
        if stale:
            log.warning("took over the lock left by a run that died (%s)", stale)
        _write(handle, f"pid {os.getpid()} since {started}")
        yield stale
        _write(handle, "")
    finally:
        handle.close()  # closing releases the flock


def _acquire(handle: IO[str], path: Path) -> None:
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read(handle) or "unknown process"
        handle.close()
        raise RefreshLocked(
            f"another refresh is running ({holder}; lock {path}); "
            "wait for it to finish or see `registry status`"
        ) from None


def _read(handle: IO[str]) -> str:
    handle.seek(0)
    return handle.read().strip()


def _write(handle: IO[str], text: str) -> None:
    handle.seek(0)
    handle.truncate()
    handle.write(text + ("\n" if text else ""))
    handle.flush()
    os.fsync(handle.fileno())
