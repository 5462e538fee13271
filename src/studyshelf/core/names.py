"""Validation of the names people give folders and files."""

from __future__ import annotations

import unicodedata

from studyshelf.core.errors import Invalid

MAX_NAME_BYTES = 255
# Bidirectional overrides let "exe.pdf" display as "fdp.exe"; zero-width joiners stay allowed for emoji.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")


def validate_name(raw: str) -> str:
    """Return the name normalised (NFC, trimmed) or raise Invalid with the reason."""
    name = unicodedata.normalize("NFC", raw).strip()
    if not name:
        raise Invalid("A name cannot be empty.")
    if name in {".", ".."}:
        raise Invalid("A name cannot be '.' or '..'.")
    if "/" in name or "\\" in name:
        raise Invalid("A name cannot contain '/' or '\\'.")
    if any(unicodedata.category(ch) in {"Cc", "Zl", "Zp"} or ch in _BIDI_CONTROLS for ch in name):
        raise Invalid("A name cannot contain control characters.")
    if len(name.encode()) > MAX_NAME_BYTES:
        raise Invalid(f"A name can be at most {MAX_NAME_BYTES} bytes long (UTF-8).")
    return name


def name_key(name: str) -> str:
    """The form two names are compared in: case-insensitive, so 'Notes' and 'notes' collide."""
    return name.casefold()
