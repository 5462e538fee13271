"""LTI fixtures: a platform simulator on a real local port, a partner with material, and launch helpers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from studyshelf.app import create_app
from studyshelf.core.clock import MovableClock
from studyshelf.partners.models import Organization, OrgKind, Role
from studyshelf.services import Services
from studyshelf.settings import Settings
from tests.conftest import Member, World, make_settings
from tests.html import parse_html
from tests.library.support import make_folder, uploaded
from tests.lti.platform import Platform, Simulator
from tests.sharing.support import grant

LAUNCH = "http://testserver/lti/launch"


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    """As the suite's settings, with the base URL the TestClient uses."""
    return make_settings(
        tmp_path,
        db_url,
        base_url="http://testserver",
        outbound_allowed_networks=["127.0.0.0/8"],  # the platform simulator listens on loopback
    )


@pytest.fixture(scope="session")
def simulator() -> Iterator[Simulator]:
    sim = Simulator()
    sim.start()
    yield sim
    sim.stop()


class Clock(MovableClock):
    """The services' clock in LTI tests, moved by the test (no sleeps) by seconds or a timedelta."""

    def advance(self, seconds: float | timedelta) -> datetime:
        return super().advance(seconds.total_seconds() if isinstance(seconds, timedelta) else seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def services(services: Services, request: pytest.FixtureRequest) -> Services:
    """The suite's services; telling the time from `clock` in the tests that move it."""
    if "clock" not in request.fixturenames:
        return services  # rows stamped by column defaults stay in step with a clock that runs
    clock: Clock = request.getfixturevalue("clock")
    return replace(services, clock=clock)


@dataclass
class Campus:
    """A publisher sharing a course folder with a university that connects its LMS."""

    publisher: Member
    admin: Member  # admin of the university
    university: Organization
    course: dict[str, Any]
    notes: dict[str, Any]
    grant_id: str
    lms: TestClient  # the browser inside the LMS frame: no StudyShelf session


@pytest.fixture
def campus(world: World, services: Services) -> Campus:
    operator = world.org("publisher", OrgKind.OPERATOR)
    university = world.org("university", OrgKind.PARTNER)
    publisher = world.member(operator, Role.OWNER)
    admin = world.member(university, Role.ADMIN)
    course = make_folder(publisher, publisher.root_folder_id, "Biology")
    notes = uploaded(publisher, course["id"], "notes.txt", b"lecture notes")
    granted = grant(publisher, course["id"], university.id)
    assert granted.status_code == 201, granted.text
    lms = TestClient(create_app(services=services), base_url="http://testserver")
    return Campus(publisher, admin, university, course, notes, granted.json()["id"], lms)


def register(campus: Campus, platform: Platform) -> dict[str, Any]:
    body = {"org_id": str(campus.university.id), **platform.registration_spec()}
    response = campus.admin.client.post("/api/v1/lti/registrations", json=body, headers=campus.admin.headers())
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def registration_url(campus: Campus) -> str:
    """A fresh single-use registration URL, made by the university's admin through the API."""
    body = {"org_id": str(campus.university.id)}
    response = campus.admin.client.post("/api/v1/lti/registration-invites", json=body, headers=campus.admin.headers())
    assert response.status_code == 201, response.text
    url: str = response.json()["url"]
    return url


def data_attr(html: str, name: str) -> str:
    return parse_html(html).attr(f"[data-{name}]", f"data-{name}")


@dataclass
class Login:
    state: str
    nonce: str
    binding: str
    query: dict[str, str]


def login(client: TestClient, platform: Platform, target: str = LAUNCH, *, method: str = "post", **kw: Any) -> Login:
    """Step 1 (login initiation, as the platform's auto-submitted form) and step 2 (checked by the platform)."""
    params = platform.login_params(target, **kw)
    response = client.post("/lti/login", data=params) if method == "post" else client.get("/lti/login", params=params)
    assert response.status_code == 200, response.text
    query = platform.authorize(data_attr(response.text, "auth-url"))
    assert query["redirect_uri"] == LAUNCH
    assert query["login_hint"] == params["login_hint"]
    assert query["lti_message_hint"] == params["lti_message_hint"]
    return Login(query["state"], query["nonce"], data_attr(response.text, "binding"), query)


def launch(
    client: TestClient, platform: Platform, token: str, state: str, *, follow: bool = True, **extra: str
) -> httpx.Response:
    """Step 3: the platform's form post of id_token and state to the redirect URI (and the redirect after it)."""
    response: httpx.Response = client.post(
        "/lti/launch", data={"id_token": token, "state": state, **extra}, follow_redirects=follow
    )
    return response


def target_of(item: dict[str, Any], kind: str = "file") -> dict[str, str]:
    return {"studyshelf_target": f"{kind}:{item['id']}"}
