"""The analytics warehouse: events in (idempotently, by id), summaries out."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final, Literal, Protocol

from studyshelf.events.schema import Event

# Dimensions a summary can be filtered on and broken down by: query name → column.
DIMENSIONS: Final = {
    "partner": "partner_org",
    "owner": "owner_org",
    "file": "file_id",
    "folder": "folder_id",
    "country": "country",
    "browser": "browser",
    "os": "os",
    "device": "device",
    "category": "category",
    "extension": "extension",
    "lms": "lms",
    "course": "course",
    "link": "link_id",
    "type": "type",
    "error_class": "error_class",
    "reason": "reason",
}
Bucket = Literal["minute", "hour", "day", "week", "month"]  # minutes: the live panel's last half hour
Part = Literal["totals", "series", "breakdown", "top"]
ALL_PARTS: Final[frozenset[Part]] = frozenset({"totals", "series", "breakdown", "top"})

# Rollups (analytics/reports/models.py stores them): the scope of the whole platform, the dimensions rolled up
# (DIMENSIONS' names, without `type`, plus `subtree`: every folder above the file), and the load-time histogram.
PLATFORM_SCOPE: Final = "*"
ROLLUP_DIMENSIONS: Final = (
    "partner",
    "owner",
    "file",
    "folder",
    "subtree",
    "country",
    "browser",
    "os",
    "device",
    "category",
    "extension",
    "lms",
    "course",
    "error_class",
    "reason",
    "audience",
)  # not `link`: one row per link and day would be half of all rollup rows; per-link figures read raw events
# `audience` rows are the cube of the dimensions a viewer pseudonym fixes for a day (its address gives the country,
# its user agent the rest), their value the four joined by AUDIENCE_SEPARATOR: a viewer is in one cell a day,
# so unique viewers of any set of cells add up exactly.
AUDIENCE: Final = ("country", "browser", "os", "device")
AUDIENCE_SEPARATOR: Final = "\t"
# Upper bounds (ms, exclusive) of the load-time histogram buckets h0..h15; h15 holds everything slower.
LOAD_BUCKETS_MS: Final = (25, 50, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000, 30000)


class WarehouseError(Exception):
    """The warehouse cannot be reached or refused the work."""


@dataclass(frozen=True)
class SummaryQuery:
    """What to count: a time range (half-open), an organisation's scope, filters, and the shape of the answer.

    `scope_org` limits events to those the organisation may see: usage of its own content (owner) and
    its own usage of others' content (partner). `filters` are equalities on DIMENSIONS, except `folder`,
    which matches the folder and everything below it. `parts` says which parts of the Summary to work
    out (the others stay empty): each costs its own grouping, so a caller asks only for what it shows.
    """

    start: datetime
    end: datetime
    scope_org: str | None = None
    filters: dict[str, str] = field(default_factory=dict)
    breakdown: str | None = None
    bucket: Bucket = "day"
    include_bots: bool = False
    limit: int = 100
    tz: str = "UTC"  # the IANA time zone whose midnights start the day, week and month buckets
    parts: frozenset[Part] = ALL_PARTS


@dataclass(frozen=True)
class Metrics:
    views: int = 0
    viewers: int = 0
    load_ok: int = 0
    fails: int = 0
    downloads: int = 0
    blocked: int = 0
    bytes: int = 0
    load_p50_ms: float | None = None
    load_p95_ms: float | None = None

    @property
    def fail_rate(self) -> float | None:
        attempts = self.load_ok + self.fails
        return self.fails / attempts if attempts else None


@dataclass(frozen=True)
class Summary:
    totals: Metrics
    series: list[tuple[datetime, Metrics]]
    breakdown: list[tuple[str, Metrics]]  # by query.breakdown, most viewed first, at most query.limit
    top_files: list[tuple[str, Metrics]] = field(default_factory=list)  # the ten most viewed
    top_folders: list[tuple[str, Metrics]] = field(default_factory=list)  # by the folder a file is directly in
    source: Literal["raw", "rollups"] = "raw"  # raw events, or the rollups of the application database


@dataclass(frozen=True, slots=True)
class RollupRow:
    """The metrics of one (scope, dimension, value) over a time window; dim "" is the scope's totals."""

    scope: str
    dim: str
    value: str
    views: int = 0
    viewers: int = 0
    load_ok: int = 0
    fails: int = 0
    downloads: int = 0
    blocked: int = 0
    bytes: int = 0
    load_ms_sum: int = 0
    histogram: tuple[int, ...] = (0,) * (len(LOAD_BUCKETS_MS) + 1)


@dataclass(frozen=True, slots=True)
class LoadFailures:
    """Views, successful and failed loads of one scope in a window: "global", an "organisation" (the owner of the
    content) or a "file"."""

    scope: Literal["global", "organisation", "file"]
    owner_org: str | None
    file_id: str | None
    views: int
    load_ok: int
    fails: int

    @property
    def fail_rate(self) -> float | None:
        attempts = self.load_ok + self.fails
        return self.fails / attempts if attempts else None


