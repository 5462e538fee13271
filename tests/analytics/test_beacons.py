"""The viewer's beacon: what is accepted, what is refused (and then nothing is stored), floods and replays.

A beacon cannot falsify figures (issue 13, point 8): bytes are capped by the file's size, load times by
MAX_LOAD_MS, each page view sends its share of events however many processes it reaches, and a view the
server never counted sends none.
"""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from studyshelf.analytics.beacons import MAX_LOAD_MS, BeaconGuard
from studyshelf.analytics.jobs import apply_retention
from studyshelf.analytics.models import BeaconView
from studyshelf.app import create_app
from studyshelf.core.clock import CLOCK_SKEW, utcnow
from studyshelf.core.db import unit_of_work
from studyshelf.core.errors import Conflict, TooManyRequests
from studyshelf.core.keys import KeyRing
from studyshelf.events.beacon import BeaconClaims, read_beacon, sign_beacon
from studyshelf.services import Services
from studyshelf.warehouse import SummaryQuery
from tests.analytics.conftest import CHROME, Usage, drain
from tests.conftest import World
from tests.html import parse_html
from tests.links.support import EMBEDDED, visitor

URL = "/api/v1/events"
SECRET = "test-secret-key-that-is-long-enough-for-production-0123456789"
KEYS = KeyRing.for_install(SECRET)
PROBLEMS = "https://studyshelf.dev/problems/"
NOTES_SIZE = len(b"lecture notes")
TIB = 1 << 40


def open_page(client: TestClient, path: str) -> str:
    """Open a viewer page in `client` (counted as a view by its app); return the page's beacon token."""
    viewer = parse_html(client.get(path, headers={**EMBEDDED, "user-agent": CHROME}))
    return viewer.attr("[data-beacon-token]", "data-beacon-token")


@pytest.fixture
def page(usage: Usage) -> tuple[TestClient, str]:
    """A learner's browser with a viewer page open: (client, beacon token)."""
    learner = visitor(usage.p.publisher)
    return learner, open_page(learner, usage.partner_link)


def beacon(token: str, **kw: Any) -> dict[str, Any]:
    return {"token": token, "type": "load_ok", "seq": 0, "t": int(time.time() * 1000), "load_ms": 420, **kw}


def stored(world: World) -> list[str]:
    drain(world.services)
    now = utcnow()
    q = SummaryQuery(start=now.replace(year=now.year - 1), end=now.replace(year=now.year + 1), include_bots=True)
    totals = world.services.warehouse.summary(q).totals
    return ["view"] * totals.views + ["load_ok"] * totals.load_ok + ["load_fail"] * totals.fails


def test_a_beacon_is_stored_with_the_page_context(world: World, usage: Usage, page: tuple[TestClient, str]) -> None:
    client, token = page
    ok = client.post(URL, json=beacon(token), headers={"user-agent": CHROME})
    assert ok.status_code == 204, ok.text
    failed_page = open_page(client, usage.partner_link)  # one outcome a page view: the failure is another view's
    fail = client.post(URL, json=beacon(failed_page, type="load_fail", load_ms=None, error_class="decode"))
    assert fail.status_code == 204, fail.text
    assert sorted(stored(world)) == ["load_fail", "load_ok", "view", "view"]
    partner = usage.p.student.client.get(
        "/api/v1/analytics/summary", params={"org_id": str(usage.p.partner.id), "file": usage.p.notes["id"]}
    ).json()["totals"]
    assert (partner["load_ok"], partner["fails"], partner["fail_rate"], partner["load_p50_ms"]) == (1, 1, 0.5, 420.0)
    # The beacons come from our viewer page, yet count for the LMS that framed the view.
    by_lms = usage.p.student.client.get(
        "/api/v1/analytics/summary", params={"org_id": str(usage.p.partner.id), "breakdown": "lms"}
    ).json()["rows"]
    assert [(r["key"], r["views"], r["load_ok"], r["fails"]) for r in by_lms] == [("moodle", 2, 1, 1)]


def test_a_sendbeacon_text_body_is_accepted(page: tuple[TestClient, str]) -> None:
    client, token = page
    sent = client.post(URL, content=json.dumps(beacon(token)), headers={"content-type": "text/plain;charset=UTF-8"})
    assert sent.status_code == 204


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"type": "view"}, 422),  # views are counted by the server only
        ({"type": "purchase"}, 422),
        ({"seq": "0"}, 422),
        ({"load_ms": -5}, 422),
        ({"extra": 1}, 422),
        ({"type": "load_fail", "error_class": "gremlins"}, 422),
        ({"type": "load_fail"}, 422),  # needs an error class
        ({"captions": "en us!"}, 422),  # not a language tag
        ({"captions": "x" * 36}, 422),
        ({"t": int(time.time() * 1000) + 3_600_000}, 422),  # far future
        ({"t": 1_000_000_000_000}, 422),  # 2001: before the page existed
        ({"token": "eyJsaW5rX2lkIjoieCJ9.forgedmacforgedmacforgedmacforged"}, 403),
    ],
)
def test_bad_beacons_are_refused_and_nothing_is_stored(
    world: World, page: tuple[TestClient, str], change: dict[str, Any], status: int
) -> None:
    client, token = page
    refused = client.post(URL, json={**beacon(token), **change})
    assert refused.status_code == status, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert stored(world) == ["view"]


