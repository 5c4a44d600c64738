"""Test hook: pause a refresh at a named point so a test can SIGKILL it deterministically.

Used only by the kill tests (tests/test_refresh_kill.py). With REGISTRY_TEST_PAUSE=<point>
set, the refresh writes the file named by REGISTRY_TEST_PAUSE_MARKER when it reaches that
point and then sleeps, waiting to be killed. Points: every step name (paused at the start of
the step), `ingest:file` (after the first file of the inbox is committed, before it is
moved), `publish:swap` (after the build is recorded as published, before `latest` moves).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

PAUSE_ENV = "REGISTRY_TEST_PAUSE"
MARKER_ENV = "REGISTRY_TEST_PAUSE_MARKER"
PAUSE_SECONDS = 120.0


def pause_point(name: str) -> None:
    """Sleep here when the test hook names this point (never set in production)."""
    if os.environ.get(PAUSE_ENV) != name:
        return
    marker = os.environ.get(MARKER_ENV)
    if marker:
        Path(marker).write_text(f"{os.getpid()} {name}\n", encoding="utf-8")
    time.sleep(PAUSE_SECONDS)
