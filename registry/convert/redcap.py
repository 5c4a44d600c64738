"""A REDCap records export -> the six contract tables: pure frame-to-frame functions.

The export is a flat CSV read as text: `record_id`, optionally `redcap_event_name`
(longitudinal projects) and `redcap_repeat_instrument`/`redcap_repeat_instance`
(repeating instruments), a checkbox field as one `field___code` column per choice. Values
are raw codes or labels (detected, or given). Choice codes become the contract's labels,
yes/no and true/false fields `true`/`false`, dates in a d-m-y or m-d-y validation ISO
dates; anything else passes through unchanged, so ingest quarantines what cannot be read.
Every table gets a `redcap_source` column (record, event, instrument, instance) that the
contract ignores: a quarantined row's file and line lead to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

REPEAT_INSTRUMENT = "redcap_repeat_instrument"
REPEAT_INSTANCE = "redcap_repeat_instance"
EVENT = "redcap_event_name"
SOURCE = "redcap_source"
CHECKED = ("1", "checked")
UNCHECKED = ("0", "unchecked")
BOOLEANS = {
    "yesno": {"1": "true", "0": "false", "yes": "true", "no": "false"},
    "truefalse": {"1": "true", "0": "false", "true": "true", "false": "false"},
}
CHOICE_TYPES = ("radio", "dropdown")
DATE_ORDERS = {"dmy": "${3}-${2}-${1}", "mdy": "${3}-${1}-${2}"}


@dataclass(frozen=True)
class Field:
    """One field of a REDCap data dictionary."""

    name: str
    form: str
    kind: str  # REDCap field type: text, radio, dropdown, checkbox, yesno, truefalse, ...
    choices: tuple[tuple[str, str], ...] = ()  # (code, label)
    validation: str = ""

    def export_columns(self) -> tuple[str, ...]:
        """The columns of the export that hold this field (one per choice for a checkbox)."""
        if self.kind == "checkbox":
            return tuple(f"{self.name}___{checkbox_code(c)}" for c, _ in self.choices)
        return (self.name,)


@dataclass(frozen=True)
class TableMap:
    """A contract table's REDCap instrument and its contract column -> field names."""

    table: str
    form: str
    fields: Mapping[str, str]


def checkbox_code(code: str) -> str:
    """The suffix REDCap gives a checkbox choice's column (lower case, '-' and '.' as '_')."""
    return code.lower().replace("-", "_").replace(".", "_")


def parse_choices(text: str) -> tuple[tuple[str, str], ...]:
    """'1, F | 2, M' -> (('1', 'F'), ('2', 'M')); a choice without a comma is its own label."""
    pairs = []
    for part in (p.strip() for p in text.split("|")):
        if part:
            code, _, label = part.partition(",")
            pairs.append((code.strip(), label.strip() or code.strip()))
    return tuple(pairs)


def detect_labels(records: pl.DataFrame, fields: list[Field]) -> bool:
    """True when the export holds labels rather than raw codes: more choice values that
    are only a label than are only a code (yes/no fields vote too)."""
    labels = codes = 0
    for f in fields:
        if f.kind in CHOICE_TYPES and f.name in records.columns:
            code_set, label_set = {c for c, _ in f.choices}, {lb for _, lb in f.choices}
            values = records.get_column(f.name).drop_nulls()
            labels += int(values.is_in(sorted(label_set - code_set)).sum())
            codes += int(values.is_in(sorted(code_set - label_set)).sum())
        elif f.kind in BOOLEANS and f.name in records.columns:
            values = records.get_column(f.name).drop_nulls().str.to_lowercase()
            labels += int(values.is_in(["yes", "no", "true", "false"]).sum())
            codes += int(values.is_in(["1", "0"]).sum())
    return labels > codes


