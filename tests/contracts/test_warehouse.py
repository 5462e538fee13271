"""The Warehouse behaviour suite, written once; DuckDB and PostgreSQL only supply the `warehouse` fixture."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from studyshelf.events.schema import COLUMNS, encode_lines
from studyshelf.warehouse import LoadFailures, Metrics, SummaryQuery, Warehouse, build_warehouse
from studyshelf.warehouse.postgres import PostgresWarehouse
from tests.analytics.support import OWNER, PARTNER_A, PARTNER_B, T0, event
from tests.conftest import PG_ADMIN_URL, postgres_available, require_service

DAY = timedelta(days=1)
SUB = str(uuid.UUID(int=11))  # a subfolder of folder 10
OTHER_FILE = str(uuid.UUID(int=101))


def query(**kw: Any) -> SummaryQuery:
    return SummaryQuery(**{"start": T0 - 10 * DAY, "end": T0 + 10 * DAY, **kw})


class WarehouseContract:
    def test_insert_skips_ids_it_holds(self, warehouse: Warehouse) -> None:
        batch = [event(), event(), event()]
        assert warehouse.insert(batch) == 3
        assert warehouse.insert(batch) == 0
        assert warehouse.insert([*batch, event()]) == 1
        assert warehouse.count() == 4

    def test_duplicates_within_a_batch_count_once(self, warehouse: Warehouse) -> None:
        e = event()
        assert warehouse.insert([e, e, e]) == 1
        assert warehouse.summary(query()).totals.views == 1

    def test_totals(self, warehouse: Warehouse) -> None:
        warehouse.insert(
            [
                event(viewer="a"),
                event(viewer="a"),
                event(viewer="b"),
                event("load_ok", load_ms=100),
                event("load_ok", load_ms=200),
                event("load_ok", load_ms=300),
                event("load_fail", error_class="network"),
                event("download", bytes=1000),
                event("download", bytes=500),
                event("blocked", reason="origin"),
            ]
        )
        t = warehouse.summary(query()).totals
        assert (t.views, t.viewers, t.load_ok, t.fails, t.downloads, t.blocked) == (3, 2, 3, 1, 2, 1)
        assert t.bytes == 1500
        assert t.fail_rate == pytest.approx(0.25)
        assert t.load_p50_ms == pytest.approx(200)
        assert t.load_p95_ms == pytest.approx(290)

    def test_empty_range(self, warehouse: Warehouse) -> None:
        s = warehouse.summary(query())
        assert s.totals.views == 0
        assert s.totals.fail_rate is None
        assert s.totals.load_p50_ms is None
        assert s.series == []

    def test_range_is_half_open(self, warehouse: Warehouse) -> None:
        warehouse.insert([event(ts=T0), event(ts=T0 + DAY)])
        assert warehouse.summary(query(start=T0, end=T0 + DAY)).totals.views == 1

    def test_bots_are_left_out_unless_asked_for(self, warehouse: Warehouse) -> None:
        warehouse.insert([event(), event(bot=True, device="bot")])
        assert warehouse.summary(query()).totals.views == 1
        assert warehouse.summary(query(include_bots=True)).totals.views == 2

    def test_folder_filter_includes_subfolders(self, warehouse: Warehouse) -> None:
        root, folder = str(uuid.UUID(int=9)), str(uuid.UUID(int=10))
        warehouse.insert(
            [
                event(),  # in folder 10
                event(folder_id=SUB, folder_path=(root, folder, SUB)),
                event(folder_id=root, folder_path=(root,)),
            ]
        )
        assert warehouse.summary(query(filters={"folder": folder})).totals.views == 2
        assert warehouse.summary(query(filters={"folder": SUB})).totals.views == 1
        assert warehouse.summary(query(filters={"folder": root})).totals.views == 3

    def test_scope_is_own_content_and_own_usage(self, warehouse: Warehouse) -> None:
        other_owner = str(uuid.UUID(int=50))
        warehouse.insert(
            [
                event(partner_org=PARTNER_A),  # A uses OWNER's content
                event(partner_org=PARTNER_B),  # B uses OWNER's content
                event(owner_org=other_owner, partner_org=PARTNER_A),  # A uses someone else's
                event(owner_org=other_owner, partner_org=other_owner),
            ]
        )
        assert warehouse.summary(query(scope_org=OWNER)).totals.views == 2
        assert warehouse.summary(query(scope_org=PARTNER_A)).totals.views == 2
        assert warehouse.summary(query(scope_org=PARTNER_B)).totals.views == 1
        assert warehouse.summary(query(scope_org=PARTNER_B, filters={"partner": PARTNER_A})).totals.views == 0
        assert warehouse.summary(query(scope_org=OWNER, filters={"partner": PARTNER_A})).totals.views == 1

    def test_filters_on_each_dimension(self, warehouse: Warehouse) -> None:
        warehouse.insert(
            [
                event(country="DE", browser="Firefox", os="Linux", device="mobile", lms="canvas", course="c9"),
                event(file_id=OTHER_FILE, category="video", extension="mp4"),
            ]
        )
        for name, value, expected in [
            ("country", "DE", 1),
            ("browser", "Firefox", 1),
            ("os", "Linux", 1),
            ("device", "mobile", 1),
            ("lms", "canvas", 1),
            ("course", "c9", 1),
            ("file", OTHER_FILE, 1),
            ("category", "video", 1),
            ("extension", "pdf", 1),
            ("country", "FR", 0),
        ]:
            assert warehouse.summary(query(filters={name: value})).totals.views == expected, name

    def test_series_by_day(self, warehouse: Warehouse) -> None:
        warehouse.insert([event(ts=T0), event(ts=T0 + timedelta(hours=1)), event(ts=T0 + 2 * DAY)])
        series = warehouse.summary(query(bucket="day")).series
        assert [(t.date().isoformat(), m.views) for t, m in series] == [("2026-03-10", 2), ("2026-03-12", 1)]
        assert series[0][0].tzinfo is not None

    def test_series_by_minute_over_a_short_range(self, warehouse: Warehouse) -> None:
        """The live panel's query: half an hour by minute, its top files, the range bounding the scan."""
        minute = timedelta(minutes=1)
        warehouse.insert(
            [
                event(ts=T0 + 5 * minute),
                event(ts=T0 + 5 * minute + timedelta(seconds=59), file_id=OTHER_FILE),
                event(ts=T0 + 7 * minute, viewer="v1"),
                event("load_fail", ts=T0 + 7 * minute),
                event(ts=T0 - minute),  # just outside the half hour, before and after
                event(ts=T0 + 30 * minute),
            ]
        )
        live = warehouse.summary(
            query(start=T0, end=T0 + 30 * minute, bucket="minute", parts=frozenset({"totals", "series", "top"}))
        )
        assert [(t - T0, m.views, m.fails) for t, m in live.series] == [(5 * minute, 2, 0), (7 * minute, 1, 1)]
        assert (live.totals.views, live.totals.fails) == (3, 1)
        assert sorted(m.views for _, m in live.top_files) == [1, 2]

    def test_breakdown_sums_to_the_total(self, warehouse: Warehouse) -> None:
        warehouse.insert([event(country="DE"), event(country="DE"), event(country="FR"), event(country="")])
        s = warehouse.summary(query(breakdown="country"))
        assert [(k, m.views) for k, m in s.breakdown] == [("DE", 2), ("", 1), ("FR", 1)]
        assert sum(m.views for _, m in s.breakdown) == s.totals.views

    def test_top_files_and_folders(self, warehouse: Warehouse) -> None:
        warehouse.insert([event(), event(), event(file_id=OTHER_FILE, folder_id=SUB), event("blocked", file_id=None)])
        files = warehouse.summary(query()).top_files
        assert [(k, m.views) for k, m in files] == [(str(uuid.UUID(int=100)), 2), (OTHER_FILE, 1)]
        folders = warehouse.summary(query()).top_folders
        assert folders[0][0] == str(uuid.UUID(int=10))

    def test_delete_before(self, warehouse: Warehouse) -> None:
        old = T0 - timedelta(days=70)
        warehouse.insert([event(ts=old), event(ts=old + DAY), event(ts=T0)])
        assert warehouse.delete_before(T0 - timedelta(days=30)) == 2
        assert warehouse.count() == 1
        assert warehouse.insert([event(ts=old)]) == 1  # an old month can be written again

    def test_ping(self, warehouse: Warehouse) -> None:
        warehouse.ping()

    def test_each_part_alone_equals_its_part_of_the_whole(self, warehouse: Warehouse) -> None:
        warehouse.insert(
            [
                event(ts=T0 + i * DAY / 3, country=c, file_id=str(uuid.UUID(int=100 + i % 3)))
                for i, c in enumerate("ABCAB")
            ]
            + [event("load_ok", ts=T0, load_ms=120), event("load_fail", ts=T0 + DAY, error_class="network")]
        )
        whole = warehouse.summary(query(breakdown="country"))
        alone = {
            part: warehouse.summary(query(breakdown="country", parts=frozenset({part})))
            for part in ("totals", "series", "breakdown", "top")
        }
        assert alone["totals"].totals == whole.totals
        assert alone["series"].series == whole.series
        assert alone["breakdown"].breakdown == whole.breakdown
        assert (alone["top"].top_files, alone["top"].top_folders) == (whole.top_files, whole.top_folders)
        assert alone["totals"].series == alone["totals"].breakdown == alone["totals"].top_files == []
        assert alone["series"].totals == alone["top"].totals == Metrics()
        assert alone["breakdown"].series == []

    def test_lines_keep_every_field(self, warehouse: Warehouse) -> None:
        full = event(
            "load_ok",
            partner_org=PARTNER_A,
            version_id=str(uuid.UUID(int=7)),
            referrer_host="moodle.example.edu",
            link_id="abc_-123",
            course="Biology 101 — “Zellen” \\ \t",  # quotes, a backslash and a tab survive the lines
            resource_link="rl-9",
            session="s1",
            bytes=12_345,
            load_ms=250,
            error_class="",
        )
        assert warehouse.insert_lines(encode_lines([full])) == 1
        filters = {
            "partner": PARTNER_A,
            "file": full.file_id,
            "folder": str(uuid.UUID(int=9)),
            "country": "GB",
            "browser": "Chrome",
            "os": "Windows",
            "device": "desktop",
            "category": "pdf",
            "extension": "pdf",
            "lms": "moodle",
            "course": full.course,
            "link": "abc_-123",
        }
        found = warehouse.summary(query(scope_org=OWNER, filters=filters, breakdown="course"))
        assert found.totals.load_ok == 1
        assert found.totals.bytes == 12_345
        assert found.totals.load_p50_ms == 250
        assert found.breakdown[0][0] == full.course

    def test_lines_skip_ids_held_and_repeated(self, warehouse: Warehouse) -> None:
        first, second = event(), event()
        assert warehouse.insert([first]) == 1
        assert warehouse.insert_lines(encode_lines([first, second, second])) == 1
        assert warehouse.insert_lines(encode_lines([first, second])) == 0
        assert warehouse.count() == 2

    def test_an_unreadable_line_costs_only_itself(self, warehouse: Warehouse) -> None:
        good = [event(), event()]
        lines = encode_lines(good[:1]) + b'{"id": "torn by a cra\n\n' + encode_lines(good[1:])
        assert warehouse.insert_lines(lines) == 2
        assert warehouse.insert_lines(b"") == 0
        assert warehouse.insert_lines(b"\n\n") == 0
        assert warehouse.count() == 2

    def test_latest_is_the_newest_event(self, warehouse: Warehouse) -> None:
        assert warehouse.latest() is None
        warehouse.insert([event(ts=T0), event(ts=T0 + DAY, bot=True, device="bot"), event(ts=T0 - DAY)])
        assert warehouse.latest() == T0 + DAY

    def test_load_failures_overall_per_organisation_and_per_watched_file(self, warehouse: Warehouse) -> None:
        other_owner_file = str(uuid.UUID(int=102))
        warehouse.insert(
            [
                *(event() for _ in range(3)),
                *(event("load_ok", load_ms=100) for _ in range(3)),
                event("load_fail", error_class="network"),
                event(file_id=OTHER_FILE),  # one view: too few to be watched on its own
                event("load_fail", file_id=OTHER_FILE, error_class="network"),
                *(event(owner_org=PARTNER_A, file_id=other_owner_file) for _ in range(3)),
                *(event("load_ok", owner_org=PARTNER_A, file_id=other_owner_file) for _ in range(3)),
                event("load_fail", bot=True, device="bot"),  # bots never count
                event("load_fail", ts=T0 + DAY),  # outside the window
            ]
        )
        found = warehouse.load_failures(T0 - DAY, T0 + DAY, min_views=2)
        by_scope = {(row.scope, row.owner_org, row.file_id): row for row in found}
        overall = by_scope[("global", None, None)]
        assert (overall.views, overall.load_ok, overall.fails) == (7, 6, 2)
        assert overall.fail_rate == pytest.approx(0.25)
        assert by_scope[("organisation", OWNER, None)].fail_rate == pytest.approx(2 / 5)
        assert by_scope[("organisation", PARTNER_A, None)].fail_rate == 0
        file_rows = {row.file_id: row for row in found if row.scope == "file"}
        assert set(file_rows) == {str(uuid.UUID(int=100)), other_owner_file}
        assert file_rows[str(uuid.UUID(int=100))].owner_org == OWNER
        assert file_rows[str(uuid.UUID(int=100))].fail_rate == pytest.approx(0.25)
        assert warehouse.load_failures(T0 + 2 * DAY, T0 + 3 * DAY, min_views=1) == [
            LoadFailures("global", None, None, 0, 0, 0)
        ]

    def test_org_events_pages_one_organisation_in_time_order(self, warehouse: Warehouse) -> None:
        mine = [event(ts=T0 + timedelta(minutes=i), partner_org=PARTNER_A) for i in range(5)]
        mine.append(event(ts=T0 + timedelta(minutes=2), owner_org=PARTNER_A, partner_org=PARTNER_B))  # a tie in ts
        others = [event(ts=T0, partner_org=PARTNER_B), event(ts=T0)]
        warehouse.insert([*mine, *others, event(ts=T0 - 2 * DAY, partner_org=PARTNER_A)])
        pages, after = [], None
        while True:
            page = warehouse.org_events(PARTNER_A, T0 - DAY, T0 + DAY, after=after, limit=2)
            pages.append(page)
            if len(page) < 2:
                break
            after = (page[-1][COLUMNS.index("ts")], page[-1][COLUMNS.index("id")])
        rows = [row for page in pages for row in page]
        assert sorted(r[COLUMNS.index("id")] for r in rows) == sorted(e.id for e in mine)
        keys = [(r[COLUMNS.index("ts")], r[COLUMNS.index("id")]) for r in rows]
        assert keys == sorted(keys)
        first = dict(zip(COLUMNS, rows[0], strict=True))
        assert first["ts"] == T0
        assert first["ts"].tzinfo is not None
        assert first["partner_org"] == PARTNER_A
        assert isinstance(first["file_id"], str)
        assert first["folder_path"] == [str(uuid.UUID(int=9)), str(uuid.UUID(int=10))]
        assert first["viewer"] == "v1"  # pseudonymous, as stored

    def test_erase_org_deletes_its_events_and_tells_their_days(self, warehouse: Warehouse) -> None:
        warehouse.insert(
            [
                event(ts=T0, partner_org=PARTNER_A),
                event(ts=T0 + DAY, owner_org=PARTNER_A, partner_org=PARTNER_B),
                event(ts=T0, partner_org=PARTNER_B),
                event(ts=T0),
            ]
        )
        assert warehouse.erase_org(PARTNER_A) == [T0.date(), (T0 + DAY).date()]
        assert warehouse.count() == 2
        assert warehouse.org_events(PARTNER_A, T0 - DAY, T0 + 2 * DAY, limit=10) == []
        assert warehouse.summary(query(scope_org=PARTNER_B)).totals.views == 1
        assert warehouse.erase_org(PARTNER_A) == []