class Warehouse(Protocol):
    def insert(self, events: Sequence[Event]) -> int:
        """Store events in one transaction, skipping ids already stored; return how many were new."""
        ...

    def insert_lines(self, lines: bytes) -> int:
        """Like insert, for events as JSON lines (Event.json_bytes, what the buffers keep), parsed in bulk;
        a line that is not a whole event is skipped."""
        ...

    def summary(self, query: SummaryQuery) -> Summary:
        """Totals, series, the breakdown asked for, and the top files and folders, in one scan."""
        ...

    def delete_before(self, cutoff: datetime) -> int:
        """Drop events older than the cutoff (whole partitions where the backend has them)."""
        ...

    def count(self) -> int:
        """Every stored event (bots included): for checks and tests."""
        ...

    def ping(self) -> None:
        """Raise WarehouseError unless the warehouse answers."""
        ...

    def snapshot(self, target: Path) -> bool:
        """Write a consistent copy of the warehouse to `target`; False when the backend is backed up by its
        server instead (PostgreSQL) or holds nothing worth copying (in memory)."""
        ...

    def close(self) -> None: ...

    def rollup(
        self,
        start: datetime,
        end: datetime,
        *,
        orgs: Collection[str] | None = None,
        platform: bool = True,
        dims: Collection[str] = ROLLUP_DIMENSIONS,
    ) -> list[RollupRow]:
        """Aggregate the non-bot events of [start, end) per scope (each organisation the event is owner or partner
        of, only `orgs` when given; PLATFORM_SCOPE too when `platform`), per dimension in `dims` and value."""
        ...

    def earliest(self) -> datetime | None:
        """When the oldest non-bot event happened (None when there is none)."""
        ...

    def latest(self) -> datetime | None:
        """When the newest stored event (bots included) happened: how far ingest has come (None when empty)."""
        ...

    def load_failures(self, start: datetime, end: datetime, *, min_views: int) -> list[LoadFailures]:
        """Non-bot views and loads of [start, end): overall, per owning organisation, and per file with at least
        `min_views` views (the alarms' load_fail rate)."""
        ...

    def org_events(
        self, org: str, start: datetime, end: datetime, *, after: tuple[datetime, str] | None = None, limit: int
    ) -> list[tuple[Any, ...]]:
        """Up to `limit` stored events (bots too, pseudonymous as stored) of [start, end) whose owner or partner is
        `org`, in (ts, id) order after `after` (the ts and id of the last row of the page before): one page of an
        export. Rows hold COLUMNS in order, ids as text, ts an aware UTC datetime, folder_path a list."""
        ...

    def erase_org(self, org: str) -> list[date]:
        """Delete every event whose owner or partner is `org` (erasure); return the UTC days they fell on."""
        ...

    def insight(self, query: SummaryQuery) -> Insight:
        """The failures by audience and error class, the load-time histogram, and the metrics per version, per
        placement and per file of the query's events (a file's or a folder's page), in one scan."""
        ...

    def playback(self, query: SummaryQuery) -> Playback:
        """What the viewer pages of the query's media reported they played: watch time, completion, and views
        and watch time per rendition and per captions language (warehouse/playback.py)."""
        ...


# -- one file's or one folder's performance (analytics/insight.py reads these) ---------------------------------


@dataclass(frozen=True, slots=True)
class FailureRow:
    """Failed loads of one error class in one audience (browser and its major version, OS, device, country)."""

    browser: str
    browser_major: str
    os: str
    device: str
    country: str
    error_class: str
    fails: int
    attempts: int  # successful and failed loads of the same audience, every error class

    @property
    def fail_rate(self) -> float | None:
        return self.fails / self.attempts if self.attempts else None


@dataclass(frozen=True, slots=True)
class VersionRow:
    """The metrics of one file version, and when it was first and last used in the window."""

    version_id: str
    metrics: Metrics
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class PlacementRow:
    """Where content was opened: a share link, or an LMS course and resource link (keys "" when not known)."""

    link_id: str
    lms: str
    course: str
    resource_link: str
    metrics: Metrics


@dataclass(frozen=True)
class Insight:
    """What a file's or a folder's performance page shows beyond the summary, from one scan."""

    failures: list[FailureRow]  # every (audience, error class) with failed loads, most fails first
    loads: list[FailureRow]  # every audience with loads, error class "" (its fails over all classes)
    histogram: tuple[int, ...]  # successful loads per load-time bucket (LOAD_BUCKETS_MS; the last is slower)
    versions: list[VersionRow]  # oldest first
    placements: list[PlacementRow]  # most viewed first
    files: list[tuple[str, Metrics]]  # per file, most viewed first (a folder's files)


# -- media playback (issue 19: playback beacons; warehouse/playback.py reads these) ---------------------------

COMPLETE_PCT: Final = 90  # a view that reached this far into the media counts as completed


@dataclass(frozen=True)
class PlaybackRow:
    """Page views that played in one rendition (or captions language), and the watch time played in it."""

    key: str  # the rendition ("720p", "mp4"; "" unknown) or captions language ("" off)
    views: int
    watch_ms: int


@dataclass(frozen=True)
class Playback:
    """What the viewer pages of media files reported they played."""

    views: int  # page views that reported playback
    watch_ms: int  # their total watch time
    median_reached_pct: float | None  # the median furthest position, % of the duration (null without positions)
    completed: int  # views that reached COMPLETE_PCT
    renditions: list[PlaybackRow]  # most watched first
    captions: list[PlaybackRow]  # most watched first

    @property
    def completion_rate(self) -> float | None:
        """The share of views that reached COMPLETE_PCT (null without views)."""
        return self.completed / self.views if self.views else None
