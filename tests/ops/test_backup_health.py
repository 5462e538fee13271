"""Backups in the product: the operator's Backups page, /readyz degraded on lag or an unreachable location,
and the lag and verify metrics. Time is a MovableClock; the replica is a stand-in whose last shipment stays put."""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from studyshelf.app import create_app
from studyshelf.core.clock import MovableClock
from studyshelf.core.db import unit_of_work
from studyshelf.ops.backup import Status
from studyshelf.ops.backup_health import BackupMonitor, StatusSource, record_verify
from studyshelf.partners.models import Role, User
from studyshelf.services import Services
from tests.conftest import Member, World
from tests.html import parse_html, text_of

LOOPBACK = ("127.0.0.1", 4000)  # /metrics answers the monitoring networks only (default loopback)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def clocked(services: Services, clock: MovableClock) -> Services:
    return dataclasses.replace(services, clock=clock)


def _standing_replica(shipped_at: datetime, location: Path) -> StatusSource:
    """A replica that shipped at `shipped_at` and has had changes waiting since."""

    def status(services: Services, now: datetime) -> Status:
        lag = (now - shipped_at).total_seconds()
        return Status(location, None, "txid 2a", shipped_at, lag, shipped_at - timedelta(days=3), 4096, 10**9)

    return status


def _platform_admin(world: World, member: Member) -> Member:
    with unit_of_work(world.services.write_sessions) as db:
        user = db.get(User, member.user_id)
        assert user is not None
        user.is_platform_admin = True
    return member


def _watch(world: World, clocked: Services, source: StatusSource) -> None:
    world.app.state.backup_monitor = BackupMonitor(clocked, source=source, ttl=0)


def _metric(client: TestClient, name: str) -> str:
    body = client.get("/metrics").text
    found = re.search(rf"^{name} (\S+)$", body, re.MULTILINE)
    assert found, f"{name} not exported"
    return found.group(1)


def test_backups_page_shows_health_to_platform_admins(
    world: World, owner: Member, clocked: Services, clock: MovableClock, tmp_path: Path
) -> None:
    admin = _platform_admin(world, owner)
    shipped_at = clock.now() - timedelta(seconds=30)
    _watch(world, clocked, _standing_replica(shipped_at, tmp_path))
    record_verify(clocked.settings, what="20260101T000000.000000Z", problems=[], at=clock.now())

    page = parse_html(admin.client.get("/settings/backups"))

    assert page.texts("h1") == ["Backups"]
    assert page.attr("[data-health]", "data-health") == "ok"
    assert "30.0 s" in text_of(page.one("#fact-lag td"))
    assert page.attr("#fact-replicated time", "datetime").startswith(shipped_at.strftime("%Y-%m-%dT%H:%M"))
    assert page.attr("#fact-oldest time", "datetime").startswith(
        (shipped_at - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    )
    assert "passed" in text_of(page.one("#fact-verify td"))
    assert page.by_role("link", "Backups")  # the account menu leads here

    clock.advance(60)
    page = parse_html(admin.client.get("/settings/backups"))
    assert page.attr("[data-health]", "data-health") == "degraded"
    assert "90.0 s" in text_of(page.one("#fact-lag td"))


def test_backups_page_names_a_failed_verify(world: World, owner: Member, clocked: Services, tmp_path: Path) -> None:
    admin = _platform_admin(world, owner)
    _watch(world, clocked, _standing_replica(clocked.clock.now(), tmp_path))
    problem = "blob 00ff: checksum mismatch"
    record_verify(clocked.settings, what="pgBackRest stanza studyshelf", problems=[problem], at=clocked.clock.now())

    page = parse_html(admin.client.get("/settings/backups"))

    assert "failed" in text_of(page.one("#fact-verify td"))
    assert page.texts("#fact-verify li") == [problem]


def test_backups_page_is_for_platform_admins_only(world: World, owner: Member) -> None:
    other_org_admin = world.member(world.org("harbour"), Role.ADMIN)
    for member in (owner, other_org_admin):
        response = member.client.get("/settings/backups")
        assert response.status_code == 403
        assert not parse_html(member.client.get("/settings/organization")).by_role("link", "Backups")


def test_readyz_is_degraded_beyond_60_s_of_lag(
    world: World, clocked: Services, clock: MovableClock, tmp_path: Path
) -> None:
    _watch(world, clocked, _standing_replica(clock.now(), tmp_path))
    client = TestClient(world.app, client=LOOPBACK)

    clock.advance(59)
    body = client.get("/readyz").json()
    assert body["status"] == "ok"
    assert body["backup"].startswith("ok: lag 59.0 s")

    clock.advance(2)
    response = client.get("/readyz")
    assert response.status_code == 200  # serving goes on
    assert response.json()["status"] == "degraded"
    assert response.json()["backup"].startswith("degraded: lag 61.0 s")


def test_readyz_is_degraded_when_the_location_is_unreachable(app_client: TestClient, services: Services) -> None:
    assert services.settings.backup_dir is not None
    assert not services.settings.backup_dir.exists()

    response = app_client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert "unreachable" in response.json()["backup"]


def test_readyz_and_metrics_without_backups(services: Services) -> None:
    off = dataclasses.replace(services, settings=services.settings.model_copy(update={"backup_url": None}))
    with TestClient(create_app(services=off), client=LOOPBACK) as client:
        body = client.get("/readyz").json()
        assert "backup" not in body
        assert _metric(client, "studyshelf_backup_lag_seconds") == "NaN"


def test_metrics_expose_the_lag_and_the_last_verify(
    world: World, clocked: Services, clock: MovableClock, tmp_path: Path
) -> None:
    _watch(world, clocked, _standing_replica(clock.now() - timedelta(seconds=12), tmp_path))
    client = TestClient(world.app, client=LOOPBACK)
    assert _metric(client, "studyshelf_backup_last_verify_ok") == "NaN"  # never verified

    record_verify(clocked.settings, what="p", problems=["missing"], at=clock.now())
    assert float(_metric(client, "studyshelf_backup_lag_seconds")) == 12.0
    assert float(_metric(client, "studyshelf_backup_last_verify_ok")) == 0.0

    record_verify(clocked.settings, what="p", problems=[], at=clock.now())
    assert float(_metric(client, "studyshelf_backup_last_verify_ok")) == 1.0


def test_a_hung_location_never_holds_a_request(world: World, clocked: Services, tmp_path: Path) -> None:
    release = threading.Event()
    healthy = _standing_replica(clocked.clock.now(), tmp_path)

    def hung(services: Services, now: datetime) -> Status:
        release.wait(10)
        return healthy(services, now)

    world.app.state.backup_monitor = BackupMonitor(clocked, source=hung, ttl=0, wait=0.2)
    client = TestClient(world.app, client=LOOPBACK)
    try:
        started = time.monotonic()
        body = client.get("/readyz").json()
        assert time.monotonic() - started < 2
        assert body["status"] == "degraded"
        assert "did not answer" in body["backup"]
    finally:
        release.set()
