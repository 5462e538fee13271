"""Caption files: WebVTT checked, SRT converted, bad files refused naming the line; BCP 47 tags."""

from __future__ import annotations

import pytest

from studyshelf.library.caption_text import (
    MAX_CAPTION_BYTES,
    CaptionInvalid,
    LanguageInvalid,
    default_label,
    normalise_language,
    read_caption_file,
)

VTT = b"""WEBVTT - Mitosis

NOTE chapters follow

intro
00:00:00.500 --> 00:00:02.000 align:start
<v Teacher>Cells divide</v> in <b>four</b> phases.

00:02.000 --> 00:04.250
Prophase comes first.
"""

SRT = b"""1
00:00:00,500 --> 00:00:02,000
<font color="#ff0">Cells divide</font> in <i>four</i> phases.

2
00:00:02,000 --> 00:00:04,250
Prophase comes first.
Then metaphase.
"""


def test_webvtt_is_kept_as_it_is() -> None:
    text = read_caption_file(VTT, filename="captions.vtt")
    assert (text.cues, text.source_format) == (2, "vtt")
    assert text.vtt == VTT


def test_crlf_and_a_byte_order_mark_are_normalised() -> None:
    text = read_caption_file(b"\xef\xbb\xbf" + VTT.replace(b"\n", b"\r\n"))
    assert text.vtt == VTT


def test_srt_becomes_webvtt() -> None:
    text = read_caption_file(SRT, filename="captions.srt")
    assert (text.cues, text.source_format) == (2, "srt")
    assert text.vtt.decode() == (
        "WEBVTT\n\n"
        "1\n00:00:00.500 --> 00:00:02.000\nCells divide in <i>four</i> phases.\n\n"
        "2\n00:00:02.000 --> 00:00:04.250\nProphase comes first.\nThen metaphase.\n"
    )
    assert read_caption_file(text.vtt).vtt == text.vtt  # valid WebVTT in turn


@pytest.mark.parametrize(
    ("data", "line", "says"),
    [
        (b"WEBVTT\n\n00:00:01.000 -> 00:00:02.000\nhi\n", 3, "expected a cue timing"),
        (b"WEBVTT\n\n00:00:01.000 --> 00:00:02\nhi\n", 3, "is not a cue timing"),
        (b"WEBVTT\n\n00:00:01.000 --> 00:01:02.000\nhi\n\n00:00:05.000 --> 00:00:04.000\nho\n", 6, "ends before"),
        (b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nhi\n00:00:03.000 --> 00:00:04.000\n", 5, "blank line"),
        (b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nhi\n\xff\xfe\n", 5, "not UTF-8"),
        (b"1\n00:00:01,000 --> 00:00:02,000\nhi\n\n2\n00:00:03 --> 00:00:04,000\nho\n", 6, "SRT cue timing"),
        (b"1\n00:00:01,000 --> 00:00:02,000\nhi\n2\n00:00:03,000 --> 00:00:04,000\nho\n", 5, "blank line"),
        (b"Just some notes about the lecture.\n", 1, "neither WebVTT nor SRT"),
        (b"WEBVTTX\n\n00:00:01.000 --> 00:00:02.000\nhi\n", 1, "SRT cue timing"),
    ],
)
def test_a_bad_file_is_refused_naming_its_line(data: bytes, line: int, says: str) -> None:
    with pytest.raises(CaptionInvalid) as refused:
        read_caption_file(data)
    assert refused.value.extra["line"] == line
    assert refused.value.detail.startswith(f"Line {line}: ")
    assert says in refused.value.detail


def test_a_vtt_named_file_is_refused_as_webvtt_unless_it_is_srt() -> None:
    with pytest.raises(CaptionInvalid, match="must start with the word WEBVTT"):
        read_caption_file(b"00:01.000 -> 00:02.000\nhi\n", filename="lecture.vtt")
    assert read_caption_file(SRT, filename="lecture.vtt").source_format == "srt"


@pytest.mark.parametrize("data", [b"WEBVTT\n", b"WEBVTT\n\nNOTE nothing here\n", b"", b"\n\n"])
def test_a_file_without_cues_is_refused(data: bytes) -> None:
    with pytest.raises(CaptionInvalid):
        read_caption_file(data)


def test_a_file_over_the_limit_is_refused() -> None:
    with pytest.raises(CaptionInvalid, match="at most"):
        read_caption_file(b"WEBVTT\n\n" + b"x" * MAX_CAPTION_BYTES)


@pytest.mark.parametrize(
    ("tag", "canonical"),
    [("en", "en"), ("DE", "de"), ("pt-br", "pt-BR"), ("zh_hant_tw", "zh-Hant-TW"), ("es-419", "es-419")],
)
def test_language_tags_are_put_in_canonical_case(tag: str, canonical: str) -> None:
    assert normalise_language(tag) == canonical


@pytest.mark.parametrize("tag", ["", "english!", "e", "en--us", "123", "a" * 40, "en-US-", "x"])
def test_malformed_language_tags_are_refused(tag: str) -> None:
    with pytest.raises(LanguageInvalid):
        normalise_language(tag)


def test_default_labels_name_the_language_in_itself() -> None:
    assert default_label("de") == "Deutsch"
    assert default_label("pt-BR") == "Português (BR)"
    assert default_label("tlh") == "tlh"
