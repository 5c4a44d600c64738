"""Pure row validation: raw string rows of a contract file -> typed rows + quarantine."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from registry.ingest.contract import BOOL_FALSE, BOOL_TRUE, Column, FileSpec
from registry.pseudonyms import pseudonym

# Order in which rules are reported when a row breaks several.
RULES: tuple[str, ...] = (
    "bad_row_shape",
    "missing_value",
    "excel_error",
    "bad_type",
    "bad_date",
    "bad_enum",
    "out_of_range",
    "future_date",
    "date_before_birth",
    "unknown_patient",
    "duplicate_key_conflict",
)
QUARANTINE_SCHEMA = {
    "line": pl.Int64,
    "column_name": pl.String,
    "rule": pl.String,
    "value": pl.String,
    "detail": pl.String,
    "raw_row": pl.String,
}
SCORE_RANGES = {"VAS": (0.0, 10.0), "ODI": (0.0, 100.0)}
# an ISO date, or a timestamp at midnight (a Parquet TIMESTAMP column, an Excel export)
ISO_DATE = r"^\d{4}-\d{2}-\d{2}([ T]00:00(:00(\.0+)?)?)?$"
# the error values Excel shows in a cell (and writes into a CSV export) instead of a value
EXCEL_ERROR = (
    r"^#(N/A|NULL!|DIV/0!|VALUE!|REF!|NAME\?|NUM!|SPILL!|CALC!|GETTING_DATA|FIELD!|BLOCKED!"
    r"|BUSY!|CONNECT!|UNKNOWN!|PYTHON!|EXTERNAL!)$"
)


@dataclass(frozen=True)
class Check:
    """One rule on one column: rows where `failing` is true break it."""

    column: str
    rule: str
    failing: pl.Expr
    text: str


def pseudonymise(ids: pl.Series, key: str) -> pl.Series:
    """Replace identifiers by a keyed HMAC-SHA256 (hex, 32 characters), stable across runs."""
    uniques = ids.drop_nulls().unique().to_list()
    mapping = dict(zip(uniques, [pseudonym(key, v) for v in uniques], strict=True))
    return ids.replace_strict(mapping, default=None, return_dtype=pl.String)


def clean_strings(raw: pl.DataFrame, spec: FileSpec) -> pl.DataFrame:
    """Strip blanks, turn empty cells into nulls and add missing optional columns."""
    exprs = [
        pl.col(c).cast(pl.String).str.strip_chars().replace("", None).alias(c)
        if c in raw.columns
        else pl.lit(None, dtype=pl.String).alias(c)
        for c in spec.column_names
    ]
    return raw.select(pl.col("line").cast(pl.Int64), *exprs)


def parse_column(col: Column) -> pl.Expr:
    """Expression turning the raw string of a column into its typed value (null if invalid)."""
    s = pl.col(col.name)
    if col.kind == "int":
        # a whole number written as a float (1950.0: pandas writes an int column with
        # gaps as float64) is that number; 1950.5 is not a whole number
        number = s.cast(pl.Float64, strict=False)
        whole = number.is_finite() & (number == number.floor()) & (number.abs() < 2**53)
        return s.cast(pl.Int64, strict=False).fill_null(pl.when(whole).then(number).cast(pl.Int64))
    if col.kind == "float":
        value = s.cast(pl.Float64, strict=False)
        return pl.when(value.is_finite()).then(value)
    if col.kind == "date":
        parsed = s.str.slice(0, 10).str.strptime(pl.Date, "%Y-%m-%d", strict=False)
        return pl.when(s.str.contains(ISO_DATE)).then(parsed)
    if col.kind == "bool":
        low = s.str.to_lowercase()
        return pl.when(low.is_in(BOOL_TRUE)).then(True).when(low.is_in(BOOL_FALSE)).then(False)
    if col.kind == "enum":
        canonical = {v.lower(): v for v in col.values}
        return s.str.to_lowercase().replace_strict(canonical, default=None, return_dtype=pl.String)
    return s


def _listed(values: tuple[str, ...]) -> str:
    return f"{values[0]}-{values[-1]}" if len(values) > 8 else ", ".join(values)


def column_checks(col: Column, typed: str, *, as_of: dt.date) -> list[Check]:
    """The rules one column's values must meet (typed values are in column `typed`)."""
    raw, value = pl.col(col.name), pl.col(typed)
    error = raw.str.contains(EXCEL_ERROR)
    bad_parse = raw.is_not_null() & value.is_null() & ~error
    checks: list[Check] = []
    if col.required:
        checks.append(Check(col.name, "missing_value", raw.is_null(), "is required"))
    checks.append(Check(col.name, "excel_error", error, "holds an Excel error, not a value"))
    kind_rule = {"date": "bad_date", "enum": "bad_enum"}.get(col.kind, "bad_type")
    kind_text = {
        "date": "is not a valid ISO date (YYYY-MM-DD)",
        "enum": f"must be one of {_listed(col.values)}",
        "int": "is not a whole number",
        "float": "is not a number",
        "bool": "is not a boolean (true/false/1/0/yes/no)",
    }
    if col.kind != "str":
        checks.append(Check(col.name, kind_rule, bad_parse, kind_text[col.kind]))
    if col.low is not None and col.high is not None:
        out = (value < col.low) | (value > col.high)
        text = f"is outside {col.low:g}-{col.high:g}"
        checks.append(Check(col.name, "out_of_range", out, text))
    if col.kind == "date":
        checks.append(Check(col.name, "future_date", value > as_of, f"is after {as_of}"))
    return checks


