"""Timing one phase of tte_pandas.py: wall seconds and peak resident memory above its start."""

from __future__ import annotations

import ctypes
import gc
import os
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any


class PeakRss:
    """Peak resident memory above the level at entry, sampled by a thread (MiB)."""

    STATM = Path("/proc/self/statm")

    def __init__(self) -> None:
        self.page = os.sysconf("SC_PAGE_SIZE") if self.STATM.exists() else 0
        self.delta_mib: float | None = None

    def _rss(self) -> int:
        return int(self.STATM.read_text().split()[1]) * self.page

    def __enter__(self) -> PeakRss:
        if not self.page:
            return self
        gc.collect()
        _malloc_trim()
        self._start = self._peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(0.005):
            self._peak = max(self._peak, self._rss())

    def __exit__(self, *exc: object) -> None:
        if self.page:
            self._stop.set()
            self._thread.join()
            self._peak = max(self._peak, self._rss())
            self.delta_mib = (self._peak - self._start) / 2**20


def _malloc_trim() -> None:
    """Give freed heap back to the OS first (glibc), so deltas start from a low level."""
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float | None]:
    """(result, seconds, peak RSS delta MiB) of one call."""
    with PeakRss() as rss:
        start = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - start
    return result, seconds, rss.delta_mib
