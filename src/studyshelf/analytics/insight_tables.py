"""The tables of a file's or a folder's performance page: shown on the page and downloaded as CSV, from one list.

Each table holds typed cells (counts, rates, milliseconds, bytes, times); the page formats them for reading and
the CSV keeps the numbers, so a download equals the screen row for row and column for column.

Titles, column headers and hints are English msgids marked N_ (the page translates them); a label the tables
choose for a row ("Unknown", "Version 2 (current)", "under 25 ms") is a `Label`: English in the CSV and the JSON
API, translated by `cell` on the page, in the locale of the rendering (web/i18n.py), as are its numbers and dates.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final, Literal

from babel import Locale
from babel.dates import format_skeleton
from babel.numbers import format_decimal, format_percent

from studyshelf.analytics.insight import MIN_VIEWS_TO_RANK, Report, page_url
from studyshelf.analytics.panels import LMS_LABELS, Kpi, number
from studyshelf.core.csvsafe import csv_safe
from studyshelf.warehouse import LOAD_BUCKETS_MS, FailureRow, Metrics
from studyshelf.web import i18n
from studyshelf.web.i18n import N_


class Label(str):
    """A label chosen here for a row or a hint, its English msgid marked N_ where it is written.

    As a string it is its English text, parameters filled: the CSV, the JSON API and comparisons see that.
    `translated()` (which `cell` calls) gives it in the locale of the rendering, its parameters localised too:
    a parameter that is a Label is translated, a number gets the locale's decimal sign.
    """

    message: str
    plural: str | None
    number: int
    context: str | None
    params: dict[str, object]

    def __new__(cls, message: str, /, **params: object) -> Label:
        return cls._made(message, params)

    @classmethod
    def ngettext(cls, singular: str, plural: str, count: int, /, **params: object) -> Label:
        """A label with a singular and a plural (`num` is the count); named so that extraction finds both."""
        return cls._made(singular, {"num": count, **params}, plural=plural, count=count)

    @classmethod
    def pgettext(cls, context: str, message: str, /) -> Label:
        """A label whose English is also another message ("Share": the verb elsewhere, a proportion here)."""
        return cls._made(message, {}, context=context)

    @classmethod
    def _made(
        cls,
        message: str,
        params: dict[str, object],
        *,
        plural: str | None = None,
        count: int = 0,
        context: str | None = None,
    ) -> Label:
        english = message if plural is None or count == 1 else plural
        made = super().__new__(cls, english % {k: _english(v) for k, v in params.items()} if params else english)
        made.message, made.plural, made.number, made.context, made.params = message, plural, count, context, params
        return made

    def translated(self) -> str:
        if self.context is not None:
            text = i18n.translations(i18n.current_locale()).pgettext(self.context, self.message)
        elif self.plural is None:
            text = i18n.gettext(self.message)
        else:
            text = i18n.ngettext(self.message, self.plural, self.number)
        return text % {k: _local(v) for k, v in self.params.items()} if self.params else text


def _english(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _local(value: object) -> str:
    if isinstance(value, Label):
        return value.translated()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format_decimal(value, locale=_locale())
    return str(value)


def _locale() -> Locale:
    return Locale.parse(i18n.current_locale())


def _english_locale() -> bool:
    return i18n.current_locale() == i18n.DEFAULT_LOCALE


def shown(value: str) -> str:
    """A title, header or hint of a table as the page shows it: translated (a Label with its parameters)."""
    if isinstance(value, Label):
        return value.translated()
    return i18n.gettext(value) if value else ""


def percent(value: float | None, *, whole: bool = False) -> str:
    """A share: one decimal under 10% (4.5%) unless `whole`, none above (45%); the locale's sign and spacing."""
    if value is None:
        return "—"
    pattern = _locale().percent_formats[None].pattern
    if value < 0.1 and not whole:
        pattern = pattern.replace("#,##0", "#,##0.0", 1)
    return format_percent(value, format=pattern, locale=_locale())


def duration(ms: float | None) -> str:
    """A load time: 120 ms, 1.5 s (1,5 s in German)."""
    if ms is None:
        return "—"
    return f"{i18n.format_number(ms)} ms" if ms < 1000 else f"{i18n.format_number(ms / 1000, 1)} s"


def size(value: float) -> str:
    return i18n.format_size(int(value))


def watch_time(ms: float | None) -> str:
    """Watch time for reading: 42 s, 7 min 5 s, 3 h 12 min (the units read the same in German and Spanish)."""
    if ms is None:
        return "—"
    seconds = round(ms / 1000)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{i18n.format_number(hours)} h {minutes} min" if minutes else f"{i18n.format_number(hours)} h"


