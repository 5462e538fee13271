"""API shapes of a file's and a folder's performance (GET /api/v1/analytics/files/{id}, …/folders/{id})."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from studyshelf.analytics.schemas import MetricsRead, SeriesPoint


class PlaybackUse(BaseModel):
    key: str = Field(description="the rendition (720p, mp4, auto; '' unknown) or captions language ('' off)")
    views: int = Field(description="page views that played in it")
    watch_ms: int = Field(description="media time played in it")


class PlaybackRead(BaseModel):
    views: int = Field(description="page views that reported playback")
    watch_ms: int = Field(description="media time played, all views (each view's latest report)")
    median_reached_pct: float | None = Field(description="median furthest position reached, % of the duration")
    completed: int = Field(description="views that reached 90% of the duration (COMPLETE_PCT)")
    completion_rate: float | None = Field(description="completed / views; null without views")
    renditions: list[PlaybackUse]
    captions: list[PlaybackUse]


class InsightTarget(BaseModel):
    kind: Literal["file", "folder"]
    id: uuid.UUID
    name: str
    path: list[str] = Field(description="the visible folders above it, from the top")


class FailureRead(BaseModel):
    browser: str
    browser_major: str
    os: str
    device: str
    country: str = Field(description="ISO 3166 alpha-2, '' when unknown")
    error_class: str = Field(description="network, decode, unsupported, http-4xx, http-5xx, timeout or aborted")
    fails: int
    attempts: int = Field(description="successful and failed loads of the same browser, version, OS, device, country")
    fail_rate: float | None


class AudienceRow(BaseModel):
    key: str
    attempts: int = Field(description="successful and failed loads")
    fails: int
    fail_rate: float | None


class LoadBucket(BaseModel):
    from_ms: int = Field(description="inclusive lower bound")
    to_ms: int | None = Field(description="exclusive upper bound; null for the slowest bucket")
    loads: int


class LoadTimes(BaseModel):
    p50_ms: float | None
    p95_ms: float | None
    histogram: list[LoadBucket]


class VersionFigures(MetricsRead):
    version_id: uuid.UUID
    number: int | None = Field(description="null when the version was removed")
    current: bool
    first_seen: datetime
    last_seen: datetime


class PlacementFigures(MetricsRead):
    link_id: str | None
    lms: str
    course: str
    resource_link: str
    name: str = Field(description="the link's label or the course's title where known, else a short id")


class RankedFileRead(MetricsRead):
    file_id: uuid.UUID
    name: str | None = Field(description="null when the file is gone or no longer visible")


class InsightRead(BaseModel):
    """Every figure of a file's or a folder's performance page, for one period and set of filters."""

    org_id: uuid.UUID
    target: InsightTarget
    from_: date = Field(alias="from")
    to: date
    time_zone: Literal["UTC"] = "UTC"
    bucket: str
    filters: dict[str, str]
    totals: MetricsRead
    series: list[SeriesPoint]
    failures: list[FailureRead] = Field(description="failed loads by audience and error class, most first")
    by_error_class: list[AudienceRow] = Field(description="attempts: every load of the period")
    by_browser: list[AudienceRow] = Field(description="key: browser and major version")
    by_os: list[AudienceRow]
    by_device: list[AudienceRow]
    by_country: list[AudienceRow]
    load_times: LoadTimes
    versions: list[VersionFigures] = Field(description="a file's versions (empty for a folder)")
    placements: list[PlacementFigures]
    files: list[RankedFileRead] = Field(
        description="a folder's files by fail rate, among files with enough views (empty for a file)"
    )
    min_views_to_rank: int
    playback: PlaybackRead | None = Field(
        default=None,
        description="a video's or audio's playback as its viewer pages reported it (null for other files, folders)",
    )

    model_config = ConfigDict(populate_by_name=True)
