"""The tables of a file's or a folder's performance page: shown on the page and downloaded as CSV, from one list.

Each table holds typed cells (counts, rates, milliseconds, bytes, times); the page formats them for reading and
the CSV keeps the numbers, so a download equals the screen row for row and column for column.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any, Final, Literal

from studyshelf.analytics.insight import MIN_VIEWS_TO_RANK, Report, page_url
from studyshelf.analytics.panels import LMS_LABELS, Kpi, duration, number, percent, size, watch_time
from studyshelf.core.csvsafe import csv_safe
from studyshelf.warehouse import LOAD_BUCKETS_MS, FailureRow, Metrics

CellKind = Literal["text", "int", "rate", "ms", "bytes", "time", "date", "region", "watch"]
FAILURE_ROWS: Final = 50
ERROR_LABELS: Final = {
    "network": "Network error",
    "decode": "Cannot decode",
    "unsupported": "Format not supported",
    "http-4xx": "Refused (HTTP 4xx)",
    "http-5xx": "Server error (HTTP 5xx)",
    "timeout": "Timed out",
    "aborted": "Aborted",
    "": "Unknown",
}


@dataclass(frozen=True)
class Column:
    title: str
    kind: CellKind = "text"
    narrow: bool = True  # shown at 375 px; wide-only columns hide there (the CSV has them all)


@dataclass(frozen=True)
class Table:
    key: str  # its CSV's name
    title: str
    columns: list[Column]
    rows: list[list[Any]]
    hint: str = ""
    links: list[str | None] = field(default_factory=list)  # per row, where its first cell leads


def cell(value: Any, kind: CellKind) -> str:
    """A cell as the page shows it."""
    if value is None:
        return "—"
    formats: dict[str, Callable[[Any], str]] = {
        "int": number,
        "rate": percent,
        "ms": duration,
        "bytes": size,
        "time": lambda t: t.strftime("%-d %b %Y %H:%M") if isinstance(t, datetime) else str(t),
        "date": lambda t: t.strftime("%-d %b %Y") if isinstance(t, datetime) else str(t),
        "watch": watch_time,
    }
    return formats.get(kind, str)(value)


def csv_text(table: Table) -> Iterator[str]:
    """The table as CSV lines: the page's columns, numbers as numbers, text formula-safe."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(values: list[Any]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(values)
        return buffer.getvalue()

    yield line([csv_safe(c.title) for c in table.columns])
    for row in table.rows:
        yield line([_raw(value, c.kind) for value, c in zip(row, table.columns, strict=True)])


def _raw(value: Any, kind: CellKind) -> Any:
    if value is None:
        return ""
    if kind == "rate":
        return round(float(value), 4)
    if kind == "ms":
        return round(float(value), 1)
    if kind in {"time", "date"}:
        return value.isoformat() if isinstance(value, datetime) else str(value)
    if kind in {"int", "bytes", "watch"}:  # watch: milliseconds of watch time
        return int(value)
    return csv_safe(str(value))


def _attempts(m: Metrics) -> int:
    return m.load_ok + m.fails


def tables(report: Report) -> dict[str, Table]:
    """Every table of the page, by key, in page order."""
    found = [
        series_table(report),
        failures_table(report),
        *audience_tables(report),
        load_time_table(report),
        versions_table(report) if report.target.kind == "file" else None,
        placements_table(report),
        files_table(report) if report.target.kind == "folder" else None,
    ]
    return {t.key: t for t in found if t is not None}


def series_table(report: Report) -> Table:
    unit = {"hour": "Hour (UTC)", "week": "Week of", "month": "Month"}.get(report.bucket, "Day")
    rows = [[t, m.views, m.viewers, _attempts(m), m.fails, m.fail_rate] for t, m in report.series]
    columns = [
        Column(unit, "time"),
        Column("Views", "int"),
        Column("Unique viewers", "int", narrow=False),
        Column("Loads", "int", narrow=False),
        Column("Failed", "int"),
        Column("Fail rate", "rate"),
    ]
    return Table("series", "Views and failed loads over time", columns, rows)


def failures_table(report: Report) -> Table:
    rows = [
        [
            f"{r.browser or 'Unknown'} {r.browser_major}".strip(),
            r.browser_major,
            r.os or "Unknown",
            r.device or "unknown",
            r.country,
            ERROR_LABELS.get(r.error_class, r.error_class),
            r.fails,
            r.attempts,
            r.fail_rate,
        ]
        for r in report.insight.failures[:FAILURE_ROWS]
    ]
    columns = [
        Column("Browser"),
        Column("Version", narrow=False),  # in the browser's cell too: "Mobile Safari 17"
        Column("OS"),
        Column("Device", narrow=False),
        Column("Country", "region", narrow=False),
        Column("Error"),
        Column("Failed", "int"),
        Column("Loads", "int", narrow=False),
        Column("Fail rate", "rate"),
    ]
    hint = "Failed loads by who had them and how they failed; the fail rate is of that audience's loads."
    return Table("failures", "Who fails to load it", columns, rows, hint=hint)


