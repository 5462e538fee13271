"""`studyshelf analytics generate` and `studyshelf reports run|backfill`, end to end on the embedded backends."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from studyshelf.analytics.reports.models import DailyRollup, RolledDay
from studyshelf.core.clock import utcnow
from studyshelf.core.db import unit_of_work
from studyshelf.services import Services, build_services
from studyshelf.settings import Settings
from studyshelf.warehouse import SummaryQuery, Warehouse, build_warehouse
from tests.cli.test_cli import data_dir, ok, run

__all__ = ["data_dir"]  # the fixture, imported for these tests

END = utcnow().date() - timedelta(days=2)
DAYS = 4


@pytest.fixture
def generated(data_dir: Path) -> str:
    return ok(
        "analytics", "generate", "--events", "6000", "--days", str(DAYS), "--seed", "5", "--end-date", END.isoformat()
    )


@pytest.fixture
def warehouse(data_dir: Path, generated: str) -> Iterator[Warehouse]:
    found = build_warehouse(f"duckdb://{data_dir / 'warehouse.duckdb'}")
    yield found
    found.close()


@pytest.fixture
def services(data_dir: Path) -> Iterator[Services]:
    built = build_services(Settings())
    yield built
    built.warehouse.close()
    built.engine.dispose()


def whole_range() -> SummaryQuery:
    start = datetime.combine(END - timedelta(days=DAYS - 1), datetime.min.time(), UTC)
    return SummaryQuery(start=start, end=start + timedelta(days=DAYS), limit=1000)


def test_generate_fills_the_warehouse_with_skewed_traffic(generated: str, warehouse: Warehouse) -> None:
    assert "Wrote 6,000 new events" in generated
    assert warehouse.count() == 6000
    totals = warehouse.summary(whole_range()).totals
    assert totals.views > 0
    assert totals.load_ok > 0
    assert totals.fails > 0
    assert 0.005 < (totals.fail_rate or 0) < 0.3
    countries = warehouse.summary(dataclasses.replace(whole_range(), breakdown="country"))
    shares = [m.views / totals.views for _, m in countries.breakdown]
    assert len(shares) > 10  # many countries …
    assert shares[0] > 3 * shares[9]  # … some far more than others
    files = warehouse.summary(dataclasses.replace(whole_range(), breakdown="file")).breakdown
    rates = sorted((m.fail_rate or 0 for _, m in files if m.load_ok + m.fails >= 20), reverse=True)
    assert rates[0] > 0.3  # a few files fail often
    bots = warehouse.summary(dataclasses.replace(whole_range(), include_bots=True)).totals
    assert bots.views > totals.views  # bots are in the data, and left out by default


def test_generate_rolls_the_days_up_and_repeats_add_nothing(generated: str, data_dir: Path, services: Services) -> None:
    with unit_of_work(services.read_sessions) as db:
        days = set(db.scalars(select(RolledDay.day).where(RolledDay.tz == "UTC")))
        platform = db.scalars(select(DailyRollup).where(DailyRollup.scope == "*", DailyRollup.dim == "")).all()
    assert days == {END - timedelta(days=i) for i in range(DAYS)}
    assert sum(r.views for r in platform) > 0
    again = ok(
        "analytics", "generate", "--events", "6000", "--days", str(DAYS), "--seed", "5", "--end-date", END.isoformat()
    )
    assert "Wrote 0 new events (6,000 were there already)" in again


def test_reports_run_and_backfill_roll_finished_days(data_dir: Path, generated: str, services: Services) -> None:
    first = END - timedelta(days=DAYS - 1)
    assert f"Rolled up {END.isoformat()} in UTC" in ok("reports", "run", "--date", END.isoformat())
    out = ok("reports", "backfill", "--from", first.isoformat(), "--to", END.isoformat(), "--tz", "Europe/Berlin")
    assert f"Rolled up {DAYS} days ({first} to {END}) in Europe/Berlin" in out
    with unit_of_work(services.read_sessions) as db:
        berlin = set(db.scalars(select(RolledDay.day).where(RolledDay.tz == "Europe/Berlin")))
    assert berlin == {first + timedelta(days=i) for i in range(DAYS)}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("reports", "run", "--date", "2026-02-30"), "is not a date"),
        (("reports", "run", "--date", (utcnow().date() + timedelta(days=1)).isoformat()), "has not ended yet"),
        (("reports", "backfill", "--from", "2026-03-10", "--to", "2026-03-01"), "is before --from"),
        (("reports", "backfill", "--from", "2000-01-01", "--to", "2026-01-01"), "At most 3660 days"),
        (("reports", "run", "--date", "2026-03-10", "--tz", "Mars/Olympus"), "Unknown time zone"),
        (("analytics", "generate", "--events", "0"), "greater than or equal to 1"),
        (("analytics", "generate", "--events", "10", "--synthetic-files", "0"), "no files to make traffic for"),
    ],
)
def test_bad_input_is_refused_and_stores_nothing(data_dir: Path, args: tuple[str, ...], message: str) -> None:
    result = run(*args)
    assert result.exit_code != 0
    assert message in result.output
    path = data_dir / "warehouse.duckdb"
    if path.exists():
        found = build_warehouse(f"duckdb://{path}")
        assert found.count() == 0
        found.close()


def test_a_day_from_long_ago_can_be_rolled_though_nothing_happened(data_dir: Path, services: Services) -> None:
    ok("migrate")
    assert "Rolled up 2026-01-05 in UTC: 0 rows." in ok("reports", "run", "--date", date(2026, 1, 5).isoformat())
    with unit_of_work(services.read_sessions) as db:
        assert db.get(RolledDay, ("UTC", date(2026, 1, 5))) is not None
