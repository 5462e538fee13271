"""OIDC login and id_token validation: Moodle- and Canvas-shaped launches, and every way one must fail."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from studyshelf.app import create_app
from studyshelf.core.db import unit_of_work
from studyshelf.library.provisioning import provision_organization
from studyshelf.lti.launch import binding_cookie
from studyshelf.lti.models import Launch, UsedNonce
from studyshelf.lti.registrations import RegistrationSpec, create_registration
from studyshelf.partners.models import OrgKind
from studyshelf.services import Services
from tests.html import parse_html
from tests.lti.conftest import Campus, data_attr, launch, login, register, target_of
from tests.lti.platform import CLAIM, INSTRUCTOR, Platform, Simulator


def _stored(services: Services) -> tuple[int, int]:
    with unit_of_work(services.read_sessions) as db:
        launches = db.scalar(select(func.count()).select_from(Launch)) or 0
        nonces = db.scalar(select(func.count()).select_from(UsedNonce)) or 0
    return launches, nonces


@pytest.mark.parametrize("family", ["moodle", "canvas"])
def test_resource_link_launch_shows_the_viewer(
    family: str, campus: Campus, simulator: Simulator, services: Services
) -> None:
    platform = simulator.platform(family)
    register(campus, platform)
    started = login(campus.lms, platform, storage_target=(family == "canvas"))
    claims = platform.claims(nonce=started.nonce, extra={CLAIM + "custom": target_of(campus.notes)})
    response = launch(campus.lms, platform, platform.sign(claims), started.state)
    assert response.status_code == 200, response.text
    assert "notes.txt" in response.text
    assert data_attr(response.text, "renew-url").startswith("/lti/media/lti-")
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'self' " in csp
    assert platform.lms_origin in csp
    assert parse_html(response).select_one(".lti-placement") is None  # learners see no placement bar
    with unit_of_work(services.read_sessions) as db:
        (record,) = db.scalars(select(Launch))
        assert record.product_family == family
        assert record.context_id == "c-42"
        assert record.context_title == "Biology 101"
        assert record.role_class == "learner"
        assert len(record.learner) == 40
        assert record.learner != claims["sub"]
        assert record.lti11_user_id == (claims.get(CLAIM + "lti11_legacy_user_id") or "")
        assert "Ada" not in repr(vars(record))
        assert "ada@" not in repr(vars(record))


def test_get_login_and_deployment_id_spelling(campus: Campus, simulator: Simulator) -> None:
    platform = simulator.platform("moodle")
    register(campus, platform)
    params = platform.login_params("http://testserver/lti/launch")
    params["deployment_id"] = params.pop("lti_deployment_id")
    response = campus.lms.get("/lti/login", params=params)
    assert response.status_code == 200
    params["deployment_id"] = "999"
    assert campus.lms.get("/lti/login", params=params).status_code == 403


def test_instructor_sees_the_placement_bar_with_view_counts(campus: Campus, simulator: Simulator) -> None:
    platform = simulator.platform("moodle")
    register(campus, platform)
    link = {"id": "rl-fixed", "title": "Week 1"}
    for role in ("learner", "instructor"):
        started = login(campus.lms, platform)
        extra: dict[str, Any] = {CLAIM + "custom": target_of(campus.notes), CLAIM + "resource_link": link}
        if role == "instructor":
            extra[CLAIM + "roles"] = [INSTRUCTOR]
        response = launch(
            campus.lms, platform, platform.sign(platform.claims(nonce=started.nonce, extra=extra)), started.state
        )
        assert response.status_code == 200
    assert parse_html(response).by_role("complementary", "Placement (teachers only)")
    assert "2 views" in response.text


def test_course_copy_new_resource_link_still_works(campus: Campus, simulator: Simulator) -> None:
    platform = simulator.platform("canvas")
    register(campus, platform)
    for link_id in ("rl-original", "rl-copied-course"):
        started = login(campus.lms, platform)
        claims = platform.claims(
            nonce=started.nonce,
            extra={CLAIM + "custom": target_of(campus.notes), CLAIM + "resource_link": {"id": link_id}},
        )
        assert launch(campus.lms, platform, platform.sign(claims), started.state).status_code == 200


def _launch_link(campus: Campus, platform: Platform, link_id: str, custom: dict[str, str]) -> httpx.Response:
    started = login(campus.lms, platform)
    extra = {CLAIM + "custom": custom, CLAIM + "resource_link": {"id": link_id}}
    return launch(campus.lms, platform, platform.sign(platform.claims(nonce=started.nonce, extra=extra)), started.state)


def test_copied_link_that_lost_its_material_is_found_by_its_history(
    campus: Campus, simulator: Simulator, services: Services
) -> None:
    """Course copy: the new link names nothing, but Canvas's $ResourceLink.id.history lists the link it came from."""
    platform = simulator.platform("canvas")
    register(campus, platform)
    assert _launch_link(campus, platform, "rl-autumn", target_of(campus.notes)).status_code == 200
    copied = {"resource_link_history": "rl-never-launched, rl-autumn", "context_history": "c-41"}
    response = _launch_link(campus, platform, "rl-spring", copied)
    assert response.status_code == 200, response.text
    assert "notes.txt" in response.text
    with unit_of_work(services.read_sessions) as db:
        spring = db.scalars(select(Launch).where(Launch.resource_link_id == "rl-spring")).one()
        assert str(spring.target_id) == campus.notes["id"]
        assert spring.org_id == campus.university.id