def day(value: date) -> str:
    """A day: 26 Nov 2025 (26. Nov. 2025 in German, 26 nov 2025 in Spanish)."""
    if _english_locale():
        return value.strftime("%-d %b %Y")
    return format_skeleton("yMMMd", value, locale=_locale())


def moment(value: datetime) -> str:
    """A bucket's start: 26 Nov 2025 14:00 (UTC)."""
    if _english_locale():
        return value.strftime("%-d %b %Y %H:%M")
    return f"{format_skeleton('yMMMd', value, tzinfo=value.tzinfo, locale=_locale())} {value:%H:%M}"


CellKind = Literal["text", "int", "rate", "ms", "bytes", "time", "date", "region", "watch"]
FAILURE_ROWS: Final = 50
ERROR_LABELS: Final = {
    "network": Label(N_("Network error")),
    "decode": Label(N_("Cannot decode")),
    "unsupported": Label(N_("Format not supported")),
    "http-4xx": Label(N_("Refused (HTTP 4xx)")),
    "http-5xx": Label(N_("Server error (HTTP 5xx)")),
    "timeout": Label(N_("Timed out")),
    "aborted": Label(N_("Aborted")),
    "": Label(N_("Unknown")),
}
UNKNOWN: Final = ERROR_LABELS[""]
# A device as the failures table has it (lower case) and as the device table has it (capitalised).
DEVICE_NAMES: Final = {
    "desktop": Label(N_("desktop")),
    "mobile": Label(N_("mobile")),
    "tablet": Label(N_("tablet")),
    "unknown": Label(N_("unknown")),
}
DEVICE_LABELS: Final = {
    "desktop": Label(N_("Desktop")),
    "mobile": Label(N_("Mobile")),
    "tablet": Label(N_("Tablet")),
    "unknown": Label(N_("Unknown")),
}
SHARE: Final = Label.pgettext("proportion", "Share")  # a column: the row's part of the whole
# The first column of the series table, by bucket.
BUCKET_TITLES: Final = {"hour": N_("Hour (UTC)"), "day": N_("Day"), "week": N_("Week of"), "month": N_("Month")}


@dataclass(frozen=True)
class Column:
    title: str  # an English msgid: the CSV's header, translated on the page
    kind: CellKind = "text"
    narrow: bool = True  # shown at 375 px; wide-only columns hide there (the CSV has them all)


@dataclass(frozen=True)
class Table:
    key: str  # its CSV's name
    title: str  # an English msgid, translated on the page
    columns: list[Column]
    rows: list[list[Any]]
    hint: str = ""  # an English msgid or a Label
    links: list[str | None] = field(default_factory=list)  # per row, where its first cell leads


def cell(value: Any, kind: CellKind) -> str:
    """A cell as the page shows it, in the locale of the rendering (a Label translated; names as they are)."""
    if value is None:
        return "—"
    if isinstance(value, Label):
        return value.translated()
    formats: dict[str, Callable[[Any], str]] = {
        "int": number,
        "rate": percent,
        "ms": duration,
        "bytes": size,
        "time": lambda t: moment(t) if isinstance(t, datetime) else str(t),
        "date": lambda t: day(t) if isinstance(t, date) else str(t),
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
    unit = BUCKET_TITLES.get(report.bucket, BUCKET_TITLES["day"])
    rows = [[t, m.views, m.viewers, _attempts(m), m.fails, m.fail_rate] for t, m in report.series]
    columns = [
        Column(unit, "time"),
        Column(N_("Views"), "int"),
        Column(N_("Unique viewers"), "int", narrow=False),
        Column(N_("Loads"), "int", narrow=False),
        Column(N_("Failed"), "int"),
        Column(N_("Fail rate"), "rate"),
    ]
    return Table("series", N_("Views and failed loads over time"), columns, rows)


def browser(r: FailureRow) -> str:
    """A browser with its major version (Mobile Safari 17); Unknown when the viewer did not say."""
    if r.browser:
        return f"{r.browser} {r.browser_major}".strip()
    return Label(N_("Unknown %(version)s"), version=r.browser_major) if r.browser_major else UNKNOWN


def failures_table(report: Report) -> Table:
    rows = [
        [
            browser(r),
            r.browser_major,
            r.os or UNKNOWN,
            DEVICE_NAMES.get(r.device or "unknown", r.device),
            r.country,
            ERROR_LABELS.get(r.error_class, r.error_class),
            r.fails,
            r.attempts,
            r.fail_rate,
        ]
        for r in report.insight.failures[:FAILURE_ROWS]
    ]
    columns = [
        Column(N_("Browser")),
        Column(N_("Version"), narrow=False),  # in the browser's cell too: "Mobile Safari 17"
        Column(N_("OS")),
        Column(N_("Device"), narrow=False),
        Column(N_("Country"), "region", narrow=False),
        Column(N_("Error")),
        Column(N_("Failed"), "int"),
        Column(N_("Loads"), "int", narrow=False),
        Column(N_("Fail rate"), "rate"),
    ]
    hint = N_("Failed loads by who had them and how they failed; the fail rate is of that audience's loads.")
    return Table("failures", N_("Who fails to load it"), columns, rows, hint=hint)


AUDIENCE_PICKS: Final[dict[str, Callable[[FailureRow], str]]] = {
    "browsers": browser,
    "os": lambda r: r.os or UNKNOWN,
    "devices": lambda r: DEVICE_LABELS.get(r.device or "unknown") or r.device.capitalize(),
    "countries": lambda r: r.country,
}
_AUDIENCE_TITLES: Final[dict[str, tuple[str, str, CellKind]]] = {
    "browsers": (N_("By browser"), N_("Browser"), "text"),
    "os": (N_("By operating system"), N_("OS"), "text"),
    "devices": (N_("By device"), N_("Device"), "text"),
    "countries": (N_("By country"), N_("Country"), "region"),
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
            N_("By error class"),
            [Column(N_("Error")), Column(N_("Failed"), "int"), Column(N_("Share of loads"), "rate")],
            [[ERROR_LABELS.get(k, k), f, f / a if a else None] for k, f, a in error_classes(report)],
        )
    ]
    for key, pick in AUDIENCE_PICKS.items():
        title, first, kind = _AUDIENCE_TITLES[key]
        rows = [[k, a, f, f / a if a else None] for k, f, a in grouped(report.insight.loads, pick)]
        columns = [
            Column(first, kind),
            Column(N_("Loads"), "int"),
            Column(N_("Failed"), "int"),
            Column(N_("Fail rate"), "rate"),
        ]
        made.append(Table(key, title, columns, rows))
    return made