def translate(f: Field, *, labels: bool) -> pl.Expr:
    """The contract value of one field (untranslatable values unchanged)."""
    if f.kind == "checkbox":
        return checkbox_value(f)
    col = pl.col(f.name)
    if f.kind in CHOICE_TYPES and not labels:
        return col.replace(dict(f.choices))
    if f.kind in BOOLEANS:
        lowered = col.str.strip_chars().str.to_lowercase()
        return lowered.replace_strict(BOOLEANS[f.kind], default=col)
    order = f.validation.removeprefix("date_").removeprefix("datetime_").removeprefix("seconds_")
    if f.validation.startswith("datetime"):
        col = col.str.replace(r"^(\S+) \d{1,2}:\d{2}(:\d{2})?$", "${1}")
    if order in DATE_ORDERS:
        return col.str.replace(r"^(\d{2})[-/](\d{2})[-/](\d{4})$", DATE_ORDERS[order])
    return col


def checkbox_value(f: Field) -> pl.Expr:
    """The one ticked choice's label; none ticked: empty; several: 'a|b' (which ingest
    quarantines); a cell that is neither ticked nor unticked passes through."""
    parts = []
    for (_code, label), name in zip(f.choices, f.export_columns(), strict=True):
        cell = pl.col(name).str.strip_chars()
        lowered = cell.str.to_lowercase()
        ticked = lowered.is_in(CHECKED) | (lowered == label.lower())
        empty = lowered.is_in(UNCHECKED) | cell.is_null() | (cell == "")
        parts.append(pl.when(ticked).then(pl.lit(label)).when(empty).then(None).otherwise(cell))
    joined = pl.concat_list(parts).list.drop_nulls().list.join("|")
    return pl.when(joined == "").then(None).otherwise(joined)


def is_filled(f: Field) -> pl.Expr:
    """True where the row holds a value of the field (a checkbox: a ticked choice)."""
    if f.kind == "checkbox":
        return checkbox_value(f).is_not_null()
    return pl.col(f.name).str.strip_chars().fill_null("") != ""


def form_rows(records: pl.DataFrame, form: str, own: list[Field]) -> pl.DataFrame:
    """The export's rows of an instrument: its repeating instances, and the plain rows
    (non-repeating, or repeating events) in which any of its fields holds a value."""
    filled = pl.any_horizontal([is_filled(f) for f in own]) if own else pl.lit(False)
    if REPEAT_INSTRUMENT not in records.columns:
        return records.filter(filled)
    instrument = pl.col(REPEAT_INSTRUMENT).fill_null("")
    return records.filter((instrument == form) | ((instrument == "") & filled))


def source_column(record_field: str, form: str, columns: list[str]) -> pl.Expr:
    """'record 7, event baseline_arm_1, procedures instance 2': where a row came from."""
    pieces: list[pl.Expr] = [pl.lit("record "), pl.col(record_field).fill_null("?")]
    if EVENT in columns:
        pieces += [pl.lit(", event "), pl.col(EVENT).fill_null("?")]
    pieces.append(pl.lit(f", {form}"))
    if REPEAT_INSTANCE in columns:
        instance = pl.col(REPEAT_INSTANCE).fill_null("")
        pieces.append(pl.when(instance == "").then(pl.lit("")).otherwise(" instance " + instance))
    return pl.concat_str(pieces).alias(SOURCE)


def convert_table(
    records: pl.DataFrame, table: TableMap, fields: Mapping[str, Field], *, labels: bool
) -> pl.DataFrame:
    """One contract table (every mapped column as text, then redcap_source) from the
    export's rows of its instrument, in export order."""
    record_field = table.fields["patient_id"]
    own = [fields[n] for c, n in table.fields.items() if c != "patient_id"]
    rows = form_rows(records, table.form, own)
    columns = [translate(fields[n], labels=labels).alias(c) for c, n in table.fields.items()]
    source = source_column(record_field, table.form, records.columns)
    return rows.select(*columns, source).cast(pl.String)


def unmapped_instruments(records: pl.DataFrame, tables: list[TableMap]) -> dict[str, int]:
    """Repeating instruments of the export that no table maps, with their row counts."""
    if REPEAT_INSTRUMENT not in records.columns:
        return {}
    forms = {t.form for t in tables}
    counts = records.get_column(REPEAT_INSTRUMENT).drop_nulls().value_counts(sort=True)
    return {str(r[0]): int(r[1]) for r in counts.iter_rows() if r[0] not in forms and r[0] != ""}
