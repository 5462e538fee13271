"""Names people give folders and files: what is refused, and what accepted names look like."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from studyshelf.core.errors import Invalid
from studyshelf.core.names import MAX_NAME_BYTES, name_key, validate_name

# Text biased towards the characters that matter here, mixed with anything Unicode has.
risky = st.sampled_from(
    ["/", "\\", "\x00", "\x1f", "\x7f", "\n", " ", ".", "\u202e", "e\u0301", "\u00e9", "\u3000", "😀"]
)
names = st.lists(st.one_of(risky, st.characters(codec="utf-8")), max_size=80).map("".join) | st.text(max_size=300)


@given(names)
@example("a" * 255)
@example("é" * 128)
@example(" e\u0301 ")
@example("..")
def test_accepted_names_are_safe_normalised_and_stable(raw: str) -> None:
    try:
        name = validate_name(raw)
    except Invalid:
        return
    assert name
    assert name not in {".", ".."}
    assert "/" not in name
    assert "\\" not in name
    assert "\x00" not in name
    assert not any(unicodedata.category(ch) == "Cc" for ch in name)
    assert len(name.encode()) <= MAX_NAME_BYTES
    assert name == unicodedata.normalize("NFC", name)
    assert name == name.strip()
    assert validate_name(name) == name


@given(
    st.text(max_size=40),
    st.sampled_from(["/", "\x00", "\x01", "\x1b", "\x7f", "\u0085", "\u2028", "\u202e"]),
    st.text(max_size=40),
)
def test_names_with_a_forbidden_character_inside_are_refused(prefix: str, bad: str, suffix: str) -> None:
    with pytest.raises(Invalid):
        validate_name(f"x{prefix}{bad}{suffix}x")


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        ".",
        "..",
        " .. ",
        "a/b",
        "../etc",
        "a\\b",
        "nul\x00byte",
        "tab\tinside",
        "bell\x07",
        "a" * 256,
        "é" * 128,
    ],
)
def test_refused_examples(raw: str) -> None:
    with pytest.raises(Invalid):
        validate_name(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Notes.pdf  ", "Notes.pdf"),
        ("e\u0301tude.txt", "\u00e9tude.txt"),
        ("...", "..."),
        (".bashrc", ".bashrc"),
        ("a" * 255, "a" * 255),
        ("日本語のノート", "日本語のノート"),
        ("family 👨\u200d👩\u200d👧", "family 👨\u200d👩\u200d👧"),
    ],
)
def test_accepted_examples(raw: str, expected: str) -> None:
    assert validate_name(raw) == expected


def test_name_keys_ignore_case() -> None:
    assert name_key("Notes") == name_key("NOTES") == name_key("notes")
    assert name_key("Straße") == name_key("STRASSE")
