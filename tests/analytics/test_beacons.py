"""The viewer's beacon: what is accepted, what is refused (and then nothing is stored), floods and replays."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from studyshelf.analytics.warehouse import SummaryQuery
from studyshelf.core.clock import utcnow
from studyshelf.events.beacon import BeaconClaims, read_beacon, sign_beacon
from tests.analytics.conftest import CHROME, Usage, drain
from tests.conftest import World
from tests.links.support import EMBEDDED, visitor

URL = "/api/v1/events"
SECRET = "test-secret-key-that-is-long-enough-for-production-0123456789"


@pytest.fixture
def page(usage: Usage) -> tuple[TestClient, str]:
    """A learner's browser with a viewer page open: (client, beacon token)."""
    learner = visitor(usage.p.publisher)
    html = learner.get(usage.partner_link, headers={**EMBEDDED, "user-agent": CHROME}).text
    found = re.search(r'data-beacon-token="([^"]+)"', html)
    assert found is not None
    return learner, found.group(1)


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
    fail = client.post(URL, json=beacon(token, type="load_fail", seq=1, load_ms=None, error_class="decode"))
    assert fail.status_code == 204, fail.text
    assert sorted(stored(world)) == ["load_fail", "load_ok", "view"]
    partner = usage.p.student.client.get(
        "/api/v1/analytics/summary", params={"org_id": str(usage.p.partner.id), "file": usage.p.notes["id"]}
    ).json()["totals"]
    assert (partner["load_ok"], partner["fails"], partner["fail_rate"], partner["load_p50_ms"]) == (1, 1, 0.5, 420.0)
    # The beacons come from our viewer page, yet count for the LMS that framed the view.
    by_lms = usage.p.student.client.get(
        "/api/v1/analytics/summary", params={"org_id": str(usage.p.partner.id), "breakdown": "lms"}
    ).json()["rows"]
    assert [(r["key"], r["views"], r["load_ok"], r["fails"]) for r in by_lms] == [("moodle", 1, 1, 1)]


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


def test_not_json_and_huge_bodies_are_refused(world: World, page: tuple[TestClient, str]) -> None:
    client, token = page
    assert client.post(URL, content=b"\xff not json").status_code == 422
    huge = json.dumps({**beacon(token), "pad": "x" * 5000})
    assert client.post(URL, content=huge).status_code == 413
    assert stored(world) == ["view"]


def test_an_expired_or_tampered_token_is_refused(world: World, page: tuple[TestClient, str]) -> None:
    client, token = page
    claims = read_beacon(SECRET, token, now=time.time())
    data = {**claims.__dict__, "expires": int(time.time()) - 1}
    expired = sign_beacon(SECRET, BeaconClaims(**data))
    assert client.post(URL, json=beacon(expired)).status_code == 403
    other_file = sign_beacon("another-secret-" + SECRET, claims)
    assert client.post(URL, json=beacon(other_file)).status_code == 403
    body, mac = token.split(".")
    assert client.post(URL, json=beacon(f"{body[:-2]}AA.{mac}")).status_code == 403
    assert stored(world) == ["view"]


def test_a_replay_is_refused_and_never_counted_twice(world: World, page: tuple[TestClient, str]) -> None:
    client, token = page
    body = beacon(token)
    assert client.post(URL, json=body).status_code == 204
    assert client.post(URL, json=body).status_code == 409
    assert sorted(stored(world)) == ["load_ok", "view"]


def test_a_flood_from_one_viewer_is_limited(world: World, page: tuple[TestClient, str]) -> None:
    client, token = page
    answers = [
        client.post(URL, json=beacon(token, type="load_fail", error_class="network", seq=i, load_ms=None)).status_code
        for i in range(70)
    ]
    assert answers.count(204) == 60
    assert set(answers[60:]) == {429}
    assert stored(world).count("load_fail") == 60
