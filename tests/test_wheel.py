"""The package finds its data files through importlib.resources, and a built wheel works.

The slow tests build the wheel from a copy of the source, install it into a fresh virtualenv
with its dependencies pinned by requirements.lock, and run the CLI from a folder outside the
repository, so nothing can be read from the checkout by accident.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import jinja2
import pytest

import registry
from registry import resources
from registry.errors import PackageDataError, RegistryError
from registry.study import DEFAULT_STUDY, load_study

ROOT = Path(__file__).resolve().parent.parent
SQL_FILES = sorted(p.relative_to(ROOT / "sql").as_posix() for p in (ROOT / "sql").rglob("*.sql"))
TEMPLATES = ["report.html.j2", "report.css", "history.html.j2"]
TEMPLATE_DIR = ROOT / "registry" / "report" / "templates"
SOURCES = ["pyproject.toml", "README.md", "registry", "sql", "reports"]


def test_pyproject_lists_every_subpackage_of_registry() -> None:
    # packages.find cannot see the mapped sql/ and reports/, so the list is explicit
    listed = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {
        ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "registry").rglob("__init__.py")
    }
    assert set(listed["packages"]) == found | {"registry._sql", "registry._reports"}
    assert listed["package-dir"] == {"registry._sql": "sql", "registry._reports": "reports"}


def test_sql_files_are_read_through_the_package() -> None:
    for name in SQL_FILES:
        expected = (ROOT / "sql" / name).read_text(encoding="utf-8")
        assert resources.sql_text(name.removesuffix(".sql")) == expected


def test_sql_names_lists_one_folder_sorted_without_suffix() -> None:
    checks = sorted(p.stem for p in (ROOT / "sql" / "checks").glob("*.sql"))
    assert resources.sql_names("checks") == checks
    assert resources.sql_names("queries/refresh") == sorted(
        p.stem for p in (ROOT / "sql" / "queries" / "refresh").glob("*.sql")
    )
    assert "__init__" not in resources.sql_names("")


def test_a_missing_data_file_says_the_installation_is_incomplete() -> None:
    with pytest.raises(PackageDataError, match=r"checks/no_such_rule\.sql is missing .*reinstall"):
        resources.sql_text("checks/no_such_rule")
    with pytest.raises(PackageDataError, match="no_such_folder is missing"):
        resources.sql_names("no_such_folder")
    assert issubclass(PackageDataError, RegistryError)  # the CLI prints it as one line


def test_the_default_study_is_the_shipped_file_and_loads() -> None:
    # the editable install reads the top-level reports/ itself (edits show without reinstall)
    assert DEFAULT_STUDY.samefile(ROOT / "reports" / "adjacent_refracture.toml")
    assert resources.default_study() == DEFAULT_STUDY
    spec = tomllib.loads(DEFAULT_STUDY.read_text(encoding="utf-8"))
    assert load_study().title == spec["title"]


def test_template_env_escapes_and_finds_package_templates() -> None:
    env = resources.template_env(resources.TEMPLATES, "templates")
    source, filename, _ = env.loader.get_source(env, "report.html.j2")  # type: ignore[union-attr]
    assert source == (TEMPLATE_DIR / "report.html.j2").read_text(encoding="utf-8")
    assert filename is not None and filename.endswith("report.html.j2")
    assert env.from_string("{{ x }}").render(x="<b>") == "&lt;b&gt;"
    with pytest.raises(jinja2.TemplateNotFound):
        env.get_template("missing.html.j2")
    assert env.get_template("history.html.j2").filename.endswith("history.html.j2")  # type: ignore[union-attr]
    assert resources.template_text("report.css").startswith(
        (TEMPLATE_DIR / "report.css").read_text(encoding="utf-8")[:40]
    )


def _run(args: list[str | Path], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from a copy of the sources (no build/ or egg-info left in the checkout)."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    source.mkdir()
    junk = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=junk)
        else:
            shutil.copy2(ROOT / name, source / name)
    dist = tmp / "dist"
    # an absolute path: a bare folder name would be looked up as a requirement on the index
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", dist, source], cwd=tmp)
    (built,) = dist.glob("vertebral_registry-*.whl")
    return built


def _install(wheel: Path, venv: Path) -> None:
    """A fresh virtualenv holding the wheel and only its declared dependencies, at the
    locked versions (-c: a dependency missing from pyproject.toml would fail the demo)."""
    _run([sys.executable, "-m", "venv", venv], cwd=venv.parent)
    pip = [venv / "bin" / "python", "-m", "pip", "--disable-pip-version-check", "-q"]
    _run([*pip, "install", "-c", ROOT / "requirements.lock", wheel], cwd=venv.parent)


def _clean_env() -> dict[str, str]:
    """The environment without anything that could point Python or the registry elsewhere."""
    drop = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("REGISTRY_")}


@pytest.mark.slow
def test_the_wheel_holds_every_sql_file_template_and_the_study(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"registry/_sql/{name}" for name in SQL_FILES} <= names
    assert {f"registry/report/templates/{name}" for name in TEMPLATES} <= names
    assert "registry/_reports/adjacent_refracture.toml" in names
    assert "registry/_reports/redcap/vertebral_registry_dictionary.csv" in names  # convert redcap
    assert "registry/_reports/redcap/vertebral_registry_mapping.toml" in names
    assert "registry/results.schema.json" in names  # the contract of results.json
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "registry").rglob("*.py")}
    assert modules <= names


def _check_installed_from_the_lock(venv: Path) -> None:
    """Nothing is read from the checkout, and every installed version is the locked one."""
    python = venv / "bin" / "python"
    where = _run(
        [python, "-c", "import importlib.resources as i, registry.resources as r; "
         "print(r.default_study()); print(i.files('registry._sql'))"],
        cwd=venv.parent, env=_clean_env(),
    )  # fmt: skip
    assert str(ROOT) not in where and where.count(str(venv / "lib")) == 2, where
    locked = {
        line.split("==")[0].lower().replace("_", "-"): line.split("==")[1].strip()
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    listed = _run([python, "-m", "pip", "list", "--format=json"], cwd=venv.parent)
    installed = {d["name"].lower().replace("_", "-"): d["version"] for d in json.loads(listed)}
    assert installed.pop("vertebral-registry") == registry.__version__
    unlocked = {
        f"{name}=={version}"
        for name, version in installed.items()
        if name not in {"pip", "setuptools"} and locked.get(name) != version
    }
    assert not unlocked, f"installed at versions requirements.lock does not name: {unlocked}"
    assert {"duckdb", "polars", "lifelines", "plotly", "jinja2"} <= set(installed)
    assert not {"pytest", "hypothesis", "mypy"} & set(installed)  # runtime dependencies only


@pytest.mark.slow
def test_the_installed_wheel_runs_demo_init_check_and_refresh_from_another_folder(
    wheel: Path, tmp_path: Path
) -> None:
    # one test, so that pytest -n 2 never builds the virtualenv twice
    venv = tmp_path / "venv"
    _install(wheel, venv)
    _check_installed_from_the_lock(venv)
    cli, env = venv / "bin" / "registry", _clean_env()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _run([cli, "demo", "--out", tmp_path / "demo", "--patients", "200"], elsewhere, env)
    results = json.loads((tmp_path / "demo" / "results.json").read_text(encoding="utf-8"))
    assert results["cohort"]["n"] > 150 and results["study"]["title"]  # 194 of 200 in the cohort
    assert "</html>" in (tmp_path / "demo" / "index.html").read_text(encoding="utf-8")

    assert "Initialised" in _run([cli, "init", "--db", "new.duckdb"], elsewhere, env)
    checks = _run([cli, "check", "--db", "new.duckdb"], elsewhere, env)
    assert all(name.removesuffix(".sql").split("/")[-1] in checks
               for name in SQL_FILES if name.startswith("checks/"))  # fmt: skip

    shutil.copytree(tmp_path / "demo" / "input", elsewhere / "inbox")
    env["REGISTRY_DB"] = "nightly.duckdb"
    _run([cli, "refresh", "--inbox", "inbox", "--publish", "pub"], elsewhere, env)
    assert (elsewhere / "pub" / "latest" / "index.html").is_file()
    assert "</html>" in (elsewhere / "pub" / "index.html").read_text(encoding="utf-8")
