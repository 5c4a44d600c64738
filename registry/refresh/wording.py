"""Words of the refresh's messages: counts with the right singular or plural."""

from __future__ import annotations

IRREGULAR = {"study": "studies", "is": "are", "was": "were"}


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """'1 study', '2 studies', '0 files': the count and the noun in the right number."""
    return f"{n:,} {noun if n == 1 else nouns or IRREGULAR.get(noun, noun + 's')}"


def listing(items: list[str], *, most: int = 3) -> str:
    """'a, b and c', or 'a, b, c and 4 more' when there are more than `most` items."""
    if not items:
        return "nothing"
    shown = items[:most]
    rest = len(items) - len(shown)
    if rest:
        return ", ".join(shown) + f" and {rest} more"
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]