AUDIENCE_PICKS: Final[dict[str, Callable[[FailureRow], str]]] = {
    "browsers": lambda r: f"{r.browser or 'Unknown'} {r.browser_major}".strip(),
    "os": lambda r: r.os or "Unknown",
    "devices": lambda r: (r.device or "unknown").capitalize(),
    "countries": lambda r: r.country,
}
_AUDIENCE_TITLES: Final[dict[str, tuple[str, str, CellKind]]] = {
    "browsers": ("By browser", "Browser", "text"),
    "os": ("By operating system", "OS", "text"),
    "devices": ("By device", "Device", "text"),
    "countries": ("By country", "Country", "region"),
}


def grouped(rows: list[FailureRow], key: Callable[[FailureRow], str]) -> list[tuple[str, int, int]]:
    """(value, fails, attempts) per value of `key`, most fails first."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        totals[key(r)][0] += r.fails
        totals[key(r)][1] += r.attempts
    return sorted(((k, f, a) for k, (f, a) in totals.items()), key=lambda x: (-x[1], -x[2], x[0]))


def error_classes(report: Report) -> list[tuple[str, int, int]]:
    """(error class, fails, every load of the period) per error class."""
    attempts = sum(r.attempts for r in report.insight.loads)
    return [(k, f, attempts) for k, f, _a in grouped(report.insight.failures, lambda r: r.error_class)]


def audience_tables(report: Report) -> list[Table]:
    """Loads and failures by error class, browser with its version, OS, device and country."""
    made = [
        Table(
            "errors",
            "By error class",
            [Column("Error"), Column("Failed", "int"), Column("Share of loads", "rate")],
            [[ERROR_LABELS.get(k, k), f, f / a if a else None] for k, f, a in error_classes(report)],
        )
    ]
    for key, pick in AUDIENCE_PICKS.items():
        title, first, kind = _AUDIENCE_TITLES[key]
        rows = [[k, a, f, f / a if a else None] for k, f, a in grouped(report.insight.loads, pick)]
        columns = [Column(first, kind), Column("Loads", "int"), Column("Failed", "int"), Column("Fail rate", "rate")]
        made.append(Table(key, title, columns, rows))
    return made


def bucket_label(index: int) -> str:
    """A load-time bucket as a range: "under 25 ms", "300–500 ms", "750 ms – 1 s", "30 s or more"."""
    if index == 0:
        return f"under {_ms(LOAD_BUCKETS_MS[0])}"
    if index == len(LOAD_BUCKETS_MS):
        return f"{_ms(LOAD_BUCKETS_MS[-1])} or more"
    low, high = LOAD_BUCKETS_MS[index - 1], LOAD_BUCKETS_MS[index]
    if high < 1000:
        return f"{low}–{high} ms"
    if low >= 1000:
        return f"{low / 1000:g}–{high / 1000:g} s"
    return f"{_ms(low)} – {_ms(high)}"


def _ms(value: int) -> str:
    return f"{value} ms" if value < 1000 else f"{value / 1000:g} s"


def load_time_table(report: Report) -> Table:
    """Successful loads per load-time bucket, from the fastest to the slowest bucket that has any."""
    histogram = report.insight.histogram
    total = sum(histogram)
    used = [i for i, count in enumerate(histogram) if count]
    shown = range(used[0], used[-1] + 1) if used else range(0)
    rows = [[bucket_label(i), histogram[i], histogram[i] / total if total else None] for i in shown]
    columns = [Column("Time to first frame or page"), Column("Loads", "int"), Column("Share", "rate")]
    return Table("load-times", "Load times", columns, rows)


def versions_table(report: Report) -> Table:
    info = report.target.versions
    rows: list[list[Any]] = []
    for v in report.insight.versions:
        known = info.get(v.version_id)
        name = f"Version {known.number}" + (" (current)" if known.current else "") if known else "Removed version"
        m = v.metrics
        uploaded = known.created_at if known else None
        rows.append([name, uploaded, v.first_seen, m.views, m.viewers, _attempts(m), m.fails, m.fail_rate])
        rows[-1] += [m.load_p50_ms, m.load_p95_ms, m.bytes]
    columns = [
        Column("Version"),
        Column("Uploaded", "date", narrow=False),
        Column("First used", "date", narrow=False),
        Column("Views", "int"),
        Column("Viewers", "int", narrow=False),
        Column("Loads", "int", narrow=False),
        Column("Failed", "int"),
        Column("Fail rate", "rate"),
        Column("Median load", "ms", narrow=False),
        Column("95th percentile", "ms", narrow=False),
        Column("Data", "bytes", narrow=False),
    ]
    hint = "Each upload of the file with its own figures: did the new version fix it?"
    return Table("versions", "By version", columns, rows, hint=hint)


def placement_label(report: Report, link_id: str, course: str, resource_link: str) -> str:
    """A placement by its name where StudyShelf learned it, else by a short form of its id."""
    if link_id:
        return report.placement_names.get(f"link:{link_id}") or f"Share link {link_id[:8]}…"
    title = report.placement_names.get(f"course:{course}") if course else None
    name = title or (f"Course {_short(course)}" if course else "LMS activity")
    return f"{name} · activity {_short(resource_link)}" if resource_link else name


def _short(key: str, length: int = 24) -> str:
    return key if len(key) <= length else key[: length - 1] + "…"


def placements_table(report: Report) -> Table:
    rows = []
    for p in report.insight.placements:
        m = p.metrics
        where = "Share link" if p.link_id else LMS_LABELS.get(p.lms, p.lms)
        label = placement_label(report, p.link_id, p.course, p.resource_link)
        rows.append([label, where, m.views, m.viewers, _attempts(m), m.fails, m.fail_rate, m.bytes])
    columns = [
        Column("Placement"),
        Column("Where", narrow=False),
        Column("Views", "int"),
        Column("Viewers", "int", narrow=False),
        Column("Loads", "int", narrow=False),
        Column("Failed", "int"),
        Column("Fail rate", "rate"),
        Column("Data", "bytes", narrow=False),
    ]
    hint = "Each share link and each LMS course activity it is placed in, with its own figures."
    return Table("placements", "Where it is placed", columns, rows, hint=hint)


def files_table(report: Report) -> Table:
    rows: list[list[Any]] = []
    links: list[str | None] = []
    for f in report.ranked_files:
        m = f.metrics
        rows.append([f.name or "Unavailable file", m.views, _attempts(m), m.fails, m.fail_rate, m.load_p95_ms])
        links.append(page_url("file", f.key, report.query, folder=None) if f.name else None)
    columns = [
        Column("File"),
        Column("Views", "int"),
        Column("Loads", "int", narrow=False),
        Column("Failed", "int"),
        Column("Fail rate", "rate"),
        Column("95th percentile load", "ms", narrow=False),
    ]
    hint = f"Worst fail rate first, among files viewed at least {MIN_VIEWS_TO_RANK} times in the period"
    if report.unranked_files:
        others = report.unranked_files
        hint += f" ({others} other {'file' if others == 1 else 'files'} had fewer views)"
    return Table("files", "Files that fail most", columns, rows, hint=hint + ".", links=links)


def kpis(totals: Metrics) -> list[Kpi]:
    """The headline tiles of a file's or folder's page."""
    attempts = _attempts(totals)
    return [
        Kpi("views", "Views", number(totals.views)),
        Kpi("viewers", "Unique viewers", number(totals.viewers), "counted per day"),
        Kpi(
            "fails",
            "Failed loads",
            number(totals.fails),
            f"{percent(totals.fail_rate)} of {number(attempts)} loads" if attempts else "no loads reported",
            "bad" if totals.fails else "",
        ),
        Kpi(
            "load",
            "Load time",
            duration(totals.load_p50_ms),
            f"median · 95th percentile {duration(totals.load_p95_ms)}",
        ),
        Kpi("bytes", "Data delivered", size(totals.bytes), "downloads and playback"),
        Kpi("downloads", "Downloads", number(totals.downloads)),
    ]


def series_json(report: Report) -> str:
    """The series for the chart script: bucket starts (epoch seconds), views, viewers, fails, fail rate (%)."""
    rows = _filled(report)
    return json.dumps(
        {
            "bucket": report.bucket,
            "t": [int(t.timestamp()) for t, _m in rows],
            "views": [m.views for _t, m in rows],
            "viewers": [m.viewers for _t, m in rows],
            "fails": [m.fails for _t, m in rows],
            "rate": [None if m.fail_rate is None else round(m.fail_rate * 100, 2) for _t, m in rows],
        },
        separators=(",", ":"),
    )


def _filled(report: Report) -> list[tuple[datetime, Metrics]]:
    """The series with empty buckets (hours, days, weeks of UTC) as zeros, so the chart's gaps read as none."""
    points = {t.astimezone(UTC): m for t, m in report.series}
    step = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}.get(report.bucket)
    if step is None:
        return sorted(points.items())
    start = datetime.combine(report.query.start, time(), UTC)
    end = datetime.combine(report.query.end + timedelta(days=1), time(), UTC)
    if report.bucket == "week":
        start -= timedelta(days=start.weekday())
    filled = []
    while start < end:
        filled.append((start, points.get(start, Metrics())))
        start += step
    return filled
