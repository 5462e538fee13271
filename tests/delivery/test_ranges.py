"""Range and conditional-request rules as pure functions, checked against a reference model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from studyshelf.core.errors import RangeNotSatisfiable
from studyshelf.delivery.ranges import (
    ByteRange,
    http_date,
    not_modified,
    parse_range,
    precondition_failed,
    range_applies,
)

sizes = st.integers(min_value=0, max_value=10**12)
positions = st.integers(min_value=0, max_value=10**13)


def reference(first: int | None, last: int | None, size: int) -> tuple[int, int] | None:
    """RFC 9110 §14.1.2 for one range, written as plainly as possible; None means 416."""
    if first is None:
        if last is None or last == 0 or size == 0:
            return None
        return max(size - last, 0), size
    if last is not None and last < first:
        return None
    if first >= size:
        return None
    return first, size if last is None else min(last, size - 1) + 1


def outcome(header: str, size: int) -> tuple[int, int] | None:
    try:
        byte_range = parse_range(header, size)
    except RangeNotSatisfiable as exc:
        refused = exc
    else:
        assert byte_range.size == size
        return byte_range.start, byte_range.end
    assert refused.status == 416
    assert refused.extra["content_range"] == f"bytes */{size}"
    return None


@given(st.text(max_size=60), sizes)
@example("bytes=0-", 0)
@example("bytes=-0", 10)
@example("bytes=0-0,1-1", 10)
@example("bytes=99999999999999999999-", 10)
@example("bytes=٣-", 10)
@example("bytes=\u00a05-", 10)
def test_any_header_gives_a_valid_range_or_416(header: str, size: int) -> None:
    result = outcome(header, size)
    if result is not None:
        start, end = result
        assert 0 <= start < end <= size


@given(st.one_of(st.none(), positions), st.one_of(st.none(), positions), sizes)
def test_well_formed_ranges_match_the_reference(first: int | None, last: int | None, size: int) -> None:
    header = f"bytes={'' if first is None else first}-{'' if last is None else last}"
    assert outcome(header, size) == reference(first, last, size)


@given(st.lists(st.tuples(positions, positions), min_size=2, max_size=5), sizes)
def test_several_ranges_are_refused(ranges: list[tuple[int, int]], size: int) -> None:
    header = "bytes=" + ",".join(f"{a}-{b}" for a, b in ranges)
    assert outcome(header, size) is None


@pytest.mark.parametrize(
    "header",
    [
        "",
        "bytes",
        "bytes=",
        "bytes=-",
        "items=0-1",
        "bytes=a-b",
        "bytes=1-2-3",
        "bytes=-5-",
        "bytes=0x10-",
        "bytes=1e3-",
        "bytes=+1-2",
    ],
)
def test_garbage_is_416(header: str) -> None:
    assert outcome(header, 100) is None


def test_overflowing_numbers_are_416_not_errors() -> None:
    assert outcome("bytes=" + "9" * 400 + "-", 100) is None
    assert outcome("bytes=0-" + "9" * 400, 100) is None
    assert outcome("bytes=-" + "9" * 400, 100) is None


def test_byte_range_headers() -> None:
    byte_range = ByteRange(10, 20, 100)
    assert byte_range.length == 10
    assert byte_range.content_range == "bytes 10-19/100"
    assert not byte_range.is_whole
    assert ByteRange(0, 100, 100).is_whole


MODIFIED = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
ETAG = '"abc"'


@pytest.mark.parametrize(
    ("if_none_match", "if_modified_since", "expected"),
    [
        ('"abc"', None, True),
        ('W/"abc"', None, True),
        ('"x", "abc"', None, True),
        ("*", None, True),
        ('"other"', None, False),
        ('"other"', http_date(MODIFIED), False),  # If-None-Match wins
        (None, http_date(MODIFIED), True),
        (None, http_date(MODIFIED + timedelta(days=1)), True),
        (None, http_date(MODIFIED - timedelta(seconds=1)), False),
        (None, "not a date", False),
        (None, None, False),
    ],
)
def test_not_modified(if_none_match: str | None, if_modified_since: str | None, expected: bool) -> None:
    assert (
        not_modified(
            etag=ETAG, last_modified=MODIFIED, if_none_match=if_none_match, if_modified_since=if_modified_since
        )
        is expected
    )


@pytest.mark.parametrize(
    ("if_match", "if_unmodified_since", "expected"),
    [
        ('"abc"', None, False),
        ("*", None, False),
        ('"other"', None, True),
        ('W/"abc"', None, True),  # If-Match compares strongly
        (None, http_date(MODIFIED - timedelta(seconds=1)), True),
        (None, http_date(MODIFIED), False),
        (None, None, False),
    ],
)
def test_precondition_failed(if_match: str | None, if_unmodified_since: str | None, expected: bool) -> None:
    assert (
        precondition_failed(
            etag=ETAG, last_modified=MODIFIED, if_match=if_match, if_unmodified_since=if_unmodified_since
        )
        is expected
    )


@pytest.mark.parametrize(
    ("if_range", "expected"),
    [
        (None, True),
        ('"abc"', True),
        ('"other"', False),
        ('W/"abc"', False),  # weak validators never satisfy If-Range
        (http_date(MODIFIED), True),
        (http_date(MODIFIED - timedelta(seconds=1)), False),
        ("garbage", False),
    ],
)
def test_range_applies(if_range: str | None, expected: bool) -> None:
    assert range_applies(etag=ETAG, last_modified=MODIFIED, if_range=if_range) is expected


@pytest.mark.parametrize("header", ["bytes=٣-", "bytes=0-٩", "bytes=-５", "bytes=\u00a00-1"])
def test_only_ascii_digits_and_spaces_count(header: str) -> None:
    # RFC 9110's DIGIT is ASCII; Python's \d and \s would also take Arabic-Indic or full-width forms.
    assert outcome(header, 100) is None
