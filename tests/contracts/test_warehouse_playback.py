"""Playback columns and figures (issue 19), on each warehouse; warehouses made before the columns gain them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import psycopg
import pytest

from studyshelf.events.schema import COLUMNS, encode_lines
from studyshelf.warehouse import SummaryQuery, Warehouse, build_warehouse
from studyshelf.warehouse.postgres import PostgresWarehouse
from tests.analytics.support import OWNER, T0, event
from tests.conftest import PG_ADMIN_URL
from tests.contracts.test_warehouse import pg_warehouse_url

DAY = timedelta(days=1)
FILE = str(uuid.UUID(int=100))
PLAYBACK_COLUMNS = ("rendition", "captions", "watch_ms", "reached_pct")


def query(**kw: Any) -> SummaryQuery:
    return SummaryQuery(**{"start": T0 - 10 * DAY, "end": T0 + 10 * DAY, **kw})


def played(session: str, watch_ms: int, reached: int | None, *, minutes: int = 0, **fields: Any) -> Any:
    return event(
        "playback",
        ts=T0 + timedelta(minutes=minutes),
        session=session,
        watch_ms=watch_ms,
        reached_pct=reached,
        category="video",
        **fields,
    )


class PlaybackContract:
    def test_the_columns_follow_the_event(self, warehouse: Warehouse) -> None:
        assert COLUMNS[-4:] == PLAYBACK_COLUMNS  # added last: an upgraded table has them in this order
        e = played("s1", 61_000, 40, rendition="720p", captions="de-CH")
        assert warehouse.insert_lines(encode_lines([e])) == 1
        rows = warehouse.org_events(OWNER, T0 - DAY, T0 + DAY, limit=10)
        assert rows[0][-4:] == ("720p", "de-CH", 61_000, 40)

    def test_other_events_have_none(self, warehouse: Warehouse) -> None:
        warehouse.insert([event()])
        rows = warehouse.org_events(OWNER, T0 - DAY, T0 + DAY, limit=10)
        assert rows[0][-4:] == ("", "", None, None)

    def test_a_line_written_before_the_columns_is_stored_with_their_defaults(self, warehouse: Warehouse) -> None:
        data = orjson.loads(event().json_bytes())
        old = orjson.dumps({k: v for k, v in data.items() if k not in PLAYBACK_COLUMNS}) + b"\n"
        assert warehouse.insert_lines(old + encode_lines([event()])) == 2
        rows = warehouse.org_events(OWNER, T0 - DAY, T0 + DAY, limit=10)
        assert [r[-4:] for r in rows] == [("", "", None, None)] * 2

    def test_figures(self, warehouse: Warehouse) -> None:
        warehouse.insert(
            [
                # s1 reports three times (the totals so far): 720p, then 1080p; captions German, then off
                played("s1", 10_000, 10, minutes=0, rendition="720p", captions="de"),
                played("s1", 25_000, 50, minutes=1, rendition="1080p", captions="de"),
                played("s1", 60_000, 95, minutes=2, rendition="1080p"),
                played("s2", 5_000, 20, rendition="mp4"),
                played("s3", 30_000, 92, rendition="720p", captions="fr"),
                event(session="s4"),  # a view that played nothing
                event("load_ok", session="s1", load_ms=100),
            ]
        )
        found = warehouse.playback(query(filters={"file": FILE}))
        assert (found.views, found.watch_ms, found.completed) == (3, 95_000, 2)
        assert found.median_reached_pct == pytest.approx(92)
        assert found.completion_rate == pytest.approx(2 / 3)
        assert [(r.key, r.views, r.watch_ms) for r in found.renditions] == [
            ("1080p", 1, 50_000),
            ("720p", 2, 40_000),
            ("mp4", 1, 5_000),
        ]
        assert [(r.key, r.views, r.watch_ms) for r in found.captions] == [
            ("", 2, 40_000),
            ("fr", 1, 30_000),
            ("de", 1, 25_000),
        ]

    def test_a_replayed_report_changes_nothing(self, warehouse: Warehouse) -> None:
        first = played("s1", 20_000, 30, rendition="720p")
        warehouse.insert([first, played("s1", 20_000, 30, minutes=1, rendition="720p")])
        found = warehouse.playback(query())
        assert (found.views, found.watch_ms) == (1, 20_000)
        assert [(r.key, r.watch_ms) for r in found.renditions] == [("720p", 20_000)]

    def test_no_playback(self, warehouse: Warehouse) -> None:
        warehouse.insert([event()])
        found = warehouse.playback(query())
        assert (found.views, found.watch_ms, found.completed) == (0, 0, 0)
        assert found.median_reached_pct is None
        assert found.completion_rate is None
        assert found.renditions == []
        assert found.captions == []

    def test_scope_and_bots(self, warehouse: Warehouse) -> None:
        warehouse.insert([played("s1", 1_000, 5), played("s2", 2_000, 5, bot=True)])
        assert warehouse.playback(query(scope_org=OWNER)).watch_ms == 1_000
        assert warehouse.playback(query(scope_org=str(uuid.UUID(int=999)))).views == 0


class TestDuckDB(PlaybackContract):
    @pytest.fixture
    def warehouse(self, tmp_path: Path) -> Iterator[Warehouse]:
        w = build_warehouse(f"duckdb://{tmp_path / 'warehouse.duckdb'}")
        yield w
        w.close()


class TestDuckDBInMemory(PlaybackContract):
    @pytest.fixture
    def warehouse(self) -> Iterator[Warehouse]:
        w = build_warehouse("duckdb://:memory:")
        yield w
        w.close()


@pytest.mark.postgres
class TestPostgres(PlaybackContract):
    @pytest.fixture
    def warehouse(self) -> Iterator[Warehouse]:
        for url in pg_warehouse_url():
            w = build_warehouse(url)
            yield w
            w.close()


def test_a_duckdb_warehouse_made_before_the_columns_gains_them_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    first = build_warehouse(f"duckdb://{path}")
    held = event()
    first.insert([held])
    first.close()
    with duckdb.connect(str(path)) as con:  # as warehouses were made before
        for column in PLAYBACK_COLUMNS:
            con.execute(f"ALTER TABLE events DROP COLUMN {column}")
    again = build_warehouse(f"duckdb://{path}")
    try:
        assert again.count() == 1
        assert again.insert([held, played("s1", 9_000, 50, rendition="480p")]) == 1  # still deduplicated
        assert again.playback(query()).renditions[0].key == "480p"
        rows = again.org_events(OWNER, T0 - DAY, T0 + DAY, limit=10)
        assert sorted(r[-4:] for r in rows) == [("", "", None, None), ("480p", "", 9_000, 50)]
    finally:
        again.close()


@pytest.mark.postgres
def test_a_postgres_warehouse_made_before_the_columns_gains_them_in_place() -> None:
    for url in pg_warehouse_url():
        first = build_warehouse(url)
        held = event()
        first.insert([held])
        assert isinstance(first, PostgresWarehouse)
        schema = first.schema
        first.close()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:  # as warehouses were made before
            for column in PLAYBACK_COLUMNS:
                conn.execute(f"ALTER TABLE {schema}.events DROP COLUMN {column}")
        again = build_warehouse(url)
        try:
            assert again.count() == 1
            assert again.insert([held, played("s1", 9_000, 50, rendition="480p")]) == 1
            assert again.playback(query()).renditions[0].key == "480p"
            rows = again.org_events(OWNER, T0 - DAY, T0 + DAY, limit=10)
            assert sorted(r[-4:] for r in rows) == [("", "", None, None), ("480p", "", 9_000, 50)]
        finally:
            again.close()
