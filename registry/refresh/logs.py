"""Logging of a refresh: DIR/refresh.log and stderr; a rich progress bar on a terminal only."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

LOGGER = "registry.refresh"
FORMAT = "%(asctime)s %(levelname)s %(message)s"


class StepProgress:
    """Progress over the steps; this base class shows nothing (not a terminal, or tests)."""

    def begin(self, step: str) -> None:
        """A step started."""

    def advance(self, step: str) -> None:
        """A step finished."""


class RichStepProgress(StepProgress):
    """A rich progress bar over the refresh steps."""

    def __init__(self, progress: Progress, total: int) -> None:
        self.progress = progress
        self.task = progress.add_task("refresh", total=total)

    def begin(self, step: str) -> None:
        """Show the running step's name."""
        self.progress.update(self.task, description=f"refresh: {step}")

    def advance(self, step: str) -> None:
        """Count a finished step."""
        self.progress.update(self.task, advance=1, description=f"refresh: {step} done")


@contextmanager
def refresh_logging(publish: Path, *, tty: bool, total: int) -> Iterator[StepProgress]:
    """Log to publish/refresh.log and stderr for the block; yield the progress display."""
    publish.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger(LOGGER)
    logger.setLevel(logging.INFO)
    file_handler = logging.FileHandler(publish / "refresh.log", encoding="utf-8")
    file_handler.setFormatter(logging.Formatter(FORMAT))
    if not tty:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(logging.Formatter(FORMAT))
        with _handlers(logger, file_handler, stream):
            yield StepProgress()
        return
    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with (
        Progress(*columns, console=console) as progress,
        _handlers(logger, file_handler, RichHandler(console=console, show_path=False)),
    ):
        yield RichStepProgress(progress, total)


@contextmanager
def _handlers(logger: logging.Logger, *handlers: logging.Handler) -> Iterator[None]:
    for handler in handlers:
        logger.addHandler(handler)
    try:
        yield
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()
