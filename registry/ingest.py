"""Contract files -> validated rows in the registry, with quarantine, upsert and audit."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from registry.contract import LOAD_ORDER, SPECS, FileSpec, identifier_label, normalise_column
from registry.db import fetch_row, query, scalar
from registry.errors import IngestError
from registry.validate import QUARANTINE_SCHEMA, Validated, pseudonymise, validate_rows

SUFFIXES = (".csv", ".parquet")


@dataclass(frozen=True)
class IngestResult:
    """What one file did to the registry."""

    path: Path
    table: str
    batch_id: int
    rows_read: int
    inserted: int
    updated: int
    unchanged: int
    quarantined: int
    repeats: int = 0
    top_reasons: tuple[tuple[str, int], ...] = ()
    ignored_columns: tuple[str, ...] = ()
    same_as_batch: int | None = None
    warnings: tuple[str, ...] = field(default=())

    @property
    def changed(self) -> bool:
        """True when the file inserted or updated anything."""
        return bool(self.inserted or self.updated)


def discover_files(paths: Iterable[Path]) -> list[tuple[Path, FileSpec]]:
    """Expand folders and order contract files so that patients load first."""
    found: list[tuple[Path, FileSpec]] = []
    for path in paths:
        if path.is_dir():
            candidates = sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES)
            found.extend((p, spec) for p in candidates if (spec := _spec_or_none(p)))
        elif not path.exists():
            raise IngestError(f"{path}: no such file or folder")
        else:
            found.append((path, _spec_for(path)))
    return sorted(found, key=lambda item: (LOAD_ORDER.index(item[1].name), str(item[0])))


def _spec_or_none(path: Path) -> FileSpec | None:
    return SPECS.get(normalise_column(path.stem))


def _spec_for(path: Path) -> FileSpec:
    if path.suffix.lower() not in SUFFIXES:
        raise IngestError(f"{path}: only .csv and .parquet files can be ingested")
    spec = _spec_or_none(path)
    if spec is None:
        names = ", ".join(f"{n}.csv" for n in LOAD_ORDER)
        raise IngestError(f"{path}: the file name names no contract table; expected one of {names}")
    return spec


def read_header(path: Path) -> list[str]:
    """Column names of a file, as written (CSV header parsed with the csv module)."""
    try:
        if path.suffix.lower() == ".parquet":
            return list(pl.read_parquet_schema(path))
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return next(csv.reader(handle), [])
    except UnicodeDecodeError:
        raise IngestError(f"{path}: the file is not UTF-8 text; nothing of it was stored") from None
    except (pl.exceptions.PolarsError, OSError, csv.Error) as exc:
        raise IngestError(f"{path}: the file cannot be read ({exc}); nothing was stored") from None


def check_header(headers: list[str], spec: FileSpec, path: Path) -> tuple[str, ...]:
    """Refuse identifiers, repeated and missing columns; return the unknown extras."""
    flagged = [(c, label) for c in headers if (label := identifier_label(c))]
    if flagged:
        listed = ", ".join(f"'{c}' ({label})" for c, label in flagged)
        raise IngestError(
            f"{path}: column {listed} looks like a direct identifier; the registry holds "
            "pseudonyms only. Drop or pseudonymise the column and ingest again; nothing was stored"
        )
    normalised = [normalise_column(c) for c in headers]
    _refuse_repeated(path, normalised)
    missing = [c for c in spec.required if c not in normalised]
    if missing:
        raise IngestError(
            f"{path}: required column '{missing[0]}' is missing"
            + (f" (also {', '.join(missing[1:])})" if missing[1:] else "")
            + f"; {spec.name} needs {', '.join(spec.required)}. Nothing was stored"
        )
    return tuple(c for c in normalised if c not in spec.column_names)


def read_rows(
    con: duckdb.DuckDBPyConnection, path: Path, headers: list[str]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """All cells as text with a `line` column, and the malformed lines as quarantine rows."""
    if path.suffix.lower() == ".parquet":
        try:
            frame = pl.read_parquet(path).select(pl.all().cast(pl.String))
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise IngestError(
                f"{path}: the file cannot be read ({exc}); nothing was stored"
            ) from None
        return frame.with_row_index("line", offset=1), _no_rejects()
    columns = {f"c{i}": "VARCHAR" for i in range(len(headers))}
    try:
        con.execute("DROP TABLE IF EXISTS reject_errors; DROP TABLE IF EXISTS reject_scans")
        frame = query(con, "queries/ingest/read_csv", path=str(path), columns=columns)
        rejects = query(con, "queries/ingest/csv_rejects")
    except duckdb.Error:
        # DuckDB's fast reader gives up on some quoting; the csv module reads anything.
        return _read_csv_slowly(path, headers)
    _refuse_bad_encoding(path, rejects)
    frame = frame.rename(dict(zip(columns, headers, strict=True)))
    return frame.with_columns(_line_numbers(frame.height, rejects)), _shape_rejects(rejects)


def _read_csv_slowly(path: Path, headers: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Row by row with the csv module: the fallback for files DuckDB cannot parse."""
    good: list[list[str]] = []
    lines: list[int] = []
    bad: list[tuple[int, str, str]] = []
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            next(reader, None)
            start = reader.line_num + 1
            for row in reader:
                if len(row) == len(headers):
                    good.append(row)
                    lines.append(start)
                else:
                    found = f"Expected {len(headers)} fields, found {len(row)}"
                    bad.append((start, ",".join(row), found))
                start = reader.line_num + 1
    except UnicodeDecodeError:
        raise IngestError(f"{path}: the file is not UTF-8 text; nothing of it was stored") from None
    except csv.Error as exc:
        raise IngestError(f"{path}: the file cannot be read ({exc}); nothing was stored") from None
    frame = pl.DataFrame(good, schema=[f"c{i}" for i in range(len(headers))], orient="row")
    frame = frame.rename(dict(zip(frame.columns, headers, strict=True)))
    rejects = pl.DataFrame(
        bad,
        schema={"line": pl.Int64, "csv_line": pl.String, "error_message": pl.String},
        orient="row",
    )
    return frame.with_columns(pl.Series("line", lines, dtype=pl.Int64)), _shape_rejects(rejects)


