"""Rule-breaking rows injected into the contract tables, one broken rule per row."""

from __future__ import annotations

import numpy as np
import polars as pl

from registry.ingest.rules import RULES
from registry.synth.params import TABLES

# The ingest row rules a synthetic row can break on purpose (in the order they cycle);
# malformed lines and dates before birth are not injected.
DIRTY_RULES = tuple(r for r in RULES if r not in ("bad_row_shape", "date_before_birth"))
# The column each rule breaks, per file (rules without a column here do not apply).
DIRTY_COLUMN: dict[str, dict[str, str]] = {
    "patients": {
        "missing_value": "sex",
        "bad_type": "birth_year",
        "bad_enum": "sex",
        "out_of_range": "prior_vertebral_fractures",
        "duplicate_key_conflict": "birth_year",
    },
    "index_fractures": {
        "missing_value": "etiology",
        "bad_type": "genant_grade",
        "bad_date": "diagnosed_on",
        "bad_enum": "level",
        "out_of_range": "genant_grade",
        "future_date": "diagnosed_on",
        "unknown_patient": "patient_id",
        "duplicate_key_conflict": "genant_grade",
    },
    "procedures": {
        "missing_value": "procedure",
        "bad_type": "cement_volume_ml",
        "bad_date": "performed_on",
        "bad_enum": "cement_leakage",
        "out_of_range": "cement_volume_ml",
        "future_date": "performed_on",
        "unknown_patient": "patient_id",
        "duplicate_key_conflict": "cement_volume_ml",
    },
    "assessments": {
        "missing_value": "score",
        "bad_type": "score",
        "bad_date": "assessed_on",
        "bad_enum": "instrument",
        "out_of_range": "score",
        "future_date": "assessed_on",
        "unknown_patient": "patient_id",
        "duplicate_key_conflict": "score",
    },
    "fractures": {
        "missing_value": "detected_on",
        "bad_date": "detected_on",
        "bad_enum": "detection",
        "future_date": "detected_on",
        "unknown_patient": "patient_id",
        "duplicate_key_conflict": "detection",
    },
    "follow_up": {
        "missing_value": "status",
        "bad_date": "contact_on",
        "bad_enum": "status",
        "future_date": "contact_on",
        "unknown_patient": "patient_id",
        "duplicate_key_conflict": "status",
    },
}
BAD_ENUM = {
    "sex": "X",
    "level": "T13",
    "cement_leakage": "lots",
    "instrument": "NRS",
    "detection": "xray",
    "status": "gone",
}
OUT_OF_RANGE = {"prior_vertebral_fractures": "-2", "genant_grade": "7", "cement_volume_ml": "99"}


def make_dirty(
    tables: dict[str, pl.DataFrame], rng: np.random.Generator, dirty: float
) -> tuple[dict[str, pl.DataFrame], dict[str, dict[str, int]]]:
    """All-string tables with ~dirty x rows distinct rows breaking one rule each."""
    out, counts = {}, {}
    for name in TABLES:
        out[name], counts[name] = _dirty_table(name, tables[name], rng, dirty)
    return out, counts


def _dirty_table(
    name: str, frame: pl.DataFrame, rng: np.random.Generator, dirty: float
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Corrupt distinct rows of one table, cycling over the rules that apply to it."""
    rules = [r for r in DIRTY_RULES if r in DIRTY_COLUMN[name]]
    chosen = rng.permutation(frame.height)[: round(dirty * frame.height)]
    strings = frame.select(pl.all().cast(pl.String))
    extra = []
    for i, rule in enumerate(rules):
        rows = np.sort(chosen[i :: len(rules)])
        column = DIRTY_COLUMN[name][rule]
        if rule == "duplicate_key_conflict":
            extra.append(_conflicting_copies(frame[rows], column).select(pl.all().cast(pl.String)))
            continue
        bad = _corrupt(rule, column, strings[rows])
        strings = strings.with_columns(strings[column].scatter(rows, bad))
    counts = {rule: len(chosen[i :: len(rules)]) for i, rule in enumerate(rules)}
    return pl.concat([strings, *extra]), counts


def _corrupt(rule: str, column: str, rows: pl.DataFrame) -> pl.Series:
    """Values of `column` in `rows` that break `rule` (and nothing else)."""
    s = rows[column]
    if rule == "missing_value":
        return pl.Series([None] * len(s), dtype=pl.String)
    if rule == "bad_type":
        return {
            "birth_year": s.str.slice(0, 2) + "x" + s.str.slice(3),
            "genant_grade": "II" + s,
            "cement_volume_ml": s + "ml",
            "score": pl.Series(["abc"] * len(s)),
        }[column]
    if rule == "bad_date":
        day = s.str.to_date("%Y-%m-%d")
        slashed = day.dt.strftime("%d/%m/%Y")
        feb30 = s.str.slice(0, 4) + "-02-30"
        return pl.select(
            pl.when(pl.int_range(len(s)) % 2 == 0).then(slashed).otherwise(feb30)
        ).to_series()
    if rule == "future_date":  # a hundred years on keeps dates of one patient distinct
        return (s.str.slice(0, 4).cast(pl.Int64) + 100).cast(pl.String) + s.str.slice(4)
    if rule == "unknown_patient":
        return s + "x"
    if rule == "bad_enum":
        return pl.Series([BAD_ENUM[column]] * len(s))
    if column == "score":  # out of range for its own instrument
        return pl.select(
            pl.when(rows["instrument"] == "VAS").then(pl.lit("14")).otherwise(pl.lit("140"))
        ).to_series()
    return pl.Series([OUT_OF_RANGE[column]] * len(s))


def _conflicting_copies(rows: pl.DataFrame, column: str) -> pl.DataFrame:
    """Copies of typed rows with the same natural key and a different, valid `column`."""
    c = pl.col(column)
    change = {
        "birth_year": c + 1,
        "genant_grade": c % 3 + 1,
        "cement_volume_ml": (c + 0.5).round(1),
        "score": pl.when(c >= 5).then(c - 1).otherwise(c + 1).round(1),
        "detection": pl.when(c == "clinical")
        .then(pl.lit("radiographic"))
        .otherwise(pl.lit("clinical")),
        "status": pl.when(c == "alive").then(pl.lit("lost")).otherwise(pl.lit("alive")),
    }[column]
    return rows.with_columns(change.alias(column))
