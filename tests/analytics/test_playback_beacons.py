"""Playback beacons (issue 19): what a viewer page played, stored with its rendition and captions; figures no
page could report are refused (422 `beacon-out-of-range`), and a view's playback reports have their own limit."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from studyshelf.app import create_app
from studyshelf.core.clock import MovableClock
from studyshelf.services import Services
from studyshelf.warehouse import SummaryQuery
from tests.analytics.conftest import CHROME, drain
from tests.conftest import Member, World
from tests.html import parse_html
from tests.library.support import uploaded
from tests.library.test_captions_api import MP4
from tests.links.support import EMBEDDED, create_link, link_path, visitor

URL = "/api/v1/events"
PROBLEMS = "https://studyshelf.dev/problems/"
MINUTE = 60_000


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def moved_world(services: Services, clock: MovableClock) -> World:
    return World(dataclasses.replace(services, clock=clock))


@pytest.fixture
def owner(moved_world: World) -> Member:
    return moved_world.member(moved_world.org())


def open_page(client: TestClient, path: str) -> str:
    viewer = parse_html(client.get(path, headers={**EMBEDDED, "user-agent": CHROME}))
    return viewer.attr("[data-beacon-token]", "data-beacon-token")


@pytest.fixture
def video_page(owner: Member) -> tuple[TestClient, str]:
    """A learner with the viewer page of a video open: (client, beacon token)."""
    file = uploaded(owner, owner.root_folder_id, "lecture.mp4", MP4)
    learner = visitor(owner)
    return learner, open_page(learner, link_path(create_link(owner, file["id"])))


def playback(token: str, clock: MovableClock, **kw: Any) -> dict[str, Any]:
    body = {
        "token": token,
        "type": "playback",
        "seq": 1,
        "t": int(clock.time() * 1000),
        "watch_ms": 90_000,
        "position_ms": 95_000,
        "duration_ms": 100_000,
        "rendition": "720p",
        "captions": "de",
    }
    return {**body, **kw}


def stored_playback(world: World, clock: MovableClock) -> Any:
    drain(world.services)
    now = clock.now()
    return world.services.warehouse.playback(SummaryQuery(start=now - timedelta(days=1), end=now + timedelta(days=1)))


def _refusal(answer: Any, status: int, slug: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["type"] == PROBLEMS + slug


def test_a_playback_is_stored_with_rendition_captions_watch_time_and_reach(
    moved_world: World, clock: MovableClock, video_page: tuple[TestClient, str]
) -> None:
    client, token = video_page
    clock.advance(120)  # the page has been open two minutes
    answer = client.post(URL, json=playback(token, clock), headers={"user-agent": CHROME})
    assert answer.status_code == 204, answer.text
    found = stored_playback(moved_world, clock)
    assert (found.views, found.watch_ms, found.median_reached_pct, found.completed) == (1, 90_000, 95, 1)
    assert [(r.key, r.watch_ms) for r in found.renditions] == [("720p", 90_000)]
    assert [(r.key, r.views) for r in found.captions] == [("de", 1)]


def test_playback_reports_do_not_use_up_the_load_outcome_and_have_their_own_limit(
    moved_world: World, clock: MovableClock, owner: Member
) -> None:
    services = moved_world.services
    settings = services.settings.model_copy(update={"beacon_playbacks_per_view": 2})
    client = TestClient(create_app(services=dataclasses.replace(services, settings=settings)))
    file = uploaded(owner, owner.root_folder_id, "lecture.mp4", MP4)
    token = open_page(client, link_path(create_link(owner, file["id"])))
    clock.advance(300)
    now = int(clock.time() * 1000)
    load = {"token": token, "type": "load_ok", "seq": 0, "t": now, "load_ms": 300}
    assert client.post(URL, json=load).status_code == 204
    for seq, watched in ((1, 10_000), (2, 40_000)):
        assert client.post(URL, json=playback(token, clock, seq=seq, watch_ms=watched)).status_code == 204
    _refusal(client.post(URL, json=playback(token, clock, seq=3, watch_ms=50_000)), 429, "beacon-view-limit")
    _refusal(client.post(URL, json=playback(token, clock, seq=2)), 409, "conflict")  # a replay
    assert stored_playback(moved_world, clock).watch_ms == 40_000  # the view's latest report


@pytest.mark.parametrize(
    ("change", "slug", "field"),
    [
        ({"watch_ms": None}, "invalid", None),  # a playback needs its watch time
        ({"watch_ms": -1}, "invalid", None),
        ({"watch_ms": "90000"}, "invalid", None),
        ({"rendition": "720P; drop"}, "invalid", None),
        ({"rendition": "x" * 17}, "invalid", None),
        ({"duration_ms": 0}, "invalid", None),
        ({"duration_ms": 25 * 3600 * 1000}, "invalid", None),
        ({"position_ms": -5}, "invalid", None),
        ({"type": "progress"}, "invalid", None),
        ({"watch_ms": 400_000}, "beacon-out-of-range", "watch_ms"),  # > 3 x the duration
        ({"watch_ms": 280_000, "duration_ms": None}, "beacon-out-of-range", "watch_ms"),  # > 2 x the page's life
        ({"position_ms": 120_000}, "beacon-out-of-range", "position_ms"),  # past the end
    ],
)
def test_bad_playback_is_refused_and_nothing_is_stored(
    moved_world: World,
    clock: MovableClock,
    video_page: tuple[TestClient, str],
    change: dict[str, Any],
    slug: str,
    field: str | None,
) -> None:
    client, token = video_page
    clock.advance(60)  # open one minute: with the clock skew, at most 4 minutes played at 2x
    body = {k: v for k, v in {**playback(token, clock), **change}.items() if v is not None}
    refused = client.post(URL, json=body)
    _refusal(refused, 422, slug)
    if field:
        assert refused.json()["field"] == field
    assert stored_playback(moved_world, clock).views == 0


def test_a_document_does_not_play(moved_world: World, clock: MovableClock, owner: Member) -> None:
    notes = uploaded(owner, owner.root_folder_id, "notes.pdf", b"%PDF-1.4\n%%EOF\n")
    client = visitor(owner)
    token = open_page(client, link_path(create_link(owner, notes["id"])))
    clock.advance(120)
    refused = client.post(URL, json=playback(token, clock))
    _refusal(refused, 422, "beacon-out-of-range")
    assert refused.json()["field"] == "type"
