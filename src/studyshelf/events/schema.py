"""The analytics event: what happened to which file, seen from where, after enrichment.

Delivery reports a `Hit` (the raw facts of one request, with the client address and user agent);
analytics turns it into an `Event` (pseudonymous, no address, no name) before it is buffered, so the
event stream and the warehouse never hold personal data.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypedDict

import orjson

log = logging.getLogger("studyshelf.events")

EVENT_TYPES: Final = frozenset(
    {"view", "load_ok", "load_fail", "download", "blocked", "transfer", "playback"}
)  # transfer: bytes only; playback: what a viewer page played (watch time, rendition, captions, furthest point)
ERROR_CLASSES: Final = frozenset({"network", "decode", "unsupported", "http-4xx", "http-5xx", "timeout", "aborted"})
BLOCK_REASONS: Final = frozenset(
    {
        "expired",
        "revoked",
        "origin",
        "top-level",
        "over-limit",
        "bad-signature",
        "grant-revoked",
        "suspended",
        "deleted",
    }
)
LMS_VALUES: Final = ("moodle", "canvas", "other", "none")


class ClientFacts(TypedDict):
    """What a request says about its client: read during enrichment, never stored."""

    client_ip: str
    user_agent: str
    referer: str


@dataclass(frozen=True, slots=True)
class Hit:
    """The raw facts of one request that analytics counts (never stored as such)."""

    type: str
    at: datetime
    client_ip: str = ""
    user_agent: str = ""
    referer: str = ""
    link_id: str | None = None
    owner_org_id: str | None = None
    partner_org_id: str | None = None
    file_id: str | None = None
    version_id: str | None = None
    folder_path: tuple[str, ...] = ()  # from the owner's root down to the file's folder
    content_type: str = ""
    filename: str = ""
    session: str = ""
    course: str = ""
    resource_link: str = ""
    bytes: int = 0
    load_ms: int | None = None
    error_class: str = ""
    reason: str = ""
    event_id: str | None = None  # set when the sender chose it (beacons: replays keep the same id)
    lms: str = ""  # when the sender knows it (an LTI launch's platform); else enrichment reads the referrer
    captions: str = ""  # a beacon's captions language in use (BCP 47), "" with captions off or none
    rendition: str = ""  # a playback beacon's rendition ("720p", "mp4" for the progressive file), "" unknown
    watch_ms: int | None = None  # a playback beacon's media time actually played
    reached_pct: int | None = None  # a playback beacon's furthest position, in % of the duration


@dataclass(frozen=True, slots=True)
class Event:
    """One enriched, pseudonymous analytics event: a row of the warehouse."""

    id: str
    ts: datetime
    type: str
    owner_org: str | None = None
    partner_org: str | None = None
    file_id: str | None = None
    version_id: str | None = None
    folder_id: str | None = None
    folder_path: tuple[str, ...] = field(default=())
    category: str = ""
    extension: str = ""
    country: str = ""
    browser: str = ""
    browser_major: str = ""
    os: str = ""
    device: str = ""
    referrer_host: str = ""
    lms: str = "none"
    link_id: str | None = None
    course: str = ""
    resource_link: str = ""
    viewer: str = ""
    session: str = ""
    bytes: int = 0
    load_ms: int | None = None
    error_class: str = ""
    reason: str = ""
    bot: bool = False
    # Added after the first columns: existing warehouses gain them at the end (ALTER TABLE … ADD COLUMN).
    rendition: str = ""
    captions: str = ""
    watch_ms: int | None = None
    reached_pct: int | None = None

    def to_json(self) -> str:
        return self.json_bytes().decode()

    def json_bytes(self) -> builtins.bytes:
        """One JSON object, fields in COLUMNS order, `ts` in UTC with a `Z` (what the spool and Redis keep)."""
        event = self
        if self.ts.utcoffset() not in (None, _ZERO):
            event = replace(self, ts=self.ts.astimezone(UTC))
        # orjson writes a slots dataclass natively (no asdict), tuples as arrays, a naive time as UTC.
        return orjson.dumps(event, option=_JSON_OPTIONS)

    @classmethod
    def from_json(cls, text: str | builtins.bytes) -> Event:
        data: dict[str, Any] = orjson.loads(text)
        data = {k: v for k, v in data.items() if k in _KNOWN}
        data["ts"] = datetime.fromisoformat(data["ts"])
        data["folder_path"] = tuple(data.get("folder_path") or ())
        return cls(**data)


_ZERO: Final = timedelta(0)
_JSON_OPTIONS: Final = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC
COLUMNS: Final = tuple(f.name for f in fields(Event))
_KNOWN: Final = frozenset(COLUMNS)


def encode_lines(events: Sequence[Event]) -> builtins.bytes:
    """Events as JSON lines, each ending in a newline."""
    return b"".join([event.json_bytes() + b"\n" for event in events])


def decode_lines(data: builtins.bytes) -> list[Event]:
    """Events from JSON lines; a line that is not a whole event (torn by a crash) is logged and skipped."""
    events: list[Event] = []
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            events.append(Event.from_json(line))
        except (ValueError, KeyError, TypeError):
            log.error("skipping an unreadable analytics event line: %r", line[:200])
    return events
