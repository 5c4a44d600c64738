"""The data files the package reads at run time: SQL, report templates, the default study.

sql/ and reports/ at the top of the repository are the source of truth for the SQL and the
study files; pyproject.toml ships them inside the package as registry._sql and
registry._reports. The templates of the report and of the refresh's history page sit in the
report stage's own package (registry/report/templates). importlib.resources finds the same
files in the editable install and in an installed wheel. Nothing else builds a path to a
data file.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

import jinja2

from registry.errors import PackageDataError

SQL = "registry._sql"
REPORTS = "registry._reports"
TEMPLATES = "registry.report"  # its templates/ folder
DEFAULT_STUDY_NAME = "adjacent_refracture.toml"


def _find(package: str, name: str) -> Traversable:
    """package's file or folder `name` ('a/b.sql'), or a message saying the install is broken."""
    found = files(package).joinpath(*name.split("/"))
    if not (found.is_file() or found.is_dir()):
        raise PackageDataError(
            f"{name} is missing from {package} ({files(package)}): the installation of "
            "vertebral-registry is incomplete; reinstall it (pip install --force-reinstall)"
        )
    return found


@cache
def sql_text(name: str) -> str:
    """Text of sql/<name>.sql (name like 'checks/event_after_death')."""
    return _find(SQL, f"{name}.sql").read_text(encoding="utf-8")


def sql_names(folder: str) -> list[str]:
    """Names (without .sql) of the SQL files in sql/<folder>, sorted."""
    entries = _find(SQL, folder).iterdir()
    return sorted(e.name.removesuffix(".sql") for e in entries if e.name.endswith(".sql"))


def template_text(name: str) -> str:
    """Text of registry/report/templates/<name> (name like 'report.css')."""
    return _find(TEMPLATES, f"templates/{name}").read_text(encoding="utf-8")


def default_study() -> Path:
    """The shipped study file reports/adjacent_refracture.toml, as a path on disk (studies
    are passed around as paths; pip installs a wheel unzipped)."""
    found = _find(REPORTS, DEFAULT_STUDY_NAME)
    if not isinstance(found, Path):
        raise PackageDataError(f"{found}: vertebral-registry cannot run from a zip archive")
    return found


def template_env(package: str, folder: str = "") -> jinja2.Environment:
    """A Jinja2 environment over the templates of a package folder: autoescaping on,
    undefined names fail, block tags leave no blank lines."""
    return jinja2.Environment(
        loader=_loader(_find(package, folder) if folder else files(package)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _loader(root: Traversable) -> jinja2.BaseLoader:
    """Templates read through importlib.resources (no file-system path assumed)."""

    def load(name: str) -> tuple[str, str, None] | None:
        found = root.joinpath(*name.split("/"))
        if not found.is_file():
            return None
        return found.read_text(encoding="utf-8"), str(found), None

    return jinja2.FunctionLoader(load)


def redcap_file(name: str) -> Path:
    """A shipped REDCap file, reports/<name> (name like 'redcap/vertebral_registry_mapping.toml'),
    as a path on disk."""
    found = _find(REPORTS, name)
    if not isinstance(found, Path):
        raise PackageDataError(f"{found}: vertebral-registry cannot run from a zip archive")
    return found