def test_a_beacon_may_say_which_captions_language_is_shown(page: tuple[TestClient, str]) -> None:
    client, token = page
    assert client.post(URL, json=beacon(token, captions="pt-BR")).status_code == 204


def test_not_json_and_huge_bodies_are_refused(world: World, page: tuple[TestClient, str]) -> None:
    client, token = page
    assert client.post(URL, content=b"\xff not json").status_code == 422
    huge = json.dumps({**beacon(token), "pad": "x" * 5000})
    assert client.post(URL, content=huge).status_code == 413
    assert stored(world) == ["view"]


def test_an_expired_or_tampered_token_is_refused(world: World, page: tuple[TestClient, str]) -> None:
    client, token = page
    claims = read_beacon(KEYS, token, now=time.time())
    data = {**claims.__dict__, "expires": int(time.time()) - CLOCK_SKEW - 1}
    expired = sign_beacon(KEYS, BeaconClaims(**data))
    assert client.post(URL, json=beacon(expired)).status_code == 403
    other_file = sign_beacon(KeyRing.for_install("another-secret-" + SECRET), claims)
    assert client.post(URL, json=beacon(other_file)).status_code == 403
    kid, body, mac = token.split(".")
    assert client.post(URL, json=beacon(f"{kid}.{body[:-2]}AA.{mac}")).status_code == 403
    assert stored(world) == ["view"]


def test_a_replay_is_refused_and_never_counted_twice(world: World, page: tuple[TestClient, str]) -> None:
    client, token = page
    body = beacon(token)
    assert client.post(URL, json=body).status_code == 204
    assert client.post(URL, json=body).status_code == 409
    assert sorted(stored(world)) == ["load_ok", "view"]


def test_a_flood_from_one_page_view_stores_its_one_outcome(world: World, page: tuple[TestClient, str]) -> None:
    client, token = page
    answers = [
        client.post(URL, json=beacon(token, type="load_fail", error_class="network", seq=i, load_ms=None))
        for i in range(70)
    ]
    assert [a.status_code for a in answers].count(204) == 1
    assert {(a.status_code, a.json()["type"]) for a in answers[1:60]} == {(429, PROBLEMS + "beacon-view-limit")}
    assert {a.status_code for a in answers[60:]} == {429}  # past the process's rate: refused before the database
    assert stored(world).count("load_fail") == 1


def test_each_process_refuses_at_once_only_what_it_stored_itself() -> None:
    guard = BeaconGuard(per_minute=3)
    for seq in range(3):
        guard.check("s1", seq, minute=100)
        guard.stored("s1", seq, minute=100)
    with pytest.raises(Conflict):
        guard.check("s1", 1, minute=100)  # stored here: the cluster holds it too
    with pytest.raises(TooManyRequests):
        guard.check("s1", 3, minute=100)  # the cluster has stored at least these three this minute
    guard.check("s1", 3, minute=101)  # a new minute
    guard.check("s2", 0, minute=100)  # another page view has its own


