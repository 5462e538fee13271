"""A partner's raw events as CSV and Parquet: streamed, only its own, permission-checked, bad ranges refused."""

from __future__ import annotations

import csv
import io
import tracemalloc
from datetime import timedelta

import pyarrow as pa  # type: ignore[import-untyped]  # pyarrow ships no type stubs
import pyarrow.parquet as pq  # type: ignore[import-untyped]  # pyarrow ships no type stubs
import pytest

from studyshelf.analytics import export
from studyshelf.events.schema import COLUMNS, encode_lines
from studyshelf.services import Services
from tests.analytics.data_support import Orgs, ago, db_url, new_uuid, noon, orgs, settings, usage  # noqa: F401 - this module's fixtures: both warehouses
from tests.analytics.support import event
from tests.conftest import World

URL = "/api/v1/analytics/events"


@pytest.fixture
def o(world: World) -> Orgs:
    return orgs(world)


def _seed(services: Services, o: Orgs) -> None:
    today = services.clock.now().date()
    services.warehouse.insert(
        [
            *usage(o, ago(today, 1), partner_views=3, other_views=2, own_views=1),
            *usage(o, ago(today, 3), partner_views=2, other_views=1, own_views=0),
            event(ts=noon(ago(today, 2)), owner_org=str(o.partner.id), partner_org=str(o.partner.id), viewer="=1+1"),
            event(ts=noon(ago(today, 30)), owner_org=str(o.operator.id), partner_org=str(o.partner.id)),  # outside
        ]
    )


def _range(services: Services, first: int, last: int) -> dict[str, str]:
    today = services.clock.now().date()
    return {"from": ago(today, first).isoformat(), "to": ago(today, last).isoformat()}


def test_a_partner_exports_only_its_own_events_as_csv(services: Services, o: Orgs) -> None:
    _seed(services, o)
    params = {"org_id": str(o.partner.id), "format": "csv", **_range(services, 7, 0)}
    response = o.teacher.client.get(URL, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert (
        f"studyshelf-events-university-{params['from']}-{params['to']}.csv" in response.headers["content-disposition"]
    )
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0]) == list(COLUMNS)
    assert len(rows) == 6  # 3 + 2 views of the operator's content, 1 of its own; not the other partner's
    assert all(str(o.partner.id) in (r["owner_org"], r["partner_org"]) for r in rows)
    assert [r["ts"] for r in rows] == sorted(r["ts"] for r in rows)
    assert {r["viewer"] for r in rows} >= {"p0", "'=1+1"}  # pseudonyms as stored, cells formula-safe
    assert rows[0]["folder_path"].count("/") == 1


def test_parquet_reads_back_with_pyarrow_and_equals_the_csv(services: Services, o: Orgs) -> None:
    _seed(services, o)
    params = {"org_id": str(o.partner.id), **_range(services, 7, 0)}
    as_csv = list(csv.DictReader(io.StringIO(o.teacher.client.get(URL, params=params).text)))
    response = o.teacher.client.get(URL, params={**params, "format": "parquet"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.apache.parquet"
    table = pq.read_table(pa.BufferReader(response.content))
    assert table.schema.names == list(COLUMNS)
    assert table.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert table.num_rows == len(as_csv)
    assert table.column("id").to_pylist() == [r["id"] for r in as_csv]
    assert table.column("folder_path").to_pylist()[0] == as_csv[0]["folder_path"].split("/")


def test_an_empty_range_is_a_header_or_an_empty_parquet(services: Services, o: Orgs) -> None:
    params = {"org_id": str(o.partner.id), **_range(services, 7, 0)}
    assert o.teacher.client.get(URL, params=params).text.strip() == ",".join(COLUMNS)
    body = o.teacher.client.get(URL, params={**params, "format": "parquet"}).content
    assert pq.read_table(pa.BufferReader(body)).num_rows == 0


def test_operator_admins_export_any_partner_and_others_may_not(services: Services, o: Orgs) -> None:
    _seed(services, o)
    params = {"org_id": str(o.partner.id), **_range(services, 7, 0)}
    assert len(o.publisher.client.get(URL, params=params).text.strip().splitlines()) == 7
    stranger = o.stranger.client.get(URL, params=params)
    assert stranger.status_code == 404
    assert stranger.headers["content-type"].startswith("application/problem+json")
    unknown = o.publisher.client.get(URL, params={**params, "org_id": new_uuid()})
    assert unknown.status_code == 404


@pytest.mark.parametrize(
    ("first", "last", "says"),
    [
        (1, 3, "before"),  # inverted
        (100, 0, "at most 92"),
        (-2, -3, "future"),
        (420, 400, "kept 400 days"),
    ],
)
def test_bad_ranges_are_refused_clearly(services: Services, o: Orgs, first: int, last: int, says: str) -> None:
    params = {"org_id": str(o.partner.id), **_range(services, first, last)}
    response = o.teacher.client.get(URL, params=params)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert says in response.json()["detail"]


def test_malformed_input_is_a_4xx(services: Services, o: Orgs) -> None:
    client = o.teacher.client
    assert client.get(URL, params={"org_id": str(o.partner.id), "from": "yesterday"}).status_code == 422
    assert client.get(URL, params={"org_id": "nope"}).status_code == 422
    assert client.get(URL, params={"org_id": str(o.partner.id), "format": "xlsx"}).status_code == 422


def test_the_export_is_documented_in_the_openapi(services: Services, o: Orgs) -> None:
    spec = o.teacher.client.get("/api/openapi.json").json()
    operation = spec["paths"][URL]["get"]
    assert {"text/csv", "application/vnd.apache.parquet"} <= set(operation["responses"]["200"]["content"])
    assert {p["name"] for p in operation["parameters"]} >= {"org_id", "from", "to", "format"}
    assert "post" in spec["paths"]["/api/v1/analytics/erasures"]


def test_memory_stays_bounded_over_a_large_range(services: Services, o: Orgs) -> None:
    """40,000 events over 20 days stream in pages: the peak is a few pages, far below the whole range."""
    today = services.clock.now().date()
    partner, operator = str(o.partner.id), str(o.operator.id)
    for day in range(1, 21):
        start = noon(ago(today, day))
        batch = [
            event(ts=start + timedelta(seconds=i), owner_org=operator, partner_org=partner, viewer=f"v{i}")
            for i in range(2000)
        ]
        services.warehouse.insert_lines(encode_lines(batch))
    rng = export.ExportRange(
        o.partner.id, "university", ago(today, 20), ago(today, 1), "UTC", noon(ago(today, 21)), noon(today)
    )
    tracemalloc.start()
    try:
        one_page = next(export.pages(services.warehouse, rng, page_rows=1000))
        _current, page_peak = tracemalloc.get_traced_memory()
        del one_page
        tracemalloc.reset_peak()
        rows = groups = 0
        for chunk in export.parquet_chunks(export.pages(services.warehouse, rng, page_rows=1000)):
            groups += bool(chunk)
        _current, stream_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    for page in export.pages(services.warehouse, rng, page_rows=5000):
        rows += len(page)
    assert rows == 40_000
    assert groups >= 40  # a row group went out per page
    assert stream_peak < 6 * page_peak  # 40 pages streamed in the memory of a few
