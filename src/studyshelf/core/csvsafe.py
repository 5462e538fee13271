"""CSV cells that spreadsheets show as text, never run as formulas (CSV injection)."""

from __future__ import annotations

from typing import Final

# Spreadsheets run cells that start with these as formulas.
FORMULA_STARTS: Final = frozenset({"=", "+", "-", "@", "\t", "\r"})


def csv_safe(value: str) -> str:
    """A CSV cell that spreadsheets show as text, never run as a formula."""
    return "'" + value if value[:1] in FORMULA_STARTS else value
