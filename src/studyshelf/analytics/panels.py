"""The dashboard's panels: KPI tiles, the time series, breakdown bar charts and the top files and folders.

Figures come from the analytics service (one summary per breakdown, all in the organisation's scope);
names of files, folders and organisations come from `analytics.names.Names` (the library's access model,
one batch for the whole page), so a name is shown only to someone who may see the item.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from typing import Final

from babel.numbers import format_decimal
from sqlalchemy.orm import Session

from studyshelf.analytics import service
from studyshelf.analytics.dashboard import CATEGORIES, DEVICES, DashboardQuery
from studyshelf.analytics.names import Names
from studyshelf.analytics.reports.org_settings import zone
from studyshelf.analytics.trends import RANKED_FILES, Change, MoverRow, Phrase, kpi_changes, mover_rows, movers
from studyshelf.analytics.world import WorldMap, world_map
from studyshelf.events.schema import LMS_VALUES
from studyshelf.partners.principal import Principal
from studyshelf.warehouse import Bucket, Metrics, Part, Summary, Warehouse
from studyshelf.web import i18n
from studyshelf.web.i18n import N_

# Labels, titles and hints here are English, marked with N_: the page translates them where it shows them
# (`| translate`, the `said` macro of analytics/_macros.html); CSV exports and reports keep them English.
# Figures are formatted in the locale being rendered (pages.py builds the panels inside `i18n.use_locale`).

# (dimension, card title), in the order the cards are laid out.
CHARTS: Final = (
    ("country", N_("Countries")),
    ("browser", N_("Browsers")),
    ("category", N_("File types")),
    ("lms", N_("Learning platforms")),
    ("os", N_("Operating systems")),
    ("device", N_("Devices")),
    ("partner", N_("Organisations")),
    ("course", N_("Courses")),
)
BARS: Final = 8
LMS_LABELS: Final = {"moodle": "Moodle", "canvas": "Canvas", "other": N_("Other LMS"), "none": N_("Direct (no LMS)")}
CATEGORY_LABELS: Final = {
    "pdf": "PDF",
    "video": N_("Video"),
    "audio": N_("Audio"),
    "image": N_("Image"),
    "document": N_("Document"),
    "text": N_("Text"),
    "other": N_("Other"),
}
DEVICE_LABELS: Final = {
    "desktop": N_("Desktop"),
    "mobile": N_("Mobile"),
    "tablet": N_("Tablet"),
    "unknown": N_("Unknown"),
}
FILTER_TITLES: Final = {
    "partner": N_("Organisation"),
    "folder": N_("Folder"),
    "file": N_("File"),
    "category": N_("File type"),
    "country": N_("Country"),
    "browser": N_("Browser"),
    "os": N_("OS"),
    "device": N_("Device"),
    "lms": N_("Platform"),
    "course": N_("Course"),
}


def _decimal(value: float, digits: int) -> str:
    """A number with a fixed count of decimals and no grouping, in the locale being rendered: 12.5 · 12,5."""
    return format_decimal(value, format="0" + ("." + "0" * digits if digits else ""), locale=i18n.current_locale())


def number(value: float) -> str:
    """A count: 12,345 (12.345 in German)."""
    return i18n.format_number(value)


def percent(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{_decimal(value * 100, 1)}%" if value < 0.1 else f"{_decimal(value * 100, 0)}%"


def duration(ms: float | None) -> str:
    if ms is None:
        return "—"
    return f"{_decimal(ms, 0)} ms" if ms < 1000 else f"{_decimal(ms / 1000, 1)} s"


def size(value: float) -> str:
    amount = float(value)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if amount < 1024 or unit == "TB":
            return f"{_decimal(amount, 0 if unit == 'B' else 1)} {unit}"
        amount /= 1024
    return f"{value} B"


@dataclass(frozen=True)
class Kpi:
    key: str
    label: str
    value: str
    hint: str = ""
    tone: str = ""
    change: Change | None = None  # against the previous period; None when it had no usage
    hint_args: Mapping[str, str] = field(default_factory=dict)  # the values of the hint's placeholders


@dataclass(frozen=True)
class Bar:
    key: str
    label: str
    views: str
    share: float  # of the largest row, 0..100, for the bar's length
    notes: tuple[Phrase, ...]  # "12% of views", fail rate
    url: str | None  # the drill-down, None when the row cannot be filtered on (unknown values)
    region: str = ""  # ISO country code, for the browser's own country names
    said: Phrase | None = None  # when the label is our words (marked N_), not a name: the page translates them


@dataclass(frozen=True)
class Card:
    dim: str
    title: str
    bars: list[Bar]
    more: int


@dataclass(frozen=True)
class TopRow:
    key: str
    name: str | None  # None when the item is gone or no longer visible
    href: str | None
    kind: str
    metrics: Metrics
    drill: str


@dataclass(frozen=True)
class Chip:
    name: str
    title: str
    label: str
    remove: str
    said: Phrase | None = None  # as Bar.said


@dataclass(frozen=True)
class Option:
    value: str
    label: str
    said: Phrase | None = None  # as Bar.said


@dataclass(frozen=True)
class Dashboard:
    empty: bool
    kpis: list[Kpi]
    series_json: str
    cards: list[Card]
    top_files: list[TopRow]
    top_folders: list[TopRow]
    chips: list[Chip]
    options: dict[str, list[Option]]
    world: WorldMap | None = None
    rising: list[MoverRow] | None = None
    falling: list[MoverRow] | None = None
    previous_empty: bool = True
    previous_label: str = ""
    bucket: str = "day"


_EMPTY_LABELS: Final = {"category": N_("Other"), "course": N_("No course")}
OTHER_ORGANISATION: Final = N_("Another organisation")  # as analytics/names.py words them
YOU_SUFFIX: Final = " (you)"
_VALUE_LABELS: Final = {"lms": LMS_LABELS, "category": CATEGORY_LABELS, "device": DEVICE_LABELS}


def _ours(message: str, **args: str) -> tuple[str, Phrase]:
    phrase = Phrase(message, args)
    return str(phrase), phrase


def _organisation(key: str, names: Names) -> tuple[str, Phrase | None]:
    name = names.org(key)
    if name == OTHER_ORGANISATION:  # one the reader may not know by name (analytics/names.py)
        return _ours(OTHER_ORGANISATION)
    if key == str(names.org_id) and name.endswith(YOU_SUFFIX):
        return _ours(N_("%(name)s (you)"), name=name.removesuffix(YOU_SUFFIX))
    return name, None


def describe(dim: str, key: str, names: Names) -> tuple[str, Phrase | None]:
    """How a value of a dimension reads (English), and the same as a Phrase when it is our words rather than a
    name (a label of ours, "Unavailable file"): the page translates those."""
    if dim == "partner":
        return _organisation(key, names)
    if dim == "file":
        found = names.file(key)
        return (found[0], None) if found else _ours(N_("Unavailable file"))
    if dim == "folder":
        folder = names.folder(key)
        return (folder, None) if folder else _ours(N_("Unavailable folder"))
    if not key:
        return _ours(_EMPTY_LABELS.get(dim, N_("Unknown")))
    course = names.course(key) if dim == "course" else None
    fixed = None if course else _VALUE_LABELS.get(dim, {}).get(key)
    if fixed is not None:
        return _ours(fixed)
    return course or (key.capitalize() if dim == "device" else key), None


def label(dim: str, key: str, names: Names) -> str:
    """How a value of a dimension reads on the page (English: the page translates our own labels)."""
    return describe(dim, key, names)[0]


@dataclass(frozen=True)
class Figures:
    overview: Summary  # totals, series, top files and folders, and every file (breakdown) for the movers
    breakdowns: dict[str, Summary]  # one per chart, its breakdown only
    previous: Summary  # the period before: totals, series and files


def summaries(
    db: Session,
    warehouse: Warehouse,
    *,
    principal: Principal,
    org_id: uuid.UUID,
    query: DashboardQuery,
    now: datetime,
) -> Figures:
    """The overview, then one breakdown per chart; each from the rollups when they hold it (service.summarise)."""

    def summarise(breakdown: str | None, parts: frozenset[Part], period: DashboardQuery = query) -> Summary:
        built = service.build_query(
            org_id=org_id,
            start=period.start,
            end=period.end,
            filters=query.filters,
            breakdown=breakdown,
            bucket=_bucket(query),  # the previous period is drawn on the same buckets
            tz=query.tz,
            parts=parts,
        )
        if breakdown == "file":
            built = replace(built, limit=RANKED_FILES)
        return service.summarise(warehouse, principal=principal, org_id=org_id, query=built, db=db, now=now)

    overview = summarise("file", frozenset({"totals", "series", "top", "breakdown"}))
    previous = summarise("file", frozenset({"totals", "series", "breakdown"}), query.previous())
    if _is_empty(overview.totals):
        return Figures(overview, {}, previous)  # nothing at all in this period: every breakdown would be empty too
    return Figures(overview, {dim: summarise(dim, frozenset({"breakdown"})) for dim, _title in CHARTS}, previous)


def _bucket(query: DashboardQuery) -> Bucket:
    return service.default_bucket(query.days)


def _is_empty(m: Metrics) -> bool:
    return not (m.views or m.load_ok or m.fails or m.downloads or m.blocked or m.bytes)


def kpis(totals: Metrics, changes: dict[str, Change] | None = None) -> list[Kpi]:
    attempts = totals.load_ok + totals.fails
    found = changes or {}
    return [
        Kpi("views", N_("Views"), number(totals.views), change=found.get("views")),
        Kpi(
            "viewers", N_("Unique viewers"), number(totals.viewers), N_("counted per day"), change=found.get("viewers")
        ),
        Kpi(
            "fails",
            N_("Failed loads"),
            number(totals.fails),
            N_("%(rate)s of %(loads)s loads") if attempts else N_("no loads reported"),
            "bad" if totals.fails else "",
            change=found.get("fails"),
            hint_args={"rate": percent(totals.fail_rate), "loads": number(attempts)} if attempts else {},
        ),
        Kpi("downloads", N_("Downloads"), number(totals.downloads), change=found.get("downloads")),
        Kpi("bytes", N_("Data transferred"), size(totals.bytes), change=found.get("bytes")),
        Kpi(
            "load",
            N_("Load time"),
            duration(totals.load_p50_ms),
            N_("median · 95th percentile %(p95)s"),
            change=found.get("load"),
            hint_args={"p95": duration(totals.load_p95_ms)},
        ),
    ]


def _bucket_starts(query: DashboardQuery, bucket: str) -> list[datetime]:
    """Every bucket of the period, as UTC instants: days and weeks start at midnight in the page's time zone."""
    tz = zone(query.tz)
    end = datetime.combine(query.end + timedelta(days=1), time(), tz).astimezone(UTC)
    if bucket == "hour":
        moment = datetime.combine(query.start, time(), tz).astimezone(UTC)
        starts = []
        while moment < end:
            starts.append(moment)
            moment += timedelta(hours=1)
        return starts
    step = {"day": 1, "week": 7}.get(bucket)
    if step is None:
        return []
    day = query.start - timedelta(days=query.start.weekday()) if bucket == "week" else query.start
    starts = []
    while (moment := datetime.combine(day, time(), tz).astimezone(UTC)) < end:
        starts.append(moment)
        day += timedelta(days=step)
    return starts


