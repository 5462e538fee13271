"""Registration URLs: single use, short-lived, revocable, listed with their state, audited and e-mailed after commit."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from studyshelf.app import create_app
from studyshelf.core.db import unit_of_work
from studyshelf.core.ids import sha256_hex
from studyshelf.lti.models import Registration, RegistrationInvite
from studyshelf.partners.models import AuditEntry, Role
from studyshelf.services import Services
from studyshelf.settings import Settings
from tests.conftest import World
from tests.html import attr, parse_html, text_of
from tests.lti.conftest import Campus, Clock, registration_url
from tests.lti.platform import Platform, Simulator
from tests.mail_support import SmtpInbox


@pytest.fixture
def inbox(smtp_inbox: SmtpInbox) -> SmtpInbox:
    return smtp_inbox


@pytest.fixture
def settings(tmp_path: Path, db_url: str, inbox: SmtpInbox) -> Settings:
    """As the LTI tests' settings, with a mail server."""
    return Settings(
        environment="test",
        data_dir=tmp_path / "data",
        database_url=db_url,
        secret_key="test-secret-key-that-is-long-enough-for-production-0123456789",
        max_upload_bytes=10 * 1024 * 1024,
        scheduler_interval_seconds=0,
        base_url="http://testserver",
        smtp_url=f"{inbox.url}?from=shelf@example.test",
        outbound_allowed_networks=["127.0.0.0/8"],  # the platform simulator listens on loopback
    )


def _use(client: TestClient, url: str, platform: Platform) -> httpx.Response:
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    query["openid_configuration"] = platform.base + "/.well-known/openid-configuration"
    response: httpx.Response = client.get("/lti/register", params=query)
    return response


def _registrations(services: Services) -> int:
    with unit_of_work(services.read_sessions) as db:
        return db.scalar(select(func.count()).select_from(Registration)) or 0


def _invite(services: Services, url: str) -> RegistrationInvite:
    token = parse_qs(urlsplit(url).query)["invite"][0]
    with unit_of_work(services.read_sessions) as db:
        found = db.scalars(select(RegistrationInvite).where(RegistrationInvite.token_hash == sha256_hex(token))).one()
        db.expunge(found)
        return found


def test_a_registration_url_works_once(campus: Campus, simulator: Simulator, services: Services) -> None:
    url = registration_url(campus)
    first, second = simulator.platform("moodle"), simulator.platform("moodle")
    assert _use(campus.lms, url, first).status_code == 200
    again = _use(campus.lms, url, second)
    assert again.status_code == 410
    assert "already been used" in again.text
    assert second.registrations == []  # the second platform was never contacted
    assert _registrations(services) == 1


def test_the_url_is_random_and_only_its_hash_is_stored(campus: Campus, services: Services) -> None:
    url = registration_url(campus)
    token = parse_qs(urlsplit(url).query)["invite"][0]
    assert len(token) >= 43  # 256 bits
    assert str(campus.university.id) not in url
    stored = _invite(services, url)
    assert stored.token_hash == sha256_hex(token)
    assert token not in {stored.token_hash, stored.used_by, stored.created_by_email}


def test_a_forged_or_unknown_url_is_refused(campus: Campus, simulator: Simulator, services: Services) -> None:
    platform = simulator.platform("moodle")
    config = platform.base + "/.well-known/openid-configuration"
    for params in (
        {"invite": "x" * 43},  # a token never issued
        {"org": str(campus.university.id), "exp": "9999999999", "sig": "forged"},  # the former signed shape
        {},
    ):
        response = campus.lms.get("/lti/register", params={**params, "openid_configuration": config})
        assert response.status_code == 403, params
        assert "not valid" in response.text
    assert platform.registrations == []
    assert _registrations(services) == 0


def test_an_expired_url_is_refused(campus: Campus, simulator: Simulator, services: Services, clock: Clock) -> None:
    url = registration_url(campus)
    assert _invite(services, url).expires_at - clock.now() == timedelta(hours=24)
    clock.advance(timedelta(hours=24, seconds=1))
    platform = simulator.platform("moodle")
    response = _use(campus.lms, url, platform)
    assert response.status_code == 410
    assert "expired" in response.text
    assert platform.registrations == []
    assert _registrations(services) == 0


def test_a_revoked_url_is_refused(campus: Campus, simulator: Simulator, services: Services) -> None:
    url = registration_url(campus)
    invite_id = _invite(services, url).id
    revoked = campus.admin.client.post(
        f"/settings/lms/invites/{invite_id}/revoke", data={"csrf_token": campus.admin.csrf}
    )
    assert revoked.status_code == 200  # back on the page
    platform = simulator.platform("moodle")
    response = _use(campus.lms, url, platform)
    assert response.status_code == 410
    assert "revoked" in response.text
    assert platform.registrations == []


