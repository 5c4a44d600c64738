"""Atomic publication: each build in its own folder, made current by renaming a symlink.

DIR/builds/.tmp-<stamp>/   a build being written (removed by the next run if left over)
DIR/builds/<stamp>/        a finished build
DIR/latest -> builds/<stamp>   switched with os.replace, so readers see old or new, never half
DIR/index.html             the history page (written atomically)
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger("registry.refresh")
BUILDS = "builds"
LATEST = "latest"
TMP_PREFIX = ".tmp-"


def work_dir(publish: Path, stamp: str) -> Path:
    """The folder a build is written into before it is complete."""
    return publish / BUILDS / f"{TMP_PREFIX}{stamp}"


def build_dir(publish: Path, stamp: str) -> Path:
    """The folder of a finished build."""
    return publish / BUILDS / stamp


def finish_build(publish: Path, stamp: str) -> Path:
    """Rename the complete work folder to its final name."""
    final = build_dir(publish, stamp)
    os.replace(work_dir(publish, stamp), final)
    _fsync_dir(final.parent)
    return final


def point_latest(publish: Path, stamp: str) -> Path:
    """Make `latest` point at a finished build: a new symlink renamed over the old one."""
    link, tmp = publish / LATEST, publish / f"{LATEST}.tmp"
    tmp.unlink(missing_ok=True)
    os.symlink(Path(BUILDS) / stamp, tmp)
    os.replace(tmp, link)
    _fsync_dir(publish)
    return link


def current_stamp(publish: Path) -> str | None:
    """The build `latest` points at, or None."""
    link = publish / LATEST
    if not link.is_symlink():
        return None
    return Path(os.readlink(link)).name


def sweep(publish: Path, *, published: set[str]) -> list[str]:
    """Remove work folders and finished folders no published build owns (a killed publish)."""
    folder = publish / BUILDS
    if not folder.is_dir():
        return []
    keep = published | {current_stamp(publish) or ""}
    removed = []
    for path in sorted(folder.iterdir()):
        if path.is_dir() and path.name not in keep:
            shutil.rmtree(path)
            removed.append(path.name)
    if removed:
        log.info("removed unfinished build folders: %s", ", ".join(removed))
    return removed


def _fsync_dir(path: Path) -> None:
    """Make a rename durable (the directory entry, not only the file)."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
