"""Summaries read from the rollups (reports/read.py) equal the raw summaries of the events they were rolled from."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import delete

from studyshelf.analytics.reports.audience import summary_from_audience
from studyshelf.analytics.reports.models import ReportSettings, RolledDay
from studyshelf.analytics.reports.read import summary_from_rollups
from studyshelf.analytics.reports.rollup import catch_up, roll_day, window
from studyshelf.core.db import unit_of_work
from studyshelf.events import Event
from studyshelf.partners.models import OrgKind
from studyshelf.services import Services
from studyshelf.warehouse import ALL_PARTS, Metrics, Summary, SummaryQuery
from tests.analytics.rollup_support import ORGS, seeded, varied
from tests.analytics.support import OWNER, PARTNER_A, event
from tests.conftest import World

FIRST = date(2026, 3, 29)  # events from here for 35 days: the whole of April and a little on each side
DAYS = 35
LAST = FIRST + timedelta(days=DAYS - 1)
NOW = datetime.combine(LAST, time(15), UTC)  # LAST is "today": rolled days end the day before


def counts(m: Metrics, *, viewers: bool = True) -> tuple[int, ...]:
    return (m.views, m.viewers if viewers else -1, m.load_ok, m.fails, m.downloads, m.blocked, m.bytes)


def same(rolled: Summary, raw: Summary, *, viewers: bool = True) -> None:
    def c(m: Metrics) -> tuple[int, ...]:
        return counts(m, viewers=viewers)

    assert c(rolled.totals) == c(raw.totals)
    assert [(t, c(m)) for t, m in rolled.series] == [(t, c(m)) for t, m in raw.series]
    assert sorted((k, c(m)) for k, m in rolled.breakdown) == sorted((k, c(m)) for k, m in raw.breakdown)
    assert [(k, c(m)) for k, m in rolled.top_files] == [(k, c(m)) for k, m in raw.top_files]
    assert [(k, c(m)) for k, m in rolled.top_folders] == [(k, c(m)) for k, m in raw.top_folders]


@pytest.fixture
def rolled(services: Services) -> Services:
    start = datetime.combine(FIRST, time(), UTC)
    services.warehouse.insert(varied(seeded(21), start, DAYS * 24, 1500, owners=ORGS))
    days, left = catch_up(services, now=NOW)
    assert (days, left) == (DAYS - 1, 0)  # every finished day, from the oldest event's
    return services


def query(first: date, last: date, **kw: Any) -> SummaryQuery:
    return SummaryQuery(
        **{"start": window("UTC", first)[0], "end": window("UTC", last)[1], "scope_org": OWNER, "limit": 1000, **kw}
    )


def read(services: Services, q: SummaryQuery) -> Summary | None:
    with unit_of_work(services.read_sessions) as db:
        return summary_from_rollups(db, services.warehouse, q, now=NOW)


CASES = (
    (FIRST, LAST - timedelta(days=1), "day", None),  # finished days only
    (FIRST, LAST, "day", "country"),  # today comes from the live events
    (date(2026, 4, 1), date(2026, 4, 30), "week", "browser"),  # one whole month (its monthly rows)
    (FIRST, LAST, "month", "file"),  # months whole and in part
    (date(2026, 4, 10), date(2026, 4, 20), "day", "lms"),
    (FIRST - timedelta(days=20), LAST, "day", "partner"),  # days before the oldest event are empty
)


def test_rollups_answer_what_raw_events_answer(rolled: Services) -> None:
    for first, last, bucket, breakdown in CASES:
        q = query(first, last, bucket=bucket, breakdown=breakdown)
        found = read(rolled, q)
        assert found is not None, (first, last, bucket, breakdown)
        assert found.source == "rollups"
        same(found, rolled.warehouse.summary(q))
    partner = dataclasses.replace(query(FIRST, LAST, breakdown="owner"), scope_org=PARTNER_A)
    found = read(rolled, partner)  # a partner reads its own scope
    assert found is not None
    same(found, rolled.warehouse.summary(partner))


def test_each_part_alone_reads_only_its_part(rolled: Services) -> None:
    whole = read(rolled, query(FIRST, LAST, breakdown="category"))
    assert whole is not None
    for part in ALL_PARTS:
        alone = read(rolled, query(FIRST, LAST, breakdown="category", parts=frozenset({part})))
        assert alone is not None
        expected = Summary(
            totals=whole.totals if part == "totals" else Metrics(),
            series=whole.series if part == "series" else [],
            breakdown=whole.breakdown if part == "breakdown" else [],
            top_files=whole.top_files if part == "top" else [],
            top_folders=whole.top_folders if part == "top" else [],
            source="rollups",
        )
        assert alone == expected, part


def test_what_rollups_do_not_hold_is_left_to_raw_events(rolled: Services) -> None:
    changes: list[dict[str, object]] = [
        {"filters": {"country": "GB"}},  # filters: raw events
        {"include_bots": True},
        {"bucket": "hour"},
        {"breakdown": "type"},  # not rolled up
        {"start": window("UTC", FIRST)[0] + timedelta(hours=3)},  # not whole days
    ]
    for change in changes:
        assert read(rolled, dataclasses.replace(query(FIRST, LAST), **change)) is None, change  # type: ignore[arg-type]  # deliberately wrong or loosely typed keywords, to test the validation


def test_a_day_not_rolled_sends_the_query_to_raw_events(rolled: Services) -> None:
    with unit_of_work(rolled.write_sessions) as db:
        db.execute(delete(RolledDay).where(RolledDay.tz == "UTC", RolledDay.day == date(2026, 4, 12)))
    assert read(rolled, query(date(2026, 4, 10), date(2026, 4, 14))) is None
    assert read(rolled, query(date(2026, 4, 13), date(2026, 4, 14))) is not None
    roll_day(rolled, "UTC", date(2026, 4, 12))
    assert read(rolled, query(date(2026, 4, 10), date(2026, 4, 14))) is not None


def test_an_organisations_own_time_zone_reads_its_own_days(services: Services, world: World) -> None:
    berlin = world.org("hochschule", OrgKind.PARTNER)
    with unit_of_work(services.write_sessions) as db:
        db.add(ReportSettings(org_id=berlin.id, time_zone="Europe/Berlin"))
    start = datetime.combine(FIRST, time(), UTC)
    services.warehouse.insert(varied(seeded(22), start, DAYS * 24, 800, owners=(str(berlin.id),)))
    assert catch_up(services, now=NOW)[1] == 0
    first, last = window("Europe/Berlin", date(2026, 4, 1))[0], window("Europe/Berlin", date(2026, 4, 30))[1]
    q = SummaryQuery(
        start=first, end=last, tz="Europe/Berlin", scope_org=str(berlin.id), breakdown="device", limit=1000
    )
    found = read(services, q)
    assert found is not None
    raw = services.warehouse.summary(q)
    # Viewer pseudonyms rotate at UTC midnight, so one straddling a Berlin day boundary is one viewer in each of
    # the two days: summed over days, unique viewers can be above the raw count outside UTC, never below.
    assert found.totals.viewers >= raw.totals.viewers
    same(found, raw, viewers=False)


def test_top_files_are_exact_when_todays_views_overtake(services: Services) -> None:
    files = [str(uuid.UUID(int=1000 + i)) for i in range(30)]
    day = datetime.combine(LAST - timedelta(days=2), time(9), UTC)
    # File i has 30 - i views on each of two rolled days; file 29 (the last) gets 100 views today.
    rolled_days = [
        event(ts=day + timedelta(days=d, minutes=n), file_id=f, viewer=f"v{n}-day{d}")
        for d in (0, 1)
        for i, f in enumerate(files)
        for n in range(30 - i)
    ]
    today = [event(ts=NOW - timedelta(hours=1), file_id=files[-1], viewer=f"t{n}") for n in range(100)]
    services.warehouse.insert(rolled_days + today)
    assert catch_up(services, now=NOW)[1] == 0
    q = query(LAST - timedelta(days=2), LAST, breakdown="file", limit=5)
    found = read(services, q)
    assert found is not None
    raw = services.warehouse.summary(q)
    assert [k for k, _ in found.top_files] == [k for k, _ in raw.top_files] == [files[-1], *files[:9]]
    assert [(k, counts(m)) for k, m in found.breakdown] == [(k, counts(m)) for k, m in raw.breakdown]
    assert len(found.breakdown) == 5


def audience_events(seed: int, start: datetime, days: int, n: int) -> list[Event]:
    """Events whose viewer fixes country, browser, OS and device for the day, as an address and user agent do."""
    rng = seeded(seed)
    clients = [
        ("GB", "Chrome", "Windows", "desktop"),
        ("GB", "Safari", "iOS", "mobile"),
        ("DE", "Firefox", "Linux", "desktop"),
    ]
    clients += [("DE", "Chrome", "Android", "mobile"), ("", "Chrome", "Windows", "desktop")]
    out = []
    for _ in range(n):
        ts = start + timedelta(minutes=rng.randrange(days * 24 * 60))
        person = rng.randrange(40)
        country, browser, os, device = clients[person % len(clients)]
        kind = rng.choice(("view", "view", "load_ok", "load_fail", "download"))
        out.append(
            event(
                kind,
                ts=ts,
                owner_org=OWNER,
                partner_org=rng.choice(ORGS),
                country=country,
                browser=browser,
                os=os,
                device=device,
                category=rng.choice(["pdf", "video"]),
                viewer=f"p{person}-{ts.date()}",
                bytes=rng.randrange(10_000) if kind == "download" else 0,
                load_ms=rng.randrange(5, 9000) if kind == "load_ok" else None,
                error_class="network" if kind == "load_fail" else "",
                bot=rng.random() < 0.05,
            )
        )
    return out


def test_filters_on_who_watched_read_the_audience_cube(services: Services) -> None:
    services.warehouse.insert(audience_events(31, datetime.combine(LAST - timedelta(days=9), time(), UTC), 10, 1200))
    assert catch_up(services, now=NOW)[1] == 0
    shown = frozenset({"totals", "series", "breakdown"})
    cases: list[tuple[dict[str, str], str | None]] = [
        ({"country": "GB"}, None),
        ({"country": "DE", "browser": "Chrome"}, "os"),
        ({"device": "desktop"}, "country"),
        ({"browser": "Chrome"}, "device"),
        ({"os": "Nothing"}, None),  # no cell matches: zeros
    ]
    for filters, breakdown in cases:
        for first, bucket in ((LAST - timedelta(days=9), "day"), (LAST - timedelta(days=6), "week")):
            q = query(first, LAST, filters=filters, breakdown=breakdown, bucket=bucket, parts=shown)
            with unit_of_work(services.read_sessions) as db:
                found = summary_from_audience(db, services.warehouse, q, now=NOW)
            assert found is not None, filters
            assert found.source == "rollups"
            same(found, services.warehouse.summary(q))  # unique viewers too: exact
    # Top files, other filters, bots: not the cube's to answer.
    for change in (
        {"parts": ALL_PARTS},
        {"filters": {"category": "pdf"}},
        {"include_bots": True},
        {"breakdown": "lms"},
    ):
        q = dataclasses.replace(query(LAST - timedelta(days=3), LAST, filters={"country": "GB"}, parts=shown), **change)
        with unit_of_work(services.read_sessions) as db:
            assert summary_from_audience(db, services.warehouse, q, now=NOW) is None, change