def _refusal(answer: Any, status: int, slug: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["type"] == PROBLEMS + slug


def _totals(world: World) -> dict[str, Any]:
    drain(world.services)
    now = utcnow()
    q = SummaryQuery(start=now.replace(year=now.year - 1), end=now.replace(year=now.year + 1), include_bots=True)
    return dataclasses.asdict(world.services.warehouse.summary(q).totals)


def test_a_beacon_cannot_report_more_bytes_than_the_file_has(world: World, page: tuple[TestClient, str]) -> None:
    client, token = page
    assert read_beacon(KEYS, token, now=time.time()).size == NOTES_SIZE  # the token carries the size
    for too_many in (4 * TIB, NOTES_SIZE + 1):
        refused = client.post(URL, json=beacon(token, type="load_fail", error_class="aborted", bytes=too_many))
        _refusal(refused, 422, "beacon-out-of-range")
        assert refused.json()["field"] == "bytes"
    assert _totals(world)["bytes"] == 0
    whole = client.post(URL, json=beacon(token, type="load_fail", error_class="aborted", bytes=NOTES_SIZE))
    assert whole.status_code == 204, whole.text
    assert _totals(world)["bytes"] == NOTES_SIZE


def test_an_absurd_load_time_is_refused(world: World, page: tuple[TestClient, str]) -> None:
    client, token = page
    for absurd in (MAX_LOAD_MS + 1, 50 * 60_000, 10**12):
        refused = client.post(URL, json=beacon(token, load_ms=absurd))
        _refusal(refused, 422, "beacon-out-of-range")
    assert stored(world) == ["view"]
    assert client.post(URL, json=beacon(token, load_ms=MAX_LOAD_MS)).status_code == 204
    assert _totals(world)["load_p95_ms"] <= MAX_LOAD_MS


def _app(services: Services, **settings: Any) -> FastAPI:
    """Another web process over the same database and event buffer (its own in-process limits)."""
    return create_app(services=dataclasses.replace(services, settings=services.settings.model_copy(update=settings)))


def test_a_page_views_limit_holds_across_processes(world: World, usage: Usage) -> None:
    first = TestClient(_app(world.services, beacon_events_per_view=3), base_url="http://testserver")
    second = TestClient(_app(world.services, beacon_events_per_view=3), base_url="http://testserver")
    token = open_page(first, usage.partner_link)
    fail = {"type": "load_fail", "error_class": "network", "load_ms": None}
    for seq, process in enumerate((first, second, first)):
        assert process.post(URL, json=beacon(token, seq=seq, **fail)).status_code == 204
    _refusal(second.post(URL, json=beacon(token, seq=3, **fail)), 429, "beacon-view-limit")
    _refusal(first.post(URL, json=beacon(token, seq=4, **fail)), 429, "beacon-view-limit")
    assert stored(world).count("load_fail") == 3


def test_the_default_is_one_event_a_page_view_in_any_process(world: World, page: tuple[TestClient, str]) -> None:
    client, token = page
    other = TestClient(create_app(services=world.services), base_url="http://testserver")
    assert client.post(URL, json=beacon(token)).status_code == 204
    _refusal(other.post(URL, json=beacon(token, seq=1)), 429, "beacon-view-limit")
    assert sorted(stored(world)) == ["load_ok", "view"]


def test_a_beacon_for_a_view_never_counted_is_refused(world: World, page: tuple[TestClient, str]) -> None:
    client, token = page
    claims = read_beacon(KEYS, token, now=time.time())
    uncounted = sign_beacon(KEYS, dataclasses.replace(claims, session="0123456789abcdef"))
    _refusal(client.post(URL, json=beacon(uncounted)), 403, "beacon-view-unknown")
    assert stored(world) == ["view"]
    assert client.post(URL, json=beacon(token)).status_code == 204  # the page's own view is counted


def test_an_attack_leaves_the_dashboard_sane(world: World, usage: Usage) -> None:
    learner = visitor(usage.p.publisher)
    assert learner.post(URL, json=beacon(open_page(learner, usage.partner_link))).status_code == 204
    # The attacker opens the viewer once and sends forged figures through three processes.
    processes = [visitor(usage.p.publisher), *(TestClient(create_app(services=world.services)) for _ in range(2))]
    token = open_page(processes[0], usage.partner_link)
    claims = read_beacon(KEYS, token, now=time.time())
    huge = {"type": "load_fail", "error_class": "network", "load_ms": None, "bytes": 4 * TIB}
    for seq, process in enumerate(processes):
        process.post(URL, json=beacon(token, seq=seq, **huge))
        process.post(URL, json=beacon(token, seq=10 + seq, type="load_fail", error_class="decode", load_ms=None))
        process.post(URL, json=beacon(token, seq=20 + seq, load_ms=3_600_000))
        for n in range(3):  # sessions the server never counted
            forged = sign_beacon(KEYS, dataclasses.replace(claims, session=f"{seq}{n}".ljust(16, "f")))
            process.post(URL, json=beacon(forged, type="load_fail", error_class="network", load_ms=None))
    drain(world.services)
    totals = usage.p.student.client.get("/api/v1/analytics/summary", params={"org_id": str(usage.p.partner.id)}).json()[
        "totals"
    ]
    assert totals["views"] == 2
    assert totals["bytes"] <= totals["views"] * NOTES_SIZE
    assert (totals["load_ok"], totals["fails"], totals["fail_rate"]) == (1, 1, 0.5)  # one outcome a view
    assert totals["load_p95_ms"] <= MAX_LOAD_MS


def test_the_retention_job_forgets_page_views_after_a_day(services: Services) -> None:
    now = utcnow()
    with unit_of_work(services.write_sessions) as db:
        db.add(BeaconView(session="old", events=1, counted_at=now - timedelta(days=1, minutes=1)))
        db.add(BeaconView(session="recent", events=0, counted_at=now - timedelta(hours=7)))
    assert "forgot 1 page views' beacon counts" in apply_retention(services, "")
    with unit_of_work(services.read_sessions) as db:
        assert list(db.scalars(select(BeaconView.session))) == ["recent"]


@pytest.mark.parametrize("error_class", ["manifest", "segment"])
def test_hls_failures_are_told_apart(world: World, page: tuple[TestClient, str], error_class: str) -> None:
    """hls.js's fatal errors: a playlist (manifest), a segment, or the decoder (decode, as before)."""
    client, token = page
    fail = client.post(URL, json=beacon(token, type="load_fail", load_ms=None, error_class=error_class))
    assert fail.status_code == 204, fail.text
    now = utcnow()
    drain(world.services)
    window = {"start": now.replace(year=now.year - 1), "end": now.replace(year=now.year + 1)}
    rows = world.services.warehouse.summary(SummaryQuery(**window, breakdown="error_class")).breakdown
    assert [(key, metrics.fails) for key, metrics in rows if metrics.fails] == [(error_class, 1)]