def _line_numbers(height: int, rejects: pl.DataFrame) -> pl.Series:
    """File line of each well-formed row: the lines after the header not rejected, in order.

    Exact for one record per line; a quoted value spanning lines shifts the later numbers.
    """
    last = int(rejects.get_column("line").max() or 0)  # type: ignore[arg-type]
    lines = pl.int_range(2, max(last, height + rejects.height) + 2, eager=True, dtype=pl.Int64)
    kept = lines.filter(~lines.is_in(rejects.get_column("line").implode()))
    return kept.head(height).alias("line")


def _refuse_bad_encoding(path: Path, rejects: pl.DataFrame) -> None:
    bad = rejects.filter(pl.col("error_type") == "INVALID ENCODING")
    if bad.height:
        first = int(bad.get_column("line").min())  # type: ignore[arg-type]
        raise IngestError(
            f"{path}: the file is not UTF-8 text (first at line {first}); save it as UTF-8 "
            "and ingest again. Nothing of it was stored"
        )


def _no_rejects() -> pl.DataFrame:
    return pl.DataFrame(schema=QUARANTINE_SCHEMA)


def _shape_rejects(rejects: pl.DataFrame) -> pl.DataFrame:
    """Malformed CSV lines as quarantine rows (rule bad_row_shape)."""
    return rejects.select(
        "line",
        pl.lit(None, dtype=pl.String).alias("column_name"),
        pl.lit("bad_row_shape").alias("rule"),
        pl.col("csv_line").alias("value"),
        pl.format("the line is malformed: {}", pl.col("error_message")).alias("detail"),
        pl.struct(pl.col("csv_line")).struct.json_encode().alias("raw_row"),
    )


def _refuse_repeated(path: Path, headers: list[str]) -> None:
    normalised = [normalise_column(c) for c in headers]
    repeated = sorted({n for n in normalised if normalised.count(n) > 1})
    if repeated:
        raise IngestError(
            f"{path}: column '{repeated[0]}' appears more than once; nothing was stored"
        )


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def prepare_file(
    con: duckdb.DuckDBPyConnection, path: Path, spec: FileSpec, *, pseudonym_key: str | None
) -> tuple[pl.DataFrame, pl.DataFrame, tuple[str, ...]]:
    """Check the header, read and pseudonymise one file: (rows, malformed lines, extras)."""
    headers = read_header(path)
    extras = check_header(headers, spec, path)
    raw, rejects = read_rows(con, path, headers)
    raw = raw.rename({c: normalise_column(c) for c in headers}).drop(extras)
    if pseudonym_key:
        ids = raw.get_column("patient_id").str.strip_chars()
        raw = raw.with_columns(pseudonymise(ids, pseudonym_key).alias("patient_id"))
    return raw, rejects, extras


