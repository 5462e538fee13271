"""API shapes of analytics."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from studyshelf.warehouse import Metrics


class MetricsRead(BaseModel):
    views: int
    viewers: int = Field(description="unique pseudonymous viewers (per UTC day, summed over days in a series)")
    load_ok: int
    fails: int
    fail_rate: float | None = Field(description="fails / (fails + successful loads); null without loads")
    downloads: int
    blocked: int
    bytes: int
    load_p50_ms: float | None
    load_p95_ms: float | None

    @classmethod
    def of(cls, m: Metrics) -> MetricsRead:
        return cls(
            views=m.views,
            viewers=m.viewers,
            load_ok=m.load_ok,
            fails=m.fails,
            fail_rate=m.fail_rate,
            downloads=m.downloads,
            blocked=m.blocked,
            bytes=m.bytes,
            load_p50_ms=m.load_p50_ms,
            load_p95_ms=m.load_p95_ms,
        )


class SeriesPoint(MetricsRead):
    t: datetime


class BreakdownRow(MetricsRead):
    key: str
    name: str | None = Field(
        default=None,
        description="the organisation, course, file or folder as the dashboard names it (a course by the title its "
        "LMS launches told); null where StudyShelf knows no name or the caller may not see the item",
    )


class SummaryRead(BaseModel):
    org_id: uuid.UUID
    from_: date = Field(alias="from")
    to: date
    bucket: str
    filters: dict[str, str]
    totals: MetricsRead
    series: list[SeriesPoint]
    breakdown: str | None
    rows: list[BreakdownRow]
    top_files: list[BreakdownRow]
    top_folders: list[BreakdownRow]
    time_zone: str = Field(default="UTC", description="the IANA zone whose days `from`, `to` and the buckets are")
    source: Literal["rollups", "raw"] = Field(
        default="raw", description="rollups of finished days (plus today's live events), or a scan of raw events"
    )

    model_config = ConfigDict(populate_by_name=True)


class BeaconIn(BaseModel):
    """What the viewer page reports (navigator.sendBeacon), bound to its page by `token`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    token: str = Field(min_length=10, max_length=3000)
    type: Literal["load_ok", "load_fail", "playback"]
    seq: int = Field(ge=0, le=1000, description="the page's own counter: a repeated seq is a replay")
    t: int = Field(description="when it happened, ms since the epoch (client clock)")
    load_ms: int | None = Field(default=None, ge=0, description="over 10 minutes is refused (beacon-out-of-range)")
    # manifest, segment: an HLS playlist or segment failed to load (hls.js); decode covers its media errors too
    error_class: (
        Literal["network", "decode", "unsupported", "http-4xx", "http-5xx", "timeout", "aborted", "manifest", "segment"]
        | None
    ) = None
    bytes: int | None = Field(
        default=None, ge=0, description="more than the file's size is refused (beacon-out-of-range)"
    )
    captions: str | None = Field(
        default=None,
        max_length=35,
        pattern=r"^[A-Za-z0-9]{1,8}(-[A-Za-z0-9]{1,8})*$",
        description="the captions language shown (BCP 47), if captions are on",
    )
    # playback: what the page view has played so far (each report repeats its totals; the latest counts)
    rendition: str | None = Field(
        default=None,
        max_length=16,
        pattern=r"^[a-z0-9]{1,16}$",
        description="the rendition playing: a height such as 720p, or mp4 for the progressive file",
    )
    watch_ms: int | None = Field(
        default=None,
        ge=0,
        description="media time played so far, ms (not wall time); beyond the page's life, or 3x the duration, "
        "is refused (beacon-out-of-range)",
    )
    position_ms: int | None = Field(default=None, ge=0, description="the furthest position reached, ms")
    duration_ms: int | None = Field(default=None, gt=0, le=24 * 3600 * 1000, description="the media's duration, ms")


class ErasureRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org_id: uuid.UUID = Field(description="the partner organisation whose analytics data is erased")
    confirm: str = Field(max_length=100, description="the organisation's slug, repeated to confirm")


class ErasureRead(BaseModel):
    org_id: uuid.UUID
    org_name: str
    event_days: int = Field(description="UTC days that held the organisation's raw events, now deleted")
    rollup_rows: int = Field(description="the organisation's own rollup and audience rows deleted")
    course_titles: int = Field(description="course and resource-link titles its launches taught, deleted")
    days_to_rebuild: int = Field(
        description="days whose other rollups (operator, platform) counted its events: rebuilt after this answer"
    )