def test_two_concurrent_uses_make_exactly_one_registration(
    campus: Campus, simulator: Simulator, services: Services
) -> None:
    url = registration_url(campus)
    platforms = [simulator.platform("moodle"), simulator.platform("canvas")]
    start = threading.Barrier(2)
    answers: list[int] = []

    def use(client: TestClient, platform: Platform) -> None:
        start.wait()
        answers.append(_use(client, url, platform).status_code)

    # Apps are built and their routes resolved (on first request) here: FastAPI silences a pydantic warning
    # meanwhile, with warnings.catch_warnings, which is not thread-safe.
    clients = [TestClient(create_app(services=services), base_url="http://testserver") for _ in platforms]
    for client in clients:
        assert client.get("/lti/register").status_code == 403
    threads = [threading.Thread(target=use, args=pair) for pair in zip(clients, platforms, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(answers) == [200, 410]
    assert _registrations(services) == 1
    assert sum(len(p.registrations) for p in platforms) == 1


def test_a_failed_registration_leaves_the_url_usable(campus: Campus, simulator: Simulator, services: Services) -> None:
    url = registration_url(campus)
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    broken = campus.lms.get("/lti/register", params={**query, "openid_configuration": simulator.url + "/nowhere"})
    assert broken.status_code == 422
    assert _invite(services, url).used_at is None
    assert _use(campus.lms, url, simulator.platform("moodle")).status_code == 200


def test_the_lms_page_lists_urls_with_their_state(
    campus: Campus, simulator: Simulator, services: Services, clock: Clock
) -> None:
    admin = campus.admin
    created = admin.client.post("/settings/lms/invites", data={"csrf_token": admin.csrf})
    assert created.status_code == 201
    assert created.headers["cache-control"] == "no-store"
    used_url = parse_html(created).attr("input#dyn-url", "value")
    revoked_url, expired_url, unused_url = (registration_url(campus) for _ in range(3))
    platform = simulator.platform("moodle")
    assert _use(campus.lms, used_url, platform).status_code == 200
    revoked_id = _invite(services, revoked_url).id
    admin.client.post(f"/settings/lms/invites/{revoked_id}/revoke", data={"csrf_token": admin.csrf})
    with unit_of_work(services.write_sessions) as db:
        expired = db.get(RegistrationInvite, _invite(services, expired_url).id)
        assert expired is not None
        expired.expires_at = clock.now() - timedelta(minutes=1)
    page = parse_html(admin.client.get("/settings/lms"))
    states = {attr(row, "data-invite"): attr(row, "data-state") for row in page.select("[data-invite][data-state]")}
    assert states == {
        str(_invite(services, used_url).id): "used",
        str(revoked_id): "revoked",
        str(_invite(services, expired_url).id): "expired",
        str(_invite(services, unused_url).id): "unused",
    }
    used_by = page.one('[data-state="used"] :-soup-contains-own("Used") > strong')
    assert text_of(used_by) == f"Moodle at {platform.lms_origin} ({platform.issuer})"
    assert used_url not in admin.client.get("/settings/lms").text  # the URL itself is shown once only
    listed = admin.client.get("/api/v1/lti/registration-invites", params={"org_id": str(campus.university.id)})
    assert sorted(i["state"] for i in listed.json()) == ["expired", "revoked", "unused", "used"]


def test_only_admins_create_or_revoke_urls(campus: Campus, world: World, services: Services) -> None:
    url = registration_url(campus)
    editor = world.member(campus.university, Role.EDITOR)
    body = {"org_id": str(campus.university.id)}
    assert (
        editor.client.post("/api/v1/lti/registration-invites", json=body, headers=editor.headers()).status_code == 403
    )
    assert editor.client.post("/settings/lms/invites", data={"csrf_token": editor.csrf}).status_code == 403
    invite_id = _invite(services, url).id
    refused = editor.client.post(f"/api/v1/lti/registration-invites/{invite_id}/revoke", headers=editor.headers())
    assert refused.status_code == 403
    outsider = world.member(world.org("elsewhere"), Role.OWNER)
    hidden = outsider.client.post(f"/api/v1/lti/registration-invites/{invite_id}/revoke", headers=outsider.headers())
    assert hidden.status_code == 404
    assert _invite(services, url).revoked_at is None


def test_a_registration_is_audited_and_mailed_to_the_admins_after_commit(
    campus: Campus, simulator: Simulator, services: Services, world: World, inbox: SmtpInbox
) -> None:
    def registered() -> bool:
        with unit_of_work(services.read_sessions) as db:  # a connection of its own: sees committed rows only
            return bool(db.scalar(select(func.count()).select_from(Registration)))

    inbox.on_message = registered
    owner = world.member(campus.university, Role.OWNER)
    world.member(campus.university, Role.EDITOR)  # not told
    url = registration_url(campus)
    platform = simulator.platform("moodle")
    assert _use(campus.lms, url, platform).status_code == 200
    mails = inbox.wait_for(2)
    assert sorted(str(m["To"]) for m in mails) == sorted([campus.admin.email, owner.email])
    assert inbox.noted == [True, True]  # the registration was visible to another connection when mailed
    body = mails[0].get_payload(decode=True)
    assert isinstance(body, bytes)
    assert platform.issuer in body.decode()
    assert campus.admin.email in body.decode()  # who created the URL
    invite_id = str(_invite(services, url).id)
    with unit_of_work(services.read_sessions) as db:
        entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "lti.registration_invite.use")).one()
        assert entry.org_id == campus.university.id
        assert entry.target_id == invite_id
        assert platform.client_id in entry.after
        created = db.scalars(select(AuditEntry).where(AuditEntry.action == "lti.registration_invite.create")).one()
        assert created.actor_email == campus.admin.email


def test_link_lifetime_setting_in_hours_with_the_days_one_deprecated(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).lti_registration_link_lifetime == timedelta(hours=24)
    assert Settings(data_dir=tmp_path, lti_registration_link_hours=2).lti_registration_link_lifetime == timedelta(
        hours=2
    )
    days = Settings(data_dir=tmp_path, lti_registration_link_days=3)
    assert days.lti_registration_link_lifetime == timedelta(days=3)  # still honoured when alone
    both = Settings(data_dir=tmp_path, lti_registration_link_days=3, lti_registration_link_hours=6)
    assert both.lti_registration_link_lifetime == timedelta(hours=6)