@pytest.mark.parametrize(
    "history",
    [
        "$ResourceLink.id.history",  # the platform did not expand the variable
        "rl-unknown",
        "",
    ],
)
def test_copied_link_with_no_known_history_is_refused(
    history: str, campus: Campus, simulator: Simulator, services: Services
) -> None:
    platform = simulator.platform("canvas")
    register(campus, platform)
    response = _launch_link(campus, platform, "rl-spring", {"resource_link_history": history})
    assert response.status_code == 400
    assert "does not name any StudyShelf material" in response.text
    assert _stored(services) == (0, 0)


def test_history_reaches_only_links_launched_through_the_same_registration(
    campus: Campus, simulator: Simulator
) -> None:
    canvas, moodle = simulator.platform("canvas"), simulator.platform("moodle")
    register(campus, canvas)
    register(campus, moodle)
    assert _launch_link(campus, canvas, "rl-autumn", target_of(campus.notes)).status_code == 200
    response = _launch_link(campus, moodle, "rl-spring", {"resource_link_history": "rl-autumn"})
    assert response.status_code == 400


def test_launch_without_cookie_asks_the_browser_for_its_binding(campus: Campus, simulator: Simulator) -> None:
    """Third-party cookies blocked: the launch page recovers the binding from browser storage and posts again."""
    platform = simulator.platform("canvas")
    register(campus, platform)
    started = login(campus.lms, platform, storage_target=True)
    campus.lms.cookies.clear()
    token = platform.sign(platform.claims(nonce=started.nonce, extra={CLAIM + "custom": target_of(campus.notes)}))
    check = launch(campus.lms, platform, token, started.state)
    assert check.status_code == 200
    assert parse_html(check).select_one("[data-lti-launch]")
    assert binding_cookie(started.nonce) in check.text  # the storage key the login page used
    again = launch(campus.lms, platform, token, started.state, binding=started.binding)
    assert again.status_code == 200
    assert "notes.txt" in again.text


def test_folder_launch_lists_and_opens_files_inside(campus: Campus, simulator: Simulator) -> None:
    platform = simulator.platform("moodle")
    register(campus, platform)
    started = login(campus.lms, platform)
    claims = platform.claims(nonce=started.nonce, extra={CLAIM + "custom": target_of(campus.course, "folder")})
    response = launch(campus.lms, platform, platform.sign(claims), started.state)
    assert response.status_code == 200
    assert "notes.txt" in response.text
    inner = campus.lms.get(parse_html(response).attr('a[href^="/lti/view/"]', "href"))
    assert inner.status_code == 200
    assert data_attr(inner.text, "file-id") == campus.notes["id"]


def test_target_in_target_link_uri_query_is_honoured(campus: Campus, simulator: Simulator) -> None:
    platform = simulator.platform("moodle")
    register(campus, platform)
    started = login(campus.lms, platform)
    uri = f"http://testserver/lti/launch?studyshelf_target=file:{campus.notes['id']}"
    claims = platform.claims(nonce=started.nonce, extra={CLAIM + "target_link_uri": uri})
    assert launch(campus.lms, platform, platform.sign(claims), started.state).status_code == 200


# --- refusals: each a clear 4xx page, and nothing stored -------------------------------------------------


def _hs256_with_public_key(platform: Any, claims: dict[str, Any]) -> str:
    pem = platform.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "kid": platform.kid, "typ": "JWT"}

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(mac)