def bucket_label(index: int) -> Label:
    """A load-time bucket as a range: "under 25 ms", "300–500 ms", "750 ms – 1 s", "30 s or more"."""
    if index == 0:
        return Label(N_("under %(time)s"), time=_ms(LOAD_BUCKETS_MS[0]))
    if index == len(LOAD_BUCKETS_MS):
        return Label(N_("%(time)s or more"), time=_ms(LOAD_BUCKETS_MS[-1]))
    low, high = LOAD_BUCKETS_MS[index - 1], LOAD_BUCKETS_MS[index]
    if high < 1000:
        return Label(N_("%(low)s–%(high)s ms"), low=low, high=high)
    if low >= 1000:
        return Label(N_("%(low)s–%(high)s s"), low=low / 1000, high=high / 1000)
    return Label(N_("%(low)s – %(high)s"), low=_ms(low), high=_ms(high))


def _ms(value: int) -> Label:
    return Label(N_("%(ms)s ms"), ms=value) if value < 1000 else Label(N_("%(s)s s"), s=value / 1000)


def load_time_table(report: Report) -> Table:
    """Successful loads per load-time bucket, from the fastest to the slowest bucket that has any."""
    histogram = report.insight.histogram
    total = sum(histogram)
    used = [i for i, count in enumerate(histogram) if count]
    shown = range(used[0], used[-1] + 1) if used else range(0)
    rows = [[bucket_label(i), histogram[i], histogram[i] / total if total else None] for i in shown]
    columns = [Column(N_("Time to first frame or page")), Column(N_("Loads"), "int"), Column(SHARE, "rate")]
    return Table("load-times", N_("Load times"), columns, rows)


def versions_table(report: Report) -> Table:
    info = report.target.versions
    rows: list[list[Any]] = []
    for v in report.insight.versions:
        known = info.get(v.version_id)
        if known is None:
            name = Label(N_("Removed version"))
        elif known.current:
            name = Label(N_("Version %(number)s (current)"), number=known.number)
        else:
            name = Label(N_("Version %(number)s"), number=known.number)
        m = v.metrics
        uploaded = known.created_at if known else None
        rows.append([name, uploaded, v.first_seen, m.views, m.viewers, _attempts(m), m.fails, m.fail_rate])
        rows[-1] += [m.load_p50_ms, m.load_p95_ms, m.bytes]
    columns = [
        Column(N_("Version")),
        Column(N_("Uploaded"), "date", narrow=False),
        Column(N_("First used"), "date", narrow=False),
        Column(N_("Views"), "int"),
        Column(N_("Viewers"), "int", narrow=False),
        Column(N_("Loads"), "int", narrow=False),
        Column(N_("Failed"), "int"),
        Column(N_("Fail rate"), "rate"),
        Column(N_("Median load"), "ms", narrow=False),
        Column(N_("95th percentile"), "ms", narrow=False),
        Column(N_("Data"), "bytes", narrow=False),
    ]
    hint = N_("Each upload of the file with its own figures: did the new version fix it?")
    return Table("versions", N_("By version"), columns, rows, hint=hint)