class TestDuckDB(WarehouseContract):
    @pytest.fixture
    def warehouse(self, tmp_path: Path) -> Iterator[Warehouse]:
        w = build_warehouse(f"duckdb://{tmp_path / 'warehouse.duckdb'}")
        yield w
        w.close()


class TestDuckDBInMemory(WarehouseContract):
    @pytest.fixture
    def warehouse(self) -> Iterator[Warehouse]:
        w = build_warehouse("duckdb://:memory:")
        yield w
        w.close()


def pg_warehouse_url() -> Iterator[str]:
    """A PostgreSQL warehouse in a schema of its own, dropped afterwards."""
    require_service(postgres_available(), "PostgreSQL")
    schema = f"wh_{uuid.uuid4().hex[:12]}"
    yield f"{PG_ADMIN_URL}?schema={schema}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.mark.postgres
class TestPostgres(WarehouseContract):
    @pytest.fixture
    def warehouse(self) -> Iterator[Warehouse]:
        for url in pg_warehouse_url():
            w = build_warehouse(url)
            yield w
            w.close()

    def test_months_are_partitions(self, warehouse: Warehouse) -> None:
        warehouse.insert([event(ts=T0), event(ts=T0 + timedelta(days=40))])
        assert warehouse.insert([event(ts=T0 - timedelta(days=400))]) == 1
        assert isinstance(warehouse, PostgresWarehouse)
        schema = warehouse.schema
        with psycopg.connect(PG_ADMIN_URL) as conn:
            rows = conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r' ORDER BY 1",
                [schema],
            ).fetchall()
        assert [r[0] for r in rows] == ["events_p202502", "events_p202603", "events_p202604"]
        warehouse.delete_before(T0 - timedelta(days=30))
        with psycopg.connect(PG_ADMIN_URL) as conn:
            left = conn.execute(
                "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'",
                [schema],
            ).fetchone()
        assert left is not None
        assert left[0] == 2

    def test_the_key_leads_with_time_so_it_bounds_short_ranges(self, warehouse: Warehouse) -> None:
        assert isinstance(warehouse, PostgresWarehouse)
        warehouse.insert([event(ts=T0)])
        assert _primary_key(warehouse.schema) == "PRIMARY KEY (ts, id)"

    def test_a_warehouse_keyed_by_id_first_is_rekeyed_with_its_events(self) -> None:
        for url in pg_warehouse_url():
            first = build_warehouse(url)
            held = event(ts=T0)
            first.insert([held, event(ts=T0 + timedelta(hours=1))])
            assert isinstance(first, PostgresWarehouse)
            schema = first.schema
            first.close()
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:  # as warehouses were made before
                conn.execute(f"ALTER TABLE {schema}.events DROP CONSTRAINT events_pkey")
                conn.execute(f"ALTER TABLE {schema}.events ADD PRIMARY KEY (id, ts)")
            again = build_warehouse(url)
            try:
                assert again.count() == 2
                assert _primary_key(schema) == "PRIMARY KEY (ts, id)"
                assert again.insert([held, event(ts=T0 + timedelta(hours=2))]) == 1  # still deduplicated
                assert again.count() == 3
            finally:
                again.close()


def _primary_key(schema: str) -> str:
    with psycopg.connect(PG_ADMIN_URL) as conn:
        row = conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'p'",
            [f"{schema}.events"],
        ).fetchone()
    assert row is not None
    return str(row[0])