def _none_token(claims: dict[str, Any]) -> str:
    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return b64(json.dumps({"alg": "none", "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode()) + "."


CASES: dict[str, tuple[int, str]] = {
    "wrong aud": (401, "another tool"),
    "wrong iss": (401, "another platform"),
    "expired": (401, "expired"),
    "future iat": (401, "future"),
    "unknown kid": (401, "does not publish"),
    "alg none": (401, "RS256"),
    "hs256 with public key": (401, "RS256"),
    "other key same kid": (401, "signature"),
    "unregistered deployment": (401, "not registered"),
    "missing resource_link": (400, "resource_link"),
    "missing version": (400, "1.3.0"),
    "missing message_type": (400, "message type"),
    "missing nonce": (400, "nonce"),
    "wrong nonce": (401, "nonce"),
    "several aud without azp": (401, "azp"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_id_tokens_are_refused_and_nothing_is_stored(
    case: str, campus: Campus, simulator: Simulator, services: Services
) -> None:
    platform = simulator.platform("canvas" if "aud" in case else "moodle")
    register(campus, platform)
    started = login(campus.lms, platform)
    claims = platform.claims(nonce=started.nonce, extra={CLAIM + "custom": target_of(campus.notes)})
    claims.pop("azp", None)
    token = None
    now = int(time.time())
    if case == "wrong aud":
        claims["aud"] = "someone-else"
    elif case == "wrong iss":
        claims["iss"] = "https://evil.example"
    elif case == "expired":
        claims["iat"], claims["exp"] = now - 4000, now - 61
    elif case == "future iat":
        claims["iat"] = now + 600
    elif case == "unknown kid":
        token = platform.sign(claims, kid="not-published")
    elif case == "alg none":
        token = _none_token(claims)
    elif case == "hs256 with public key":
        token = _hs256_with_public_key(platform, claims)
    elif case == "other key same kid":
        token = platform.sign(claims, key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    elif case == "unregistered deployment":
        claims[CLAIM + "deployment_id"] = "999"
    elif case.startswith("missing "):
        name = case.removeprefix("missing ")
        claims.pop(name if name == "nonce" else CLAIM + name)
    elif case == "wrong nonce":
        claims["nonce"] = "not-the-login-nonce"
    elif case == "several aud without azp":
        claims["aud"] = [platform.client_id, "another"]
    expected_status, expected_text = CASES[case]
    response = launch(campus.lms, platform, token or platform.sign(claims), started.state)
    assert response.status_code == expected_status, response.text
    assert expected_text in response.text
    assert response.headers["content-type"].startswith("text/html")
    assert _stored(services) == (0, 0)


def test_replayed_nonce_is_refused(campus: Campus, simulator: Simulator, services: Services) -> None:
    platform = simulator.platform("moodle")
    register(campus, platform)
    started = login(campus.lms, platform)
    token = platform.sign(platform.claims(nonce=started.nonce, extra={CLAIM + "custom": target_of(campus.notes)}))
    assert launch(campus.lms, platform, token, started.state).status_code == 200
    replay = launch(campus.lms, platform, token, started.state)
    assert replay.status_code == 401
    assert "replayed" in replay.text
    assert _stored(services) == (1, 1)


def test_state_from_another_browser_or_tampered_is_refused(
    campus: Campus, simulator: Simulator, services: Services
) -> None:
    platform = simulator.platform("moodle")
    register(campus, platform)
    started = login(campus.lms, platform)
    token = platform.sign(platform.claims(nonce=started.nonce, extra={CLAIM + "custom": target_of(campus.notes)}))
    campus.lms.cookies.clear()
    wrong = launch(campus.lms, platform, token, started.state, binding="another-browser")
    assert wrong.status_code == 403
    assert "could not verify" in wrong.text
    tampered = launch(campus.lms, platform, token, started.state[:-2] + "xx", binding=started.binding)
    assert tampered.status_code == 400
    assert "not one StudyShelf issued" in tampered.text
    assert _stored(services) == (0, 0)


def test_a_launch_from_another_browser_is_refused_as_unverified(
    campus: Campus, simulator: Simulator, services: Services
) -> None:
    """The state came from another browser: not a storage problem, and not a 200 page."""
    platform = simulator.platform("moodle")
    register(campus, platform)
    started = login(campus.lms, platform)
    token = platform.sign(platform.claims(nonce=started.nonce, extra={CLAIM + "custom": target_of(campus.notes)}))
    other = TestClient(create_app(services=services), base_url="http://testserver")  # no cookie, nothing stored
    check = launch(other, platform, token, started.state)
    assert check.status_code == 200  # the page looks in this browser's storage first
    assert "blocked the storage" not in check.text
    looked = launch(other, platform, token, started.state, checked="1", storage="available")
    assert looked.status_code == 403
    assert "This launch could not be verified" in looked.text
    assert "Open the activity again from the course" in looked.text
    assert "blocked the storage" not in looked.text
    blocked = launch(other, platform, token, started.state, checked="1", storage="blocked")
    assert blocked.status_code == 403
    assert "Your browser blocked the storage" in blocked.text
    assert _stored(services) == (0, 0)


def test_unknown_platform_login_is_refused(campus: Campus, simulator: Simulator) -> None:
    platform = simulator.platform("moodle")
    response = campus.lms.post("/lti/login", data=platform.login_params("http://testserver/lti/launch"))
    assert response.status_code == 400
    assert "not connected" in response.text


def test_revoked_grant_shows_a_clear_page_in_the_frame(
    campus: Campus, simulator: Simulator, services: Services
) -> None:
    platform = simulator.platform("moodle")
    register(campus, platform)
    revoked = campus.publisher.client.delete(f"/api/v1/grants/{campus.grant_id}", headers=campus.publisher.headers())
    assert revoked.status_code in (200, 204)
    started = login(campus.lms, platform)
    token = platform.sign(platform.claims(nonce=started.nonce, extra={CLAIM + "custom": target_of(campus.notes)}))
    response = launch(campus.lms, platform, token, started.state)
    assert response.status_code == 403
    assert "no longer shared" in response.text
    assert "frame-ancestors *" in response.headers["content-security-policy"]
    assert _stored(services) == (0, 0)


def test_platform_key_rotation_is_picked_up_by_one_refetch(campus: Campus, simulator: Simulator) -> None:
    platform = simulator.platform("moodle")
    register(campus, platform)
    for _ in range(2):  # the second launch is signed with a new key the cached JWKS does not have
        started = login(campus.lms, platform)
        token = platform.sign(platform.claims(nonce=started.nonce, extra={CLAIM + "custom": target_of(campus.notes)}))
        assert launch(campus.lms, platform, token, started.state).status_code == 200
        platform.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        platform.kid = "rotated"


def test_login_cookie_is_secure_only_behind_a_trusted_https_proxy(services: Services, simulator: Simulator) -> None:
    platform = simulator.platform("moodle")
    with unit_of_work(services.write_sessions) as db:
        org = provision_organization(db, name="Uni", slug="uni", kind=OrgKind.PARTNER)
        spec = RegistrationSpec(**platform.registration_spec())
        create_registration(db, principal=None, org_id=org.id, spec=spec, allow_loopback_http=True)
    trusted = services.settings.model_copy(update={"trusted_proxies": ["10.0.0.0/8"]})
    app = create_app(services=dataclasses.replace(services, settings=trusted))
    forwarded = {"x-forwarded-proto": "https"}
    params = platform.login_params("http://testserver/lti/launch")
    behind = TestClient(app, client=("10.0.0.5", 4000)).post("/lti/login", data=params, headers=forwarded)
    assert "secure" in behind.headers["set-cookie"].lower()
    assert "samesite=none" in behind.headers["set-cookie"].lower()
    direct = TestClient(app, client=("203.0.113.9", 4000)).post("/lti/login", data=params, headers=forwarded)
    assert "secure" not in direct.headers["set-cookie"].lower()
    assert "samesite=lax" in direct.headers["set-cookie"].lower()


def test_reloading_the_frame_shows_the_material_again(campus: Campus, simulator: Simulator) -> None:
    platform = simulator.platform("moodle")
    register(campus, platform)
    started = login(campus.lms, platform)
    token = platform.sign(platform.claims(nonce=started.nonce, extra={CLAIM + "custom": target_of(campus.notes)}))
    first = launch(campus.lms, platform, token, started.state, follow=False)
    assert first.status_code == 303
    view = first.headers["location"]
    assert view.startswith("/lti/view/lti-")
    assert campus.lms.get(view).status_code == 200
    assert campus.lms.get(view).status_code == 200
    assert campus.lms.get(view.split("?")[0] + "?t=1.forged").status_code == 403


def test_media_renewal_stops_when_the_grant_is_revoked(campus: Campus, simulator: Simulator) -> None:
    platform = simulator.platform("moodle")
    register(campus, platform)
    started = login(campus.lms, platform)
    token = platform.sign(platform.claims(nonce=started.nonce, extra={CLAIM + "custom": target_of(campus.notes)}))
    page = launch(campus.lms, platform, token, started.state).text
    renew_url = data_attr(page, "renew-url")
    body = {"token": data_attr(page, "token"), "file_id": campus.notes["id"]}
    fresh = campus.lms.post(renew_url, json=body)
    assert fresh.status_code == 200
    assert fresh.json()["url"].startswith("/m/")
    assert fresh.json()["download_url"] is None
    campus.publisher.client.delete(f"/api/v1/grants/{campus.grant_id}", headers=campus.publisher.headers())
    assert campus.lms.post(renew_url, json=body).status_code == 403