def placement_label(report: Report, link_id: str, course: str, resource_link: str) -> str:
    """A placement by its name where StudyShelf learned it, else by a short form of its id."""
    if link_id:
        return report.placement_names.get(f"link:{link_id}") or Label(N_("Share link %(id)s…"), id=link_id[:8])
    title = report.placement_names.get(f"course:{course}") if course else None
    name = title or (Label(N_("Course %(id)s"), id=_short(course)) if course else Label(N_("LMS activity")))
    return Label(N_("%(name)s · activity %(id)s"), name=name, id=_short(resource_link)) if resource_link else name


def _short(key: str, length: int = 24) -> str:
    return key if len(key) <= length else key[: length - 1] + "…"


def placements_table(report: Report) -> Table:
    rows = []
    for p in report.insight.placements:
        m = p.metrics
        where = Label(N_("Share link")) if p.link_id else _lms(p.lms)
        label = placement_label(report, p.link_id, p.course, p.resource_link)
        rows.append([label, where, m.views, m.viewers, _attempts(m), m.fails, m.fail_rate, m.bytes])
    columns = [
        Column(N_("Placement")),
        Column(N_("Where"), narrow=False),
        Column(N_("Views"), "int"),
        Column(N_("Viewers"), "int", narrow=False),
        Column(N_("Loads"), "int", narrow=False),
        Column(N_("Failed"), "int"),
        Column(N_("Fail rate"), "rate"),
        Column(N_("Data"), "bytes", narrow=False),
    ]
    hint = N_("Each share link and each LMS course activity it is placed in, with its own figures.")
    return Table("placements", N_("Where it is placed"), columns, rows, hint=hint)


def _lms(key: str) -> str:
    """A learning platform by its label (the dashboard's, panels.LMS_LABELS, translated on the page)."""
    found = LMS_LABELS.get(key)
    return Label(found) if found else key


def files_table(report: Report) -> Table:
    rows: list[list[Any]] = []
    links: list[str | None] = []
    for f in report.ranked_files:
        m = f.metrics
        name = f.name or Label(N_("Unavailable file"))
        rows.append([name, m.views, _attempts(m), m.fails, m.fail_rate, m.load_p95_ms])
        links.append(page_url("file", f.key, report.query, folder=None) if f.name else None)
    columns = [
        Column(N_("File")),
        Column(N_("Views"), "int"),
        Column(N_("Loads"), "int", narrow=False),
        Column(N_("Failed"), "int"),
        Column(N_("Fail rate"), "rate"),
        Column(N_("95th percentile load"), "ms", narrow=False),
    ]
    if report.unranked_files:
        hint = Label.ngettext(
            "Worst fail rate first, among files viewed at least %(min)s times in the period "
            "(%(num)s other file had fewer views).",
            "Worst fail rate first, among files viewed at least %(min)s times in the period "
            "(%(num)s other files had fewer views).",
            report.unranked_files,
            min=MIN_VIEWS_TO_RANK,
        )
    else:
        hint = Label(
            N_("Worst fail rate first, among files viewed at least %(min)s times in the period."), min=MIN_VIEWS_TO_RANK
        )
    return Table("files", N_("Files that fail most"), columns, rows, hint=hint, links=links)


def kpis(totals: Metrics) -> list[Kpi]:
    """The headline tiles of a file's or folder's page, in the locale of the rendering (call it inside
    `i18n.use_locale`): the tiles are only ever shown."""
    attempts = _attempts(totals)
    _ = i18n.gettext
    if attempts:
        fails_hint = i18n.ngettext("%(rate)s of %(num)s load", "%(rate)s of %(num)s loads", attempts) % {
            "rate": percent(totals.fail_rate),
            "num": number(attempts),
        }
    else:
        fails_hint = _(N_("no loads reported"))
    return [
        Kpi("views", _(N_("Views")), number(totals.views)),
        Kpi("viewers", _(N_("Unique viewers")), number(totals.viewers), _(N_("counted per day"))),
        Kpi("fails", _(N_("Failed loads")), number(totals.fails), fails_hint, "bad" if totals.fails else ""),
        Kpi(
            "load",
            _(N_("Load time")),
            duration(totals.load_p50_ms),
            _(N_("median · 95th percentile %(time)s")) % {"time": duration(totals.load_p95_ms)},
        ),
        Kpi("bytes", _(N_("Data delivered")), size(totals.bytes), _(N_("downloads and playback"))),
        Kpi("downloads", _(N_("Downloads")), number(totals.downloads)),
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
