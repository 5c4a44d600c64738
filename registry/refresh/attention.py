"""What needs attention after a refresh: refused, unrecognised and entirely quarantined files.

Shared by the refresh's last message, `registry status` and the history page, so the three
say the same thing in the same words. Lines are wrapped to fit an 80-column terminal.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from registry.refresh.wording import plural

FileWarning = tuple[str, str, str]  # (kind, file relative to the inbox, reason)
KINDS = {"refused": "refused", "unrecognised": "not recognised",
         "quarantined": "entirely quarantined"}  # fmt: skip
WIDTH = 80


def summary(warnings: Sequence[FileWarning]) -> str:
    """'1 file refused, 2 files not recognised' (kinds in a fixed order)."""
    parts = []
    for kind, words in KINDS.items():
        n = sum(w[0] == kind for w in warnings)
        if n:
            parts.append(f"{plural(n, 'file')} {words}")
    return ", ".join(parts)


def headline(warnings: Sequence[FileWarning]) -> str:
    """The sentence added to a run's message when something needs attention."""
    return f"needs attention: {summary(warnings)}" if warnings else ""


def wrap(text: str, *, indent: str = "  ", width: int = WIDTH) -> list[str]:
    """Lines of at most `width` columns (a long path stays whole on its own line)."""
    more = indent + "  "
    return textwrap.wrap(text, width, initial_indent=indent, subsequent_indent=more,
                         break_long_words=False, break_on_hyphens=False) or [indent]  # fmt: skip


def detail_lines(
    warnings: Sequence[FileWarning], *, indent: str = "  ", most: int = 10
) -> list[str]:
    """One wrapped entry per file: '<kind> <file>: <reason>', then how many more there are."""
    lines = []
    for kind, file, reason in warnings[:most]:
        lines.extend(wrap(f"{KINDS.get(kind, kind)} {file}: {reason}", indent=indent))
    if len(warnings) > most:
        lines.append(f"{indent}and {plural(len(warnings) - most, 'more file')}; "
                     "see: registry status")  # fmt: skip
    return lines
