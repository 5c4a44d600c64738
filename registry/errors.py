"""The registry's exceptions: every expected failure is a RegistryError with a message."""

from __future__ import annotations


class RegistryError(Exception):
    """A failure the user can act on; the CLI prints it without a traceback."""

    exit_code = 1


class ConfigError(RegistryError):
    """A setting or study file is invalid."""


class IngestError(RegistryError):
    """A file was refused whole (wrong columns, unreadable, identifiers)."""

    exit_code = 2


class MigrationError(RegistryError):
    """A migration failed or the database is newer than this code."""


class ModelFitError(RegistryError):
    """A model could not be fitted on the data given."""


class ReportWriteError(RegistryError):
    """A result file (index.html, results.json, the history page) could not be written; no
    half-written or temporary file was left behind."""


class DemoFolderNotEmpty(RegistryError):
    """`registry demo --out DIR` refused a folder holding files the demo did not write."""

    exit_code = 2


class Interrupted(RegistryError):
    """Ctrl-C stopped a command; the message says what was and was not stored."""

    exit_code = 130


class PseudonymKeyError(RegistryError):
    """An operation was refused to protect the pseudonyms: a wrong, missing or new key."""

    exit_code = 2


class PackageDataError(RegistryError):
    """A file the package ships (SQL, template, study) is missing: the install is incomplete."""


class ConvertError(RegistryError):
    """An input of `registry convert` (records export, dictionary) was refused whole."""

    exit_code = 2


class FigureExportError(RegistryError):
    """`registry figures` could not draw the static figures: no chromium, or it failed."""


class SchedulerUnreachable(RegistryError):
    """The Dask scheduler named by the settings could not be reached, has no workers, or its
    workers cannot run this version of the registry; nothing was computed on it."""


class ClusterLost(RegistryError):
    """The Dask cluster failed during a run: a worker died, or the scheduler went away."""