def ingest_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    spec: FileSpec,
    *,
    as_of: dt.date,
    pseudonym_key: str | None = None,
) -> IngestResult:
    """Load one file in one transaction; a refused file is recorded and re-raised."""
    started = dt.datetime.now()
    sha = file_sha256(path) if path.is_file() else None
    try:
        raw, rejects, extras = prepare_file(con, path, spec, pseudonym_key=pseudonym_key)
    except IngestError as exc:
        _record_refusal(con, path, spec, sha, started, str(exc))
        raise
    patients = query(con, "queries/ingest/known_patients")
    checked = validate_rows(raw, spec, as_of=as_of, patients=patients, rejects=rejects)
    rows_read = raw.height + rejects.height
    return _store(con, path, spec, checked, rows_read, sha=sha, started=started, extras=extras)


def _record_refusal(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    spec: FileSpec,
    sha: str | None,
    started: dt.datetime,
    message: str,
) -> None:
    con.execute(
        "INSERT INTO ingest_batches (file_path, file_name, table_name, sha256, started_at, "
        "finished_at, status, message) VALUES (?, ?, ?, ?, ?, ?, 'refused', ?)",
        [str(path), path.name, spec.name, sha, started, dt.datetime.now(), message],
    )


def _store(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    spec: FileSpec,
    checked: Validated,
    rows_read: int,
    *,
    sha: str | None,
    started: dt.datetime,
    extras: tuple[str, ...],
) -> IngestResult:
    previous = fetch_row(
        con,
        "SELECT max(batch_id) FROM ingest_batches WHERE sha256 = ? AND status = 'loaded'",
        [sha],
    )
    con.execute("BEGIN TRANSACTION")
    try:
        batch_id = _open_batch(con, path, spec, sha, started)
        _write_quarantine(con, batch_id, path, checked.quarantine)
        inserted, updated, unchanged = upsert(con, spec, checked.rows, batch_id=batch_id)
        result = IngestResult(
            path=path,
            table=spec.name,
            batch_id=batch_id,
            rows_read=rows_read,
            inserted=inserted,
            updated=updated,
            unchanged=unchanged + checked.repeats,
            quarantined=checked.quarantine.height,
            repeats=checked.repeats,
            top_reasons=top_reasons(checked.quarantine),
            ignored_columns=extras,
            same_as_batch=previous[0] if previous else None,
        )
        _close_batch(con, result)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return result


def _open_batch(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    spec: FileSpec,
    sha: str | None,
    started: dt.datetime,
) -> int:
    row = fetch_row(
        con,
        "INSERT INTO ingest_batches (file_path, file_name, table_name, sha256, started_at, status) "
        "VALUES (?, ?, ?, ?, ?, 'loaded') RETURNING batch_id",
        [str(path), path.name, spec.name, sha, started],
    )
    assert row is not None
    return int(row[0])


def _close_batch(con: duckdb.DuckDBPyConnection, r: IngestResult) -> None:
    note = f"ignored columns: {', '.join(r.ignored_columns)}" if r.ignored_columns else None
    con.execute(
        "UPDATE ingest_batches SET rows_read = ?, rows_inserted = ?, rows_updated = ?, "
        "rows_unchanged = ?, rows_quarantined = ?, finished_at = ?, message = ? WHERE batch_id = ?",
        [
            r.rows_read,
            r.inserted,
            r.updated,
            r.unchanged,
            r.quarantined,
            dt.datetime.now(),
            note,
            r.batch_id,
        ],
    )


def _write_quarantine(
    con: duckdb.DuckDBPyConnection, batch_id: int, path: Path, rows: pl.DataFrame
) -> None:
    if rows.is_empty():
        return
    staged = rows.with_columns(
        pl.lit(batch_id, dtype=pl.Int64).alias("batch_id"), pl.lit(path.name).alias("file_name")
    )
    con.register("staged_quarantine", staged)
    try:
        con.execute(
            "INSERT INTO quarantine (batch_id, file_name, line, column_name, rule, value, detail, "
            "raw_row) SELECT batch_id, file_name, line, column_name, rule, value, detail, raw_row "
            "FROM staged_quarantine"
        )
    finally:
        con.unregister("staged_quarantine")


def top_reasons(quarantine: pl.DataFrame, limit: int = 5) -> tuple[tuple[str, int], ...]:
    """The most frequent (column rule, count) pairs among quarantined lines."""
    if quarantine.is_empty():
        return ()
    counts = (
        quarantine.group_by("column_name", "rule")
        .len()
        .sort(["len", "column_name", "rule"], descending=[True, False, False])
        .head(limit)
    )
    return tuple(
        (f"{r['rule']} in {r['column_name']}", int(r["len"])) for r in counts.iter_rows(named=True)
    )