def _points(summary: Summary, starts: list[datetime]) -> list[Metrics]:
    found = {t.astimezone(UTC) if t.tzinfo else t.replace(tzinfo=UTC): m for t, m in summary.series}
    return [found.get(t, Metrics()) for t in starts]


def series_json(summary: Summary, query: DashboardQuery, bucket: str, previous: Summary | None = None) -> str:
    """The time series for the chart script: bucket starts (epoch seconds) with views and fails, gaps as 0; with
    `previous`, the previous period's views on the same positions (its first bucket under this one's first)."""
    starts = _bucket_starts(query, bucket) or sorted(
        t.astimezone(UTC) if t.tzinfo else t.replace(tzinfo=UTC) for t, _ in summary.series
    )
    rows = _points(summary, starts)
    data: dict[str, object] = {
        "bucket": bucket,
        "tz": query.tz,
        "t": [int(t.timestamp()) for t in starts],
        "views": [m.views for m in rows],
        "fails": [m.fails for m in rows],
    }
    if previous is not None:
        before = _points(previous, _bucket_starts(query.previous(), bucket))
        data["previous"] = [m.views for m in before[: len(rows)]] + [0] * max(0, len(rows) - len(before))
        data["previous_label"] = query.previous().span
    return json.dumps(data, separators=(",", ":"))