def table_checks(spec: FileSpec, *, as_of: dt.date) -> list[Check]:
    """Rules that involve more than one column or other tables."""
    checks: list[Check] = []
    if spec.name == "patients":
        late = pl.col("birth_year__t") > as_of.year
        checks.append(Check("birth_year", "future_date", late, f"is after {as_of.year}"))
    if spec.name == "assessments":
        for instrument, (low, high) in SCORE_RANGES.items():
            out = (pl.col("instrument__t") == instrument) & (
                (pl.col("score__t") < low) | (pl.col("score__t") > high)
            )
            text = f"is outside {low:g}-{high:g} for {instrument}"
            checks.append(Check("score", "out_of_range", out, text))
    if spec.needs_patient:
        unknown = pl.col("patient_id").is_not_null() & pl.col("__birth_year").is_null()
        checks.append(Check("patient_id", "unknown_patient", unknown, "is not in patients"))
    if spec.date_column:
        early = pl.col(f"{spec.date_column}__t").dt.year() < pl.col("__birth_year")
        checks.append(Check(spec.date_column, "date_before_birth", early, "is before birth"))
    return checks


def violations(frame: pl.DataFrame, checks: list[Check]) -> pl.DataFrame:
    """Long frame of (line, column_name, rule, value, detail) for every broken rule."""
    parts = [
        frame.filter(check.failing.fill_null(False)).select(
            "line",
            pl.lit(check.column).alias("column_name"),
            pl.lit(check.rule).alias("rule"),
            pl.col(check.column).alias("value"),
            pl.format(
                "{} {} (got {})",
                pl.lit(check.column),
                pl.lit(check.text),
                pl.format("'{}'", pl.col(check.column)).fill_null("an empty cell"),
            ).alias("detail"),
        )
        for check in checks
    ]
    empty = pl.DataFrame(schema={k: QUARANTINE_SCHEMA[k] for k in list(QUARANTINE_SCHEMA)[:5]})
    return pl.concat([empty, *parts], how="vertical_relaxed")


def first_violation_per_line(found: pl.DataFrame, raw: pl.DataFrame) -> pl.DataFrame:
    """One quarantine row per line: its first broken rule, all of them in `detail`."""
    rank = {rule: i for i, rule in enumerate(RULES)}
    ordered = found.with_columns(
        pl.col("rule").replace_strict(rank, return_dtype=pl.Int32).alias("_rank")
    ).sort("line", "_rank")
    grouped = ordered.group_by("line", maintain_order=True).agg(
        pl.col("column_name").first(),
        pl.col("rule").first(),
        pl.col("value").first(),
        pl.col("detail").str.join("; "),
    )
    raw_json = raw.join(grouped.select("line"), on="line", how="semi").select(
        "line", pl.struct(pl.exclude("line")).struct.json_encode().alias("raw_row")
    )
    return grouped.join(raw_json, on="line", how="left").select(list(QUARANTINE_SCHEMA))


def conflicting_keys(rows: pl.DataFrame, spec: FileSpec) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split rows into (unique rows, lines whose key repeats with other values)."""
    key = list(spec.key)
    repeated = rows.select(pl.struct(key).is_duplicated()).to_series()
    # only the (usually few) rows whose key repeats need the costly comparison of values
    single, doubles = rows.filter(~repeated), rows.filter(repeated)
    distinct = doubles.unique(subset=list(spec.column_names), keep="first", maintain_order=True)
    keys = distinct.filter(pl.len().over(key) > 1).select(key).unique()
    conflicted = doubles.join(keys, on=key, how="semi")
    clean = pl.concat([single, distinct.join(keys, on=key, how="anti")]).sort("line")
    detail = pl.format("{} repeats with different values in this file", pl.lit(", ".join(spec.key)))
    found = conflicted.select(
        "line",
        pl.lit(spec.key[-1]).alias("column_name"),
        pl.lit("duplicate_key_conflict").alias("rule"),
        pl.col(spec.key[-1]).cast(pl.String).alias("value"),
        detail.alias("detail"),
    )
    return clean, found


def check_rows(
    raw: pl.DataFrame, spec: FileSpec, *, as_of: dt.date, patients: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Every rule that looks at one row at a time (all but duplicate keys): the typed rows
    that passed, and one quarantine row per line that broke a rule. `patients` holds the
    known (patient_id, birth_year). Rows are independent, so a file can be checked in
    chunks of lines with the same result."""
    strings = clean_strings(raw, spec)
    known = patients.select(
        pl.col("patient_id").cast(pl.String),
        pl.col("birth_year").cast(pl.Int64).alias("__birth_year"),
    )
    parsed = strings.with_columns(parse_column(c).alias(f"{c.name}__t") for c in spec.columns)
    if spec.name == "patients":
        parsed = parsed.with_columns(pl.col("birth_year__t").alias("__birth_year"))
    else:
        # narrow the known patients to this chunk's first: a semi join hashes the chunk's
        # few ids, where a left join on all known patients would hash millions per chunk
        ids = strings.select(pl.col("patient_id").drop_nulls().unique())
        known = known.join(ids, on="patient_id", how="semi")
        parsed = parsed.join(known, on="patient_id", how="left", maintain_order="left")
    checks = [
        check for c in spec.columns for check in column_checks(c, f"{c.name}__t", as_of=as_of)
    ] + table_checks(spec, as_of=as_of)
    found = violations(parsed, checks)
    typed = parsed.join(found.select("line").unique(), on="line", how="anti").select(
        "line", *(pl.col(f"{c}__t").alias(c) for c in spec.column_names)
    )
    return typed, first_violation_per_line(found, strings)
