"""`registry convert redcap`: read the export, dictionary and mapping, write the contract
folder. The translation itself is registry.convert.redcap (pure frames)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from registry.convert.redcap import (
    Field,
    TableMap,
    convert_table,
    detect_labels,
    parse_choices,
    unmapped_instruments,
)
from registry.convert.redcap_design import DICTIONARY_COLUMNS
from registry.errors import ConfigError, ConvertError
from registry.ingest.contract import LOAD_ORDER, SPECS

SHIPPED = "redcap/vertebral_registry_dictionary.csv", "redcap/vertebral_registry_mapping.toml"
EXPORT_HINT = (
    "export the records from REDCap as CSV with raw variable names as headers "
    "(Data Exports: 'CSV / Microsoft Excel (raw data)', or the API with rawOrLabelHeaders=raw)"
)


@dataclass(frozen=True)
class Conversion:
    """What `registry convert redcap` wrote, and what it read the values as."""

    out_dir: Path
    rows: dict[str, int]  # table -> rows written (0: no file written)
    labels: bool
    unmapped: dict[str, int] = field(default_factory=dict)  # repeating instrument -> rows


def _read_csv(path: Path, what: str) -> pl.DataFrame:
    if not path.is_file():
        raise ConvertError(f"{path}: no such {what} file; check the path and run again")
    try:
        return pl.read_csv(path, infer_schema=False, encoding="utf8")
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConvertError(
            f"{path}: the {what} cannot be read as UTF-8 CSV ({first}); nothing was written"
        ) from None


def read_dictionary(path: Path) -> dict[str, Field]:
    """The fields of a REDCap data dictionary CSV, by name."""
    frame = _read_csv(path, "data dictionary")
    missing = [c for c in DICTIONARY_COLUMNS if c not in frame.columns]
    if missing:
        raise ConvertError(
            f"{path}: not a REDCap data dictionary: column '{missing[0]}' is missing "
            f"({len(missing)} of the 18 columns missing); download the project's dictionary "
            "from REDCap (Project Setup > Data Dictionary) and pass it with --dictionary"
        )
    fields: dict[str, Field] = {}
    for row in frame.fill_null("").iter_rows(named=True):
        name = row["Variable / Field Name"].strip()
        if name in fields:
            raise ConvertError(f"{path}: field '{name}' is defined twice; REDCap field names "
                               "are unique in a project: fix the dictionary")  # fmt: skip
        fields[name] = Field(
            name=name,
            form=row["Form Name"].strip(),
            kind=row["Field Type"].strip().lower(),
            choices=parse_choices(row["Choices, Calculations, OR Slider Labels"]),
            validation=row["Text Validation Type OR Show Slider Number"].strip().lower(),
        )
    return fields


def read_mapping(path: Path, fields: dict[str, Field]) -> list[TableMap]:
    """The mapping's tables, each checked against the contract and the dictionary."""
    if not path.is_file():
        raise ConfigError(f"{path}: no such mapping file; check the path and run again")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{path}: not a valid TOML mapping ({exc}); fix it and run again"
        ) from None
    unknown = [t for t in data if t not in SPECS]
    if unknown:
        raise ConfigError(f"{path}: [{unknown[0]}] is not a contract table; the tables are "
                          f"{', '.join(LOAD_ORDER)}")  # fmt: skip
    return [_table_map(path, t, data[t], fields) for t in LOAD_ORDER if t in data]


def _table_map(path: Path, table: str, entry: Any, fields: dict[str, Field]) -> TableMap:
    where = f"{path}: [{table}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("form"), str):
        raise ConfigError(f'{where} needs form = "<REDCap instrument>" and a [{table}.fields] '
                          "table; see the shipped mapping")  # fmt: skip
    mapped = entry.get("fields", {})
    spec = SPECS[table]
    for column, name in mapped.items() if isinstance(mapped, dict) else [("fields", None)]:
        if column not in spec.column_names:
            raise ConfigError(f"{where}.fields: '{column}' is not a column of {table}; its "
                              f"columns are {', '.join(spec.column_names)}")  # fmt: skip
        if not isinstance(name, str) or name not in fields:
            raise ConfigError(f"{where}.fields: {column} = {name!r} is not a field of the data "
                              "dictionary; correct the field name or the --dictionary")  # fmt: skip
    absent = [c for c in spec.required if c not in mapped]
    if absent:
        raise ConfigError(f"{where}.fields: required column '{absent[0]}' is not mapped; map "
                          f"every one of {', '.join(spec.required)}")  # fmt: skip
    ordered = {c: mapped[c] for c in spec.column_names if c in mapped}
    return TableMap(table=table, form=entry["form"], fields=ordered)


