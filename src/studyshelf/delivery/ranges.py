"""HTTP Range and conditional-request rules (RFC 9110 §13, §14), as pure functions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime

from studyshelf.core.errors import RangeNotSatisfiable

MAX_POSITION_DIGITS = 19  # anything longer cannot be a position in a real file
_RANGE_RE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE | re.ASCII)


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Bytes [start, end) of a representation of a known size."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        return self.end - self.start

    @property
    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end - 1}/{self.size}"

    @property
    def is_whole(self) -> bool:
        return self.start == 0 and self.end == self.size


def _unsatisfiable(size: int, detail: str) -> RangeNotSatisfiable:
    return RangeNotSatisfiable(detail, content_range=f"bytes */{size}")


def parse_range(header: str, size: int) -> ByteRange:
    """Parse one `bytes=` range against a size; raise RangeNotSatisfiable (416) when it cannot be served."""
    if "," in header:
        raise _unsatisfiable(size, "Only a single byte range is supported per request.")
    match = _RANGE_RE.match(header)
    if match is None:
        raise _unsatisfiable(size, "The Range header is malformed; use bytes=start-end.")
    first, last = match.groups()
    if len(first) > MAX_POSITION_DIGITS or len(last) > MAX_POSITION_DIGITS:
        raise _unsatisfiable(size, "The Range header has a number that is too large.")
    if first == "" and last == "":
        raise _unsatisfiable(size, "The Range header is malformed; use bytes=start-end.")
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise _unsatisfiable(size, "The requested range is empty.")
        return ByteRange(max(size - suffix, 0), size, size)
    start = int(first)
    if last != "" and int(last) < start:
        raise _unsatisfiable(size, "The range ends before it starts.")
    if start >= size:
        raise _unsatisfiable(size, "The range starts beyond the end of the file.")
    end = size if last == "" else min(int(last) + 1, size)
    return ByteRange(start, end, size)


def http_date(value: datetime) -> str:
    return format_datetime(value.replace(microsecond=0), usegmt=True)


def _parse_http_date(value: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo is not None else None


def _etags(header: str) -> list[str]:
    return [tag.strip() for tag in header.split(",") if tag.strip()]


def _weak_match(a: str, b: str) -> bool:
    return a.removeprefix("W/") == b.removeprefix("W/")


def not_modified(
    *, etag: str, last_modified: datetime, if_none_match: str | None, if_modified_since: str | None
) -> bool:
    """True when a GET/HEAD may be answered 304 (If-None-Match wins over If-Modified-Since)."""
    if if_none_match is not None:
        tags = _etags(if_none_match)
        return "*" in tags or any(_weak_match(tag, etag) for tag in tags)
    if if_modified_since is not None:
        since = _parse_http_date(if_modified_since)
        return since is not None and last_modified.replace(microsecond=0) <= since
    return False


def precondition_failed(
    *, etag: str, last_modified: datetime, if_match: str | None, if_unmodified_since: str | None
) -> bool:
    """True when If-Match / If-Unmodified-Since say the client holds another representation (412)."""
    if if_match is not None:
        tags = _etags(if_match)
        return not ("*" in tags or etag in tags)
    if if_unmodified_since is not None:
        since = _parse_http_date(if_unmodified_since)
        return since is not None and last_modified.replace(microsecond=0) > since
    return False


def range_applies(*, etag: str, last_modified: datetime, if_range: str | None) -> bool:
    """If-Range: serve the range only when the validator still matches (strong comparison)."""
    if if_range is None:
        return True
    value = if_range.strip()
    if value.startswith('"') or value.startswith("W/"):
        return value == etag
    since = _parse_http_date(value)
    return since is not None and since == last_modified.replace(microsecond=0)
