"""A view through an LTI launch is an analytics event with its course and resource link; so are its beacons
and its playback bytes."""

from __future__ import annotations

import time
from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from studyshelf.analytics.ingest.drain import drain_all
from studyshelf.app import create_app
from studyshelf.core.clock import utcnow
from studyshelf.events.beacon import read_beacon
from studyshelf.services import Services
from studyshelf.warehouse import SummaryQuery
from tests.lti.conftest import Campus, data_attr, launch, login, register, target_of
from tests.lti.platform import CLAIM, Simulator


@pytest.mark.parametrize("family", ["moodle", "canvas"])
def test_a_launch_view_carries_course_and_resource_link(
    family: str, campus: Campus, simulator: Simulator, services: Services
) -> None:
    platform = simulator.platform(family)
    register(campus, platform)
    started = login(campus.lms, platform)
    claims = platform.claims(nonce=started.nonce, extra={CLAIM + "custom": target_of(campus.notes)})
    assert launch(campus.lms, platform, platform.sign(claims), started.state).status_code == 200
    drain_all(services.events, services.warehouse, consumer="test")
    now = utcnow()
    window = {"start": now.replace(year=now.year - 1), "end": now.replace(year=now.year + 1)}
    by_course = services.warehouse.summary(SummaryQuery(**window, breakdown="course")).breakdown
    assert [(key, m.views) for key, m in by_course] == [("c-42", 1)]
    university = str(campus.university.id)
    scoped = services.warehouse.summary(SummaryQuery(**window, scope_org=university, filters={"course": "c-42"}))
    assert scoped.totals.views == 1


def _launched_viewer(campus: Campus, simulator: Simulator, family: str = "canvas") -> str:
    platform = simulator.platform(family)
    register(campus, platform)
    started = login(campus.lms, platform)
    claims = platform.claims(
        nonce=started.nonce,
        extra={CLAIM + "custom": target_of(campus.notes), CLAIM + "context": {"id": "c-77", "title": "Bio"}},
    )
    claims[CLAIM + "resource_link"] = {"id": "rl-week1"}
    response = launch(campus.lms, platform, platform.sign(claims), started.state)
    assert response.status_code == 200, response.text
    return response.text


def _window() -> dict[str, datetime]:
    now = utcnow()
    return {"start": now.replace(year=now.year - 1), "end": now.replace(year=now.year + 1)}


@pytest.mark.parametrize("family", ["moodle", "canvas"])
def test_the_launched_viewer_sends_beacons_with_course_and_resource_link(
    family: str, campus: Campus, simulator: Simulator, services: Services
) -> None:
    page = _launched_viewer(campus, simulator, family)
    token = data_attr(page, "beacon-token")
    assert token
    assert data_attr(page, "beacon-url") == "/api/v1/events"
    claims = read_beacon(services.keys, token, now=time.time())
    assert (claims.link_id, claims.course, claims.resource_link) == ("", "c-77", "rl-week1")
    assert claims.partner_org_id == str(campus.university.id)
    assert claims.size == len(b"lecture notes")  # no beacon of this page may report more bytes
    t = int(time.time() * 1000)
    sent = campus.lms.post("/api/v1/events", json={"token": token, "seq": 0, "t": t, "type": "load_ok", "load_ms": 350})
    assert sent.status_code == 204, sent.text
    # One outcome a page view, as for a share link's viewer: a second one is refused.
    again = {"token": token, "seq": 1, "t": t, "type": "load_fail", "error_class": "network"}
    assert campus.lms.post("/api/v1/events", json=again).status_code == 429
    drain_all(services.events, services.warehouse, consumer="test")
    by_course = services.warehouse.summary(SummaryQuery(**_window(), breakdown="course")).breakdown
    assert [(key, m.views, m.load_ok, m.fails) for key, m in by_course] == [("c-77", 1, 1, 0)]
    by_lms = services.warehouse.summary(SummaryQuery(**_window(), breakdown="lms")).breakdown
    assert [(key, m.views, m.load_ok, m.fails) for key, m in by_lms] == [(family, 1, 1, 0)]  # the platform's family
    university = str(campus.university.id)
    scoped = services.warehouse.summary(SummaryQuery(**_window(), scope_org=university, filters={"course": "c-77"}))
    assert (scoped.totals.views, scoped.totals.load_ok, scoped.totals.fails) == (1, 1, 0)


def test_a_forged_launch_beacon_is_refused(campus: Campus, simulator: Simulator, services: Services) -> None:
    token = data_attr(_launched_viewer(campus, simulator), "beacon-token")
    body, _, mac = token.partition(".")
    forged = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + mac
    sent = campus.lms.post(
        "/api/v1/events", json={"token": forged, "seq": 0, "t": int(time.time() * 1000), "type": "load_ok"}
    )
    assert sent.status_code == 403
    drain_all(services.events, services.warehouse, consumer="test")
    totals = services.warehouse.summary(SummaryQuery(**_window())).totals
    assert (totals.views, totals.load_ok) == (1, 0)


def test_launched_playback_bytes_are_the_partners_and_the_courses(
    campus: Campus, simulator: Simulator, services: Services
) -> None:
    app = create_app(services=services)
    with TestClient(app, base_url="http://testserver") as browser:
        campus.lms = browser
        page = _launched_viewer(campus, simulator)
        renewed = browser.post(
            data_attr(page, "renew-url"),
            json={"token": data_attr(page, "token"), "file_id": data_attr(page, "file-id")},
        )
        assert renewed.status_code == 200, renewed.text
        media = renewed.json()["url"]
        sizes = [len(browser.get(media, headers={"range": f"bytes={i}-{i}"}).content) for i in range(5)]
    assert sizes == [1] * 5
    drain_all(services.events, services.warehouse, consumer="test")
    university = str(campus.university.id)
    scoped = services.warehouse.summary(SummaryQuery(**_window(), scope_org=university, filters={"course": "c-77"}))
    assert (scoped.totals.views, scoped.totals.bytes) == (1, 5)