def read_records(path: Path, tables: list[TableMap], fields: dict[str, Field]) -> pl.DataFrame:
    """The records export as text, refused when a mapped field's column is missing."""
    records = _read_csv(path, "records export")
    if records.height == 0:
        raise ConvertError(f"{path}: the export has a header but no records; export the "
                           "project's records again. Nothing was written")  # fmt: skip
    for table in tables:
        for name in table.fields.values():
            absent = [c for c in fields[name].export_columns() if c not in records.columns]
            if absent:
                raise ConvertError(
                    f"{path}: column '{absent[0]}' (field {name}, for {table.table}) is not in "
                    f"the export; {EXPORT_HINT}, including every field of the mapping. "
                    "Nothing was written"
                )
    return records


def convert_frames(
    records: pl.DataFrame, tables: list[TableMap], fields: dict[str, Field], *, values: str
) -> tuple[dict[str, pl.DataFrame], bool]:
    """Every mapped table, and whether the values were read as labels."""
    labels = (
        detect_labels(records, list(fields.values())) if values == "auto" else values == "label"
    )
    return {t.table: convert_table(records, t, fields, labels=labels) for t in tables}, labels


def convert_redcap(records_path: Path, dictionary: Path | None, mapping: Path | None,
                   out_dir: Path, *, values: str = "auto") -> Conversion:  # fmt: skip
    """Convert a REDCap records export into a contract folder that `registry ingest` reads."""
    from registry.resources import redcap_file

    fields = read_dictionary(dictionary or redcap_file(SHIPPED[0]))
    tables = read_mapping(mapping or redcap_file(SHIPPED[1]), fields)
    records = read_records(records_path, tables, fields)
    frames, labels = convert_frames(records, tables, fields, values=values)
    _refuse_stale(out_dir, frames)
    out_dir.mkdir(parents=True, exist_ok=True)
    for table, frame in frames.items():
        if frame.height:
            frame.write_csv(out_dir / f"{table}.csv")
    rows = {t: f.height for t, f in frames.items()}
    return Conversion(out_dir, rows, labels, unmapped_instruments(records, tables))


def _refuse_stale(out_dir: Path, frames: dict[str, pl.DataFrame]) -> None:
    """A table without rows writes no file (ingest refuses header-only files), so an older
    file of that table in the folder would be ingested as if it were current."""
    stale = [out_dir / f"{t}.csv" for t, f in frames.items() if not f.height]
    stale = [p for p in stale if p.exists()]
    if stale:
        raise ConvertError(
            f"{stale[0]}: the export has no rows for this table, but the folder holds an older "
            "file of it; remove the file or choose an empty --out folder. Nothing was written"
        )


def conversion_lines(done: Conversion) -> list[str]:
    """What the command prints: files written, how values were read, what comes next."""
    written = [f"{t}.csv ({n:,} row{'s' * (n != 1)})" for t, n in done.rows.items() if n]
    empty = [t for t, n in done.rows.items() if not n]
    lines = [f"Wrote {len(written)} files to {done.out_dir}: {', '.join(written) or 'none'}."]
    lines.append("Values were read as " + ("labels." if done.labels else "raw codes."))
    if empty:
        lines.append(f"No rows (no file written): {', '.join(empty)}.")
    if done.unmapped:
        listed = ", ".join(f"{k} ({v:,} rows)" for k, v in done.unmapped.items())
        lines.append(f"Not converted, no table maps them: repeating instrument(s) {listed}.")
    lines.append(
        f"Next: registry ingest {done.out_dir}  (a quarantined row's file and line lead to "
        "its redcap_source column: record, event, instrument, instance)"
    )
    return lines
