"""The shipped REDCap project for the registry, derived from the import contract.

reports/redcap/vertebral_registry_dictionary.csv and vertebral_registry_mapping.toml are
written from these functions (`python -m registry.convert.redcap_design`), and a test fails
when the committed files drift from the contract.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

from registry.ingest.contract import LOAD_ORDER, SPECS, Column

DICTIONARY_COLUMNS: tuple[str, ...] = (
    "Variable / Field Name",
    "Form Name",
    "Section Header",
    "Field Type",
    "Field Label",
    "Choices, Calculations, OR Slider Labels",
    "Field Note",
    "Text Validation Type OR Show Slider Number",
    "Text Validation Min",
    "Text Validation Max",
    "Identifier?",
    "Branching Logic (Show field only if...)",
    "Required Field?",
    "Custom Alignment",
    "Question Number (surveys only)",
    "Matrix Group Name",
    "Matrix Ranking?",
    "Field Annotation",
)
# field-name prefix per instrument: REDCap wants names unique across the project
PREFIX = {
    "patients": "",
    "index_fractures": "idx_",
    "procedures": "proc_",
    "assessments": "asmt_",
    "fractures": "fx_",
    "follow_up": "fu_",
}
RENAMED = {("procedures", "procedure"): "proc_type"}
CHECKBOXES = {("procedures", "cement_leakage")}  # several leakage sites can be ticked
DROPDOWNS = {"level"}  # 24 choices: a dropdown rather than radio buttons
LABELS = {
    "patient_id": "Record ID (a study pseudonym: never a name, MRN or birth date)",
    "site_id": "Site",
    "bmd_t_score": "BMD T-score (lowest of spine and hip)",
    "cement_volume_ml": "Cement volume (ml)",
    "genant_grade": "Genant grade",
}
NOTES = {
    "cement_leakage": "Tick one; several ticked are quarantined at ingest (the contract "
    "holds one value).",
    "score": "VAS 0-10, ODI 0-100 (%).",
}


def field_name(table: str, column: str) -> str:
    """The REDCap field of a contract column (patient_id is record_id everywhere)."""
    if column == "patient_id":
        return "record_id"
    return RENAMED.get((table, column), PREFIX[table] + column)


def choices_text(values: tuple[str, ...]) -> str:
    """REDCap's choices cell: '1, F | 2, M' (codes 1..n, labels the contract's values)."""
    return " | ".join(f"{i}, {v}" for i, v in enumerate(values, start=1))


def _field_type(table: str, col: Column) -> tuple[str, str, str]:
    """(field type, choices, validation) of a contract column."""
    if col.kind == "enum":
        kind = "checkbox" if (table, col.name) in CHECKBOXES else "radio"
        return ("dropdown" if col.name in DROPDOWNS else kind), choices_text(col.values), ""
    if col.kind == "bool":
        return "yesno", "", ""
    validation = {"int": "integer", "float": "number", "date": "date_ymd"}.get(col.kind, "")
    return "text", "", validation


def _bound(value: float | None, kind: str) -> str:
    if value is None:
        return ""
    return str(int(value)) if kind == "int" else f"{value:g}"


def dictionary_rows() -> list[dict[str, str]]:
    """One data-dictionary row per REDCap field, instruments in the contract's load order."""
    rows: list[dict[str, str]] = []
    for table in LOAD_ORDER:
        for col in SPECS[table].columns:
            if col.name == "patient_id" and table != "patients":
                continue  # record_id is the project's first field, on the first instrument
            kind, choices, validation = _field_type(table, col)
            row = dict.fromkeys(DICTIONARY_COLUMNS, "")
            row |= {
                "Variable / Field Name": field_name(table, col.name),
                "Form Name": table,
                "Field Type": kind,
                "Field Label": LABELS.get(col.name, col.name.replace("_", " ").capitalize()),
                "Choices, Calculations, OR Slider Labels": choices,
                "Field Note": NOTES.get(col.name, ""),
                "Text Validation Type OR Show Slider Number": validation,
                "Text Validation Min": _bound(col.low, col.kind) if validation else "",
                "Text Validation Max": _bound(col.high, col.kind) if validation else "",
                "Required Field?": "y" if col.required else "",
            }
            rows.append(row)
    return rows


def dictionary_csv() -> str:
    """The data dictionary as REDCap reads it (CSV, every cell quoted as REDCap writes)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, DICTIONARY_COLUMNS, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writeheader()
    writer.writerows(dictionary_rows())
    return buffer.getvalue()


def mapping_toml() -> str:
    """The mapping file: [T] form = ..., [T.fields] contract column = REDCap field."""
    lines = [
        "# Contract table -> REDCap instrument, contract column -> REDCap field.",
        "# Written by `python -m registry.convert.redcap_design`; see the README (REDCap).",
    ]
    for table in LOAD_ORDER:
        lines += ["", f"[{table}]", f'form = "{table}"', "", f"[{table}.fields]"]
        lines += [f'{c} = "{field_name(table, c)}"' for c in SPECS[table].column_names]
    return "\n".join(lines) + "\n"


def write_design(folder: Path) -> None:
    """Write the dictionary and the mapping into folder (reports/redcap)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vertebral_registry_dictionary.csv").write_text(dictionary_csv(), encoding="utf-8")
    (folder / "vertebral_registry_mapping.toml").write_text(mapping_toml(), encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover
    write_design(Path(sys.argv[1] if len(sys.argv) > 1 else "reports/redcap"))