def card(dim: str, title: str, rows: list[tuple[str, Metrics]], query: DashboardQuery, names: Names) -> Card:
    top = max((m.views for _, m in rows), default=0)
    total = sum(m.views for _, m in rows)
    bars = []
    for key, m in rows[:BARS]:
        notes = [Phrase(N_("%(share)s of views"), {"share": f"{_decimal(m.views * 100 / total, 0)}%"})] if total else []
        if m.fails:
            notes.append(Phrase(N_("%(rate)s failed"), {"rate": percent(m.fail_rate)}))
        drillable = bool(key) and query.filters.get(dim) != key
        text, said = describe(dim, key, names)
        bars.append(
            Bar(
                key=key,
                label=text,
                views=number(m.views),
                share=round(m.views * 100 / top, 1) if top else 0.0,
                notes=tuple(notes),
                url=query.url(**{dim: key}) if drillable else None,
                region=key if dim == "country" and key else "",
                said=said,
            )
        )
    return Card(dim=dim, title=title, bars=bars, more=max(0, len(rows) - BARS))


def top_rows(kind: str, rows: list[tuple[str, Metrics]], query: DashboardQuery, names: Names) -> list[TopRow]:
    result = []
    for key, m in rows:
        if not key:
            continue
        if kind == "file":
            found = names.file(key)
            name, icon = (found[0], found[1]) if found else (None, "file")
            href = f"/files/{key}" if found else None
        else:
            name, icon = names.folder(key), "folder"
            href = f"/library/{key}" if name is not None else None
        result.append(TopRow(key, name, href, icon, m, query.url(**{kind: key})))
    return result