def upsert(
    con: duckdb.DuckDBPyConnection, spec: FileSpec, rows: pl.DataFrame, *, batch_id: int
) -> tuple[int, int, int]:
    """Insert new keys, update changed values (old ones to audit); return the three counts.

    The SQL is built here because it names the table and columns of the contract;
    every identifier comes from registry.contract, never from the input file.
    """
    if rows.is_empty():
        return 0, 0, 0
    incoming = rows.drop("line")
    con.register("incoming", incoming)
    try:
        if not scalar(con, f"SELECT count(*) FROM (SELECT 1 FROM {spec.name} LIMIT 1)"):
            con.execute(f"INSERT INTO {spec.name} SELECT * FROM incoming")  # first load
            return incoming.height, 0, 0
        compared = con.sql(_compare_sql(spec)).pl()
        new = compared.filter(pl.col("__is_new"))
        changed = compared.filter(~pl.col("__is_new") & pl.col("__changed"))
        if new.height:
            con.execute(f"INSERT INTO {spec.name} SELECT i.* FROM incoming i " + _anti_join(spec))
        if changed.height:
            _apply_updates(con, spec, changed, batch_id)
    finally:
        con.unregister("incoming")
    return new.height, changed.height, compared.height - new.height - changed.height


def _anti_join(spec: FileSpec) -> str:
    on = " AND ".join(f"t.{k} = i.{k}" for k in spec.key)
    return f"WHERE NOT EXISTS (SELECT 1 FROM {spec.name} t WHERE {on})"


def _compare_sql(spec: FileSpec) -> str:
    on = " AND ".join(f"t.{k} = i.{k}" for k in spec.key)
    diffs = [f"(t.{c} IS DISTINCT FROM i.{c})" for c in spec.value_columns] or ["false"]
    olds = [f"t.{c}::VARCHAR AS __old_{c}" for c in spec.value_columns]
    flags = [f"(t.{c} IS DISTINCT FROM i.{c}) AS __diff_{c}" for c in spec.value_columns]
    return (
        f"SELECT i.*, t.{spec.key[0]} IS NULL AS __is_new, ({' OR '.join(diffs)}) AS __changed"
        + "".join(f", {x}" for x in olds + flags)
        + f" FROM incoming i LEFT JOIN {spec.name} t ON {on}"
    )


def _apply_updates(
    con: duckdb.DuckDBPyConnection, spec: FileSpec, changed: pl.DataFrame, batch_id: int
) -> None:
    key_text = pl.concat_str(
        [pl.format(f"{k}={{}}", pl.col(k).cast(pl.String)) for k in spec.key], separator=", "
    )
    audit = pl.concat(
        [
            changed.filter(pl.col(f"__diff_{c}")).select(
                key_text.alias("row_key"),
                pl.lit(c).alias("column_name"),
                pl.col(f"__old_{c}").alias("old_value"),
                pl.col(c).cast(pl.String).alias("new_value"),
            )
            for c in spec.value_columns
        ]
    )
    con.register("audit_rows", audit)
    con.register("updates", changed.select(spec.column_names))
    try:
        con.execute(
            "INSERT INTO audit (batch_id, table_name, row_key, column_name, old_value, "
            "new_value, changed_at) SELECT ?, ?, row_key, column_name, old_value, new_value, "
            "current_timestamp FROM audit_rows",
            [batch_id, spec.name],
        )
        sets = ", ".join(f"{c} = u.{c}" for c in spec.value_columns)
        on = " AND ".join(f"{spec.name}.{k} = u.{k}" for k in spec.key)
        con.execute(f"UPDATE {spec.name} SET {sets} FROM updates u WHERE {on}")
    finally:
        con.unregister("audit_rows")
        con.unregister("updates")


def ingest_paths(
    con: duckdb.DuckDBPyConnection,
    paths: Iterable[Path],
    *,
    as_of: dt.date,
    pseudonym_key: str | None = None,
) -> list[IngestResult | IngestError]:
    """Ingest files and folders in dependency order; a refusal does not stop the others."""
    outcomes: list[IngestResult | IngestError] = []
    for path, spec in discover_files(paths):
        try:
            outcomes.append(ingest_file(con, path, spec, as_of=as_of, pseudonym_key=pseudonym_key))
        except IngestError as exc:
            outcomes.append(exc)
    return outcomes
