"""Rollups: the warehouse's aggregates equal its raw counts, and the daily job is idempotent, zone-aware,
catches up after downtime, and runs in one process at a time."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from studyshelf.analytics.reports.models import (
    HISTOGRAM_COLUMNS,
    METRIC_COLUMNS,
    PLATFORM_SCOPE,
    ROLLUP_DIMENSIONS,
    DailyRollup,
    MonthlyRollup,
    ReportSettings,
    RolledDay,
)
from studyshelf.analytics.reports.read import percentile
from studyshelf.analytics.reports.rollup import catch_up, pending, roll_day, rollups_lease, window
from studyshelf.core.clock import utcnow
from studyshelf.core.db import unit_of_work
from studyshelf.core.errors import Conflict
from studyshelf.jobs.runner import run_due_jobs
from studyshelf.partners.models import OrgKind
from studyshelf.services import Services
from studyshelf.warehouse import (
    AUDIENCE_SEPARATOR,
    Metrics,
    RollupRow,
    SummaryQuery,
    Warehouse,
    build_warehouse,
)
from tests.analytics.rollup_support import FOLDERS, ORGS, daily_rows, midnight, seeded, varied
from tests.analytics.support import OWNER, PARTNER_A, event
from tests.conftest import World
from tests.contracts.test_warehouse import pg_warehouse_url

DAY = timedelta(days=1)
START = datetime(2026, 3, 10, tzinfo=UTC)
Counts = tuple[int, int, int, int, int, int, int]


def counts(m: Metrics | RollupRow) -> Counts:
    return (m.views, m.viewers, m.load_ok, m.fails, m.downloads, m.blocked, m.bytes)


@pytest.fixture(params=["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def warehouse(request: pytest.FixtureRequest) -> Iterator[Warehouse]:
    if request.param == "duckdb":
        w = build_warehouse("duckdb://:memory:")
        yield w
        w.close()
        return
    for url in pg_warehouse_url():
        w = build_warehouse(url)
        yield w
        w.close()


def test_rollup_rows_equal_the_raw_counts_of_the_day(warehouse: Warehouse) -> None:
    warehouse.insert(varied(seeded(7), START - timedelta(hours=6), 36, 500))
    rows = {(r.scope, r.dim, r.value): r for r in warehouse.rollup(START, START + DAY)}
    for scope in (*ORGS, PLATFORM_SCOPE):
        q = SummaryQuery(start=START, end=START + DAY, scope_org=None if scope == PLATFORM_SCOPE else scope, limit=1000)
        assert counts(rows[(scope, "", "")]) == counts(warehouse.summary(q).totals)
        cells = {value: r for (s, d, value), r in rows.items() if s == scope and d == "audience"}
        for value, cell in cells.items():  # the audience cube: one cell per (country, browser, OS, device)
            country, browser, os, device = value.split(AUDIENCE_SEPARATOR)
            only = {"country": country, "browser": browser, "os": os, "device": device}
            raw_cell = counts(
                warehouse.summary(dataclasses.replace(q, filters={k: v for k, v in only.items() if v})).totals
            )
            if all(only.values()):
                assert counts(cell) == raw_cell, (scope, value)
        assert sum(c.views for c in cells.values()) == rows[(scope, "", "")].views
        for dim in ROLLUP_DIMENSIONS:
            if dim in {"subtree", "audience"}:
                continue
            raw = {key: counts(m) for key, m in warehouse.summary(dataclasses.replace(q, breakdown=dim)).breakdown}
            rolled = {value: counts(r) for (s, d, value), r in rows.items() if s == scope and d == dim}
            assert rolled == raw, (scope, dim)
        for folder in FOLDERS:  # a folder's subtree row counts the folder and every folder below it
            raw_totals = counts(warehouse.summary(dataclasses.replace(q, filters={"folder": folder})).totals)
            row = rows.get((scope, "subtree", folder))
            assert (counts(row) if row else (0,) * 7) == raw_totals, (scope, folder)


def test_an_event_counts_for_its_owner_and_partner_once_each_and_bots_not_at_all(warehouse: Warehouse) -> None:
    warehouse.insert(
        [
            event(ts=START, owner_org=OWNER, partner_org=PARTNER_A),
            event(ts=START, owner_org=OWNER, partner_org=OWNER),
            event(ts=START, owner_org=OWNER, partner_org=PARTNER_A, bot=True),
        ]
    )
    totals = {r.scope: r.views for r in warehouse.rollup(START, START + DAY) if r.dim == ""}
    assert totals == {OWNER: 2, PARTNER_A: 1, PLATFORM_SCOPE: 2}
    only_a = warehouse.rollup(START, START + DAY, orgs=[PARTNER_A], platform=False, dims=("file",))
    assert {(r.scope, r.dim) for r in only_a} == {(PARTNER_A, ""), (PARTNER_A, "file")}


def test_the_histogram_holds_every_timed_load_and_estimates_percentiles(warehouse: Warehouse) -> None:
    warehouse.insert([event("load_ok", ts=START, load_ms=ms) for ms in (10, 30, 120, 130, 140, 45_000)])
    [total] = [r for r in warehouse.rollup(START, START + DAY) if r.scope == PLATFORM_SCOPE and r.dim == ""]
    assert sum(total.histogram) == total.load_ok == 6
    assert total.load_ms_sum == 10 + 30 + 120 + 130 + 140 + 45_000
    assert total.histogram[:4] == (1, 1, 0, 3)
    assert total.histogram[-1] == 1  # slower than the last bound
    p50 = percentile(total.histogram, 0.5)
    assert p50 is not None
    assert 100 <= p50 < 150  # the raw median (125) is in the same bucket
    assert percentile([0] * 16, 0.5) is None


def test_rolling_a_day_twice_gives_the_same_rows_and_months_sum_their_days(services: Services) -> None:
    services.warehouse.insert(varied(seeded(3), datetime(2026, 3, 30, tzinfo=UTC), 4 * 24, 300))
    days = [date(2026, 3, 30) + i * DAY for i in range(4)]
    for day in days:
        roll_day(services, "UTC", day)
    first = daily_rows(services)
    for day in days:
        roll_day(services, "UTC", day)
    assert daily_rows(services) == first
    with unit_of_work(services.read_sessions) as db:
        april = db.execute(
            select(func.sum(DailyRollup.views), func.sum(DailyRollup.h3)).where(
                DailyRollup.scope == PLATFORM_SCOPE, DailyRollup.dim == "", DailyRollup.day >= date(2026, 4, 1)
            )
        ).one()
        month = db.execute(
            select(MonthlyRollup.views, MonthlyRollup.h3).where(
                MonthlyRollup.scope == PLATFORM_SCOPE, MonthlyRollup.dim == "", MonthlyRollup.month == date(2026, 4, 1)
            )
        ).one()
        assert tuple(month) == tuple(int(v) for v in april)
        rolled = db.get(RolledDay, ("UTC", date(2026, 4, 1)))
        assert rolled is not None
        assert rolled.events > 0


def test_months_follow_their_days_row_for_row_when_a_day_is_rolled_again(services: Services) -> None:
    services.warehouse.insert(varied(seeded(5), datetime(2026, 4, 1, tzinfo=UTC), 3 * 24, 200))
    days = [date(2026, 4, 1) + i * DAY for i in range(3)]
    for day in days:
        roll_day(services, "UTC", day)
    # Late events on the second day (another file, another country), then that day is rolled again.
    late = varied(seeded(6), datetime(2026, 4, 2, tzinfo=UTC), 24, 50)
    services.warehouse.insert([dataclasses.replace(e, country="NZ", file_id=str(uuid.UUID(int=777))) for e in late])
    roll_day(services, "UTC", days[1])
    columns = (*METRIC_COLUMNS, *HISTOGRAM_COLUMNS)
    with unit_of_work(services.read_sessions) as db:
        keys = (DailyRollup.scope, DailyRollup.dim, DailyRollup.value)
        summed = {
            tuple(row[:3]): tuple(int(v) for v in row[3:])
            for row in db.execute(select(*keys, *(func.sum(getattr(DailyRollup, c)) for c in columns)).group_by(*keys))
        }
        monthly = {
            (row.scope, row.dim, row.value): tuple(getattr(row, c) for c in columns)
            for row in db.scalars(select(MonthlyRollup).where(MonthlyRollup.month == date(2026, 4, 1)))
        }
    assert monthly == summed
    assert ("*", "country", "NZ") in monthly


def test_a_late_evening_event_in_utc_is_the_next_day_in_berlin(services: Services, world: World) -> None:
    berlin = world.org("hochschule", OrgKind.PARTNER)
    london = world.org("college", OrgKind.PARTNER)
    with unit_of_work(services.write_sessions) as db:
        db.add(ReportSettings(org_id=berlin.id, time_zone="Europe/Berlin"))
    late = datetime(2026, 3, 10, 23, 30, tzinfo=UTC)
    for org in (berlin, london):
        services.warehouse.insert([event(ts=late, owner_org=str(org.id), partner_org=str(org.id))])
    assert window("Europe/Berlin", date(2026, 3, 11))[0] == datetime(2026, 3, 10, 23, 0, tzinfo=UTC)
    for tz, day in (
        ("Europe/Berlin", date(2026, 3, 10)),
        ("Europe/Berlin", date(2026, 3, 11)),
        ("UTC", date(2026, 3, 10)),
    ):
        roll_day(services, tz, day)
    berlin_rows = daily_rows(services, tz="Europe/Berlin")
    assert {(d, s) for d, s, dim, _ in berlin_rows if dim == ""} == {(date(2026, 3, 11), str(berlin.id))}
    utc_rows = daily_rows(services)
    assert {s for d, s, dim, _ in utc_rows if dim == "" and d == date(2026, 3, 10)} == {
        str(berlin.id),
        str(london.id),
        PLATFORM_SCOPE,
    }


def test_catch_up_rolls_missed_days_and_re_rolls_the_last_once_for_late_events(services: Services) -> None:
    services.warehouse.insert([event(ts=START + timedelta(hours=h)) for h in (1, 30)])  # 10 and 11 March
    just_after = midnight(date(2026, 3, 12)) + timedelta(minutes=10)
    assert pending(services, now=just_after) == [("UTC", date(2026, 3, 10)), ("UTC", date(2026, 3, 11))]
    assert catch_up(services, now=just_after) == (2, 0)

    services.warehouse.insert([event(ts=START + timedelta(hours=47, minutes=50))])  # buffered, arrives late
    assert pending(services, now=just_after + timedelta(minutes=30)) == []  # the day is not settled yet
    settled = midnight(date(2026, 3, 12)) + timedelta(hours=1, minutes=5)
    assert pending(services, now=settled) == [("UTC", date(2026, 3, 11))]
    catch_up(services, now=settled)
    assert daily_rows(services)[(date(2026, 3, 11), PLATFORM_SCOPE, "", "")][0] == 2
    assert pending(services, now=settled + timedelta(hours=2)) == []  # once, not on every pass

    after_downtime = midnight(date(2026, 3, 16)) + timedelta(hours=3)
    assert [d for _, d in pending(services, now=after_downtime)] == [date(2026, 3, 12) + i * DAY for i in range(4)]
    assert catch_up(services, now=after_downtime, budget=timedelta(0)) == (1, 3)  # the budget cuts a pass short
    assert catch_up(services, now=after_downtime) == (3, 0)
    with unit_of_work(services.read_sessions) as db:
        assert db.scalar(select(func.count()).select_from(RolledDay)) == 6


def test_the_rollup_lease_lets_one_process_in(services: Services) -> None:
    with rollups_lease(services, holder="first"):
        with pytest.raises(Conflict, match="another process"), rollups_lease(services, holder="second"):
            pass
        assert "analytics.rollups" not in run_due_jobs(services, holder="scheduler")
    with rollups_lease(services, holder="second"):
        pass


def test_two_instances_racing_roll_once(services: Services) -> None:
    recent = utcnow() - 2 * DAY
    services.warehouse.insert([event(ts=recent)])
    barrier = threading.Barrier(2)
    ran: dict[str, list[str]] = {}

    def instance(name: str) -> None:
        barrier.wait()
        ran[name] = run_due_jobs(services, holder=name)

    threads = [threading.Thread(target=instance, args=(name,)) for name in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum("analytics.rollups" in names for names in ran.values()) == 1
    with unit_of_work(services.read_sessions) as db:
        assert db.scalar(select(func.count()).select_from(RolledDay).where(RolledDay.day == recent.date())) == 1