def _filtered(query: DashboardQuery, dim: str) -> list[str]:
    value = query.filters.get(dim)
    return [value] if value else []


def chips(query: DashboardQuery, names: Names) -> list[Chip]:
    names.learn(files=_filtered(query, "file"), folders=_filtered(query, "folder"))
    return [
        Chip(name, FILTER_TITLES[name], text, query.url(**{name: None}), said)
        for name, value in query.filters.items()
        for text, said in (describe(name, value, names),)
    ]


def options(figures: Figures | None, query: DashboardQuery, names: Names) -> dict[str, list[Option]]:
    """Choices for the filter selects: fixed lists, or the values seen in the period (and the current one)."""
    fixed = {
        "category": list(CATEGORIES),
        "device": list(DEVICES),
        "lms": list(LMS_VALUES),
    }
    seen: dict[str, list[str]] = {}
    if figures is not None:
        seen = {dim: [k for k, _ in s.breakdown if k] for dim, s in figures.breakdowns.items()}
        seen["folder"] = [k for k, _ in figures.overview.top_folders if k]
    result: dict[str, list[Option]] = {}
    for name in ("partner", "folder", "category", "country", "browser", "lms", "course", "device"):
        values = fixed.get(name) or seen.get(name, [])
        current = query.filters.get(name)
        if current and current not in values:
            values = [current, *values]
        result[name] = [Option(v, *describe(name, v, names)) for v in values]
    return result


def build(
    db: Session, warehouse: Warehouse, *, principal: Principal, org_id: uuid.UUID, query: DashboardQuery, now: datetime
) -> Dashboard:
    """Everything the dashboard shows for one organisation, period and set of filters."""
    figures = summaries(db, warehouse, principal=principal, org_id=org_id, query=query, now=now)
    names = Names(db, principal, org_id, now=now)
    first, before = figures.overview, figures.previous
    previous_empty = _is_empty(before.totals)
    rising, falling = movers(first.breakdown, before.breakdown) if not previous_empty else ([], [])
    names.learn(
        files=[key for key, _m in first.top_files] + [m.key for m in (*rising, *falling)] + _filtered(query, "file"),
        folders=[key for key, _m in first.top_folders] + _filtered(query, "folder"),
    )
    found = figures.breakdowns
    if "course" in found:
        names.learn_titles("course", [key for key, _m in found["course"].breakdown])
    cards = [card(dim, title, found[dim].breakdown, query, names) for dim, title in CHARTS if dim in found]
    # Countries have the map; courses and organisations are shown only when they say something: a course was
    # recorded, or someone other than this organisation used its content.
    cards = [
        c
        for c in cards
        if c.dim != "country"
        and (c.dim != "course" or any(b.key for b in c.bars))
        and (c.dim != "partner" or any(b.key != str(org_id) for b in c.bars))
    ]
    return Dashboard(
        empty=_is_empty(first.totals),
        kpis=kpis(
            first.totals,
            kpi_changes(first.totals, before.totals, before_empty=previous_empty, size=size, duration=duration),
        ),
        series_json=series_json(first, query, _bucket(query), before if query.compare else None),
        cards=cards,
        top_files=top_rows("file", first.top_files, query, names),
        top_folders=top_rows("folder", first.top_folders, query, names),
        chips=chips(query, names),
        options=options(figures, query, names),
        world=world_map(found["country"].breakdown, query) if "country" in found else None,
        rising=mover_rows(rising, query, names),
        falling=mover_rows(falling, query, names),
        previous_empty=previous_empty,
        previous_label=query.previous().span,
        bucket=_bucket(query),
    )
