"""End to end on the embedded backends: /v/ views and refusals → spool → DuckDB → the summary API, scoped."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from studyshelf.analytics.ingest.drain import wait_until_drained
from studyshelf.app import create_app
from studyshelf.events.spool import SpoolEventStream
from studyshelf.warehouse import WarehouseError
from tests.analytics.conftest import CHROME, Usage, drain
from tests.conftest import Member, World
from tests.html import parse_html
from tests.links.support import EMBEDDED, visitor

BROWSER = {**EMBEDDED, "user-agent": CHROME}
SUMMARY = "/api/v1/analytics/summary"


def summary(member: Member, org_id: object, **params: Any) -> dict[str, Any]:
    response = member.client.get(SUMMARY, params={"org_id": str(org_id), **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def view(client: TestClient, path: str, **headers: str) -> None:
    page = client.get(path, headers={**BROWSER, **headers})
    assert page.status_code == 200, page.text


def test_views_and_refusals_reach_the_warehouse_and_each_org_sees_its_own(world: World, usage: Usage) -> None:
    p = usage.p
    learner = visitor(p.publisher)
    for _ in range(3):
        view(learner, usage.partner_link)
    view(learner, usage.other_link)
    view(learner, usage.own_link)
    refused = learner.get(usage.partner_link, headers={**BROWSER, "sec-fetch-dest": "document"})
    assert refused.status_code == 403
    assert drain(world.services) == 6

    publisher = summary(p.publisher, p.operator.id)["totals"]
    assert (publisher["views"], publisher["blocked"]) == (5, 1)
    partner = summary(p.student, p.partner.id)["totals"]
    assert (partner["views"], partner["blocked"]) == (3, 1)
    other = summary(usage.other_teacher, usage.other.id)["totals"]
    assert (other["views"], other["blocked"]) == (1, 0)
    by_partner = summary(p.publisher, p.operator.id, breakdown="partner")["rows"]
    assert {r["key"]: r["views"] for r in by_partner} == {
        str(p.partner.id): 3,
        str(usage.other.id): 1,
        str(p.operator.id): 1,
    }
    # A partner naming another partner sees nothing of it.
    assert summary(p.student, p.partner.id, partner=str(usage.other.id))["totals"]["views"] == 0


def test_the_summary_answers_only_members(world: World, usage: Usage) -> None:
    p = usage.p
    assert p.student.client.get(SUMMARY, params={"org_id": str(p.operator.id)}).status_code == 404
    assert usage.other_teacher.client.get(SUMMARY, params={"org_id": str(p.partner.id)}).status_code == 404
    assert TestClient(world.app).get(SUMMARY, params={"org_id": str(p.partner.id)}).status_code == 401
    bad = p.publisher.client.get(
        SUMMARY, params={"org_id": str(p.operator.id), "from": "2026-02-01", "to": "2026-01-01"}
    )
    assert bad.status_code == 422


def test_folder_filter_counts_the_subtree_and_the_event_knows_its_file(world: World, usage: Usage) -> None:
    p = usage.p
    view(visitor(p.publisher), usage.partner_link)
    drain(world.services)
    body = summary(p.publisher, p.operator.id, folder=p.course["id"])
    assert body["totals"]["views"] == 1
    assert summary(p.publisher, p.operator.id, folder=str(p.publisher.root_folder_id))["totals"]["views"] == 1
    assert [r["key"] for r in body["top_files"]] == [p.notes["id"]]
    assert [r["key"] for r in body["top_folders"]] == [p.course["id"]]
    assert body["series"][0]["views"] == 1
    by = summary(p.publisher, p.operator.id, breakdown="browser")["rows"]
    assert [(r["key"], r["views"]) for r in by] == [("Chrome", 1)]
    lms = summary(p.publisher, p.operator.id, lms="moodle")["totals"]["views"]
    assert lms == 1  # the embedding page was https://moodle.example.edu


def test_link_previewers_are_kept_but_not_counted_as_views(world: World, usage: Usage) -> None:
    p = usage.p
    card = visitor(p.publisher).get(
        usage.partner_link, headers={**EMBEDDED, "user-agent": "Slackbot-LinkExpanding 1.0"}
    )
    assert card.status_code == 200
    drain(world.services)
    assert world.services.warehouse.count() == 1
    assert summary(p.publisher, p.operator.id)["totals"]["views"] == 0


def test_the_buffer_holds_no_address_or_user_agent(world: World, usage: Usage) -> None:
    view(visitor(usage.p.publisher), usage.partner_link, **{"user-agent": CHROME + " marker-7f3a"})
    stream = world.services.events
    assert isinstance(stream, SpoolEventStream)
    text = "".join(path.read_text() for path in Path(stream.directory).glob("seg-*.jsonl"))
    assert '"type":"view"' in text
    assert "marker-7f3a" not in text
    assert "testclient" not in text  # TestClient's peer address


def test_a_warehouse_that_is_down_keeps_events_buffered_and_readyz_says_so(
    world: World, usage: Usage, tmp_path: Path
) -> None:
    view(visitor(usage.p.publisher), usage.partner_link)
    services = world.services
    blocker = Path(services.settings.resolved_warehouse_url.removeprefix("duckdb://"))
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_bytes(b"not a duckdb file")
    try:
        drain(services)
    except WarehouseError:
        pass
    else:
        raise AssertionError("the drain should have failed")
    ready = TestClient(world.app).get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"
    assert ready.json()["warehouse"].startswith("error")
    assert ready.json()["event_buffer"] == "ok: 1 buffered"
    blocker.unlink()
    assert services.events.backlog() == 1


def test_the_viewer_page_carries_a_beacon_token(world: World, usage: Usage) -> None:
    page = visitor(usage.p.publisher).get(usage.partner_link, headers=BROWSER)
    token = parse_html(page).attr("[data-beacon-token]", "data-beacon-token")
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", token)


def test_the_app_drains_its_spool_in_the_background(world: World, usage: Usage) -> None:
    with TestClient(create_app(services=world.services), base_url="http://testserver") as running:
        view(running, usage.partner_link)
        assert wait_until_drained(world.services.events, timeout=10)
        assert world.services.warehouse.count() == 1
