"""Helpers for link tests."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi.testclient import TestClient

from studyshelf.analytics.ingest.drain import drain_all
from studyshelf.delivery.view_counts import ViewCounts
from tests.conftest import Member, World

LMS = "https://moodle.example.edu"
EMBEDDED = {"sec-fetch-dest": "iframe", "sec-fetch-site": "cross-site", "referer": f"{LMS}/course/view.php?id=7"}


def create_link(member: Member, target_id: str, *, target_type: str = "file", **extra: Any) -> httpx.Response:
    body = {"target_type": target_type, "target_id": target_id, "allowed_origins": [LMS], "mode": "embed", **extra}
    response: httpx.Response = member.client.post("/api/v1/links", json=body, headers=member.headers())
    return response


def link_path(response: httpx.Response) -> str:
    assert response.status_code == 201, response.text
    return "/v/" + str(response.json()["id"])


def visitor(member: Member) -> TestClient:
    """A learner's browser: no StudyShelf session at all."""
    return TestClient(member.client.app, base_url="http://testserver")


def viewer_token_client(world: World, member: Member) -> tuple[TestClient, dict[str, str]]:
    """A client with no session, using the member's personal token capped to the viewer role."""
    body = {"name": "read-only", "org_id": str(member.org_id), "role": "viewer"}
    token = member.client.post("/api/v1/auth/tokens", json=body, headers=member.headers())
    assert token.status_code == 201, token.text
    return TestClient(world.app, base_url="http://testserver"), {"Authorization": f"Bearer {token.json()['token']}"}


def settle(world: World) -> None:
    """Do now what the app's threads do in the background: write the leak radar's noted sightings, and drain
    the event buffer into the warehouse and the links' view counters."""
    world.app.state.sightings.flush()
    counts = ViewCounts(world.services)
    drain_all(world.services.events, world.services.warehouse, consumer="test", after_store=counts.after_store)
