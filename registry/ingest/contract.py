"""The import contract: files, columns, types, rules and natural keys (see the README)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from registry.levels import LEVELS

BOOL_TRUE = ("true", "1", "yes")
BOOL_FALSE = ("false", "0", "no")


@dataclass(frozen=True)
class Column:
    """One contract column: its type and the rules a value must meet."""

    name: str
    kind: str  # "str" | "int" | "float" | "date" | "bool" | "enum"
    required: bool = False
    values: tuple[str, ...] = ()  # allowed values of an enum
    low: float | None = None  # inclusive range for numbers
    high: float | None = None


@dataclass(frozen=True)
class FileSpec:
    """One contract file: its columns, natural key and place in the load order."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    order: int
    date_column: str | None = None
    needs_patient: bool = True
    column_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "column_names", tuple(c.name for c in self.columns))

    def column(self, name: str) -> Column:
        """The column spec called `name`."""
        return next(c for c in self.columns if c.name == name)

    @property
    def required(self) -> tuple[str, ...]:
        """Names of the required columns."""
        return tuple(c.name for c in self.columns if c.required)

    @property
    def value_columns(self) -> tuple[str, ...]:
        """Columns outside the natural key (the ones an update can change)."""
        return tuple(c for c in self.column_names if c not in self.key)


PID = Column("patient_id", "str", required=True)
LEVEL = Column("level", "enum", required=True, values=LEVELS)

SPECS: dict[str, FileSpec] = {
    spec.name: spec
    for spec in (
        FileSpec(
            "patients",
            (
                PID,
                Column("site_id", "str"),
                Column("sex", "enum", required=True, values=("F", "M")),
                Column("birth_year", "int", required=True, low=1900, high=2100),
                Column("bmd_t_score", "float", low=-8.0, high=4.0),
                Column("glucocorticoids", "bool"),
                Column("prior_vertebral_fractures", "int", low=0, high=23),
            ),
            key=("patient_id",),
            order=0,
            needs_patient=False,
        ),
        FileSpec(
            "index_fractures",
            (
                PID,
                LEVEL,
                Column("diagnosed_on", "date", required=True),
                Column(
                    "etiology",
                    "enum",
                    required=True,
                    values=("osteoporotic", "malignant", "traumatic"),
                ),
                Column("genant_grade", "int", low=1, high=3),
            ),
            key=("patient_id", "level"),
            order=1,
            date_column="diagnosed_on",
        ),
        FileSpec(
            "procedures",
            (
                PID,
                LEVEL,
                Column("performed_on", "date", required=True),
                Column(
                    "procedure", "enum", required=True, values=("vertebroplasty", "kyphoplasty")
                ),
                Column("cement_volume_ml", "float", low=0.0, high=30.0),
                Column(
                    "cement_leakage",
                    "enum",
                    values=("none", "disc", "venous", "paravertebral", "other"),
                ),
            ),
            key=("patient_id", "level", "performed_on"),
            order=2,
            date_column="performed_on",
        ),
        FileSpec(
            "assessments",
            (
                PID,
                Column("assessed_on", "date", required=True),
                Column("instrument", "enum", required=True, values=("VAS", "ODI")),
                Column("score", "float", required=True, low=0.0, high=100.0),
            ),
            key=("patient_id", "instrument", "assessed_on"),
            order=3,
            date_column="assessed_on",
        ),
        FileSpec(
            "fractures",
            (
                PID,
                LEVEL,
                Column("detected_on", "date", required=True),
                Column("detection", "enum", values=("radiographic", "clinical")),
            ),
            key=("patient_id", "level", "detected_on"),
            order=4,
            date_column="detected_on",
        ),
        FileSpec(
            "follow_up",
            (
                PID,
                Column("contact_on", "date", required=True),
                Column(
                    "status", "enum", required=True, values=("alive", "dead", "withdrawn", "lost")
                ),
            ),
            key=("patient_id", "contact_on"),
            order=5,
            date_column="contact_on",
        ),
    )
}

# Column names that look like direct identifiers; matched on the normalised name.
IDENTIFIER_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (label, re.compile(pattern))
    for label, pattern in (
        ("name", r"^(full_?|first_?|last_?|given_?|family_?|sur|patient_?|maiden_?)?name$"),
        ("name", r"^(forename|surname|initials)$"),
        ("address", r"(^|_)(address|street|addr|postcode|zip_?code|zip)($|_)"),
        ("phone", r"(^|_)(phone|telephone|mobile|cell|fax)($|_)"),
        ("email", r"(^|_)e_?mail($|_)"),
        ("MRN", r"(^|_)(mrn|medical_record(_number)?|record_number|hospital_number)($|_)"),
        (
            "SSN",
            r"(^|_)(ssn|social_security(_number)?|national_id|nhs_number|insurance_number)($|_)",
        ),
        ("full birth date", r"^(date_of_birth|dob|birth_?date|birthdate|born_on|birth_on)$"),
    )
)


def normalise_column(name: str) -> str:
    """Lower-case a header and turn spaces and dashes into underscores."""
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def identifier_label(name: str) -> str | None:
    """The kind of direct identifier a column name looks like, or None."""
    norm = normalise_column(name)
    for label, pattern in IDENTIFIER_PATTERNS:
        if pattern.search(norm):
            return label
    return None


def spec_for_file(stem: str) -> FileSpec | None:
    """The contract file a file name stem belongs to (e.g. 'follow_up', 'follow-up')."""
    return SPECS.get(normalise_column(stem))


LOAD_ORDER: tuple[str, ...] = tuple(sorted(SPECS, key=lambda n: SPECS[n].order))
