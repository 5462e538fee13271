"""Sign-in, sessions, personal API tokens, CSRF, /me, organisations and members."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select, text, update

from studyshelf.app import create_app
from studyshelf.core.clock import CLOCK_SKEW, utcnow
from studyshelf.core.db import Base, unit_of_work
from studyshelf.core.ids import sha256_hex
from studyshelf.library.folders import get_root_folder
from studyshelf.partners import service as partners
from studyshelf.partners.models import ApiToken, Organization, OrgKind, Role, User, WebSession
from studyshelf.services import Services
from tests.conftest import PASSWORD, Member, World
from tests.library.support import assert_problem

LOGIN = "/api/v1/auth/login"


def fresh_client(world: World, *, peer: str = "testclient") -> TestClient:
    return TestClient(world.app, base_url="http://testserver", client=(peer, 50000))


def create_token(member: Member, **body: object) -> dict[str, object]:
    response = member.client.post("/api/v1/auth/tokens", json={"name": "ci", **body}, headers=member.headers())
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


def bearer(token: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_login_sets_a_hardened_session_cookie(world: World) -> None:
    member = world.member(world.org())
    client = fresh_client(world)
    response = client.post(LOGIN, json={"email": member.email, "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["email"] == member.email
    assert len(body["csrf_token"]) >= 24
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("studyshelf_session=")
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "samesite", "path", "max-age"} <= attributes
    assert "samesite=lax" in cookie.lower()
    assert "secure" not in attributes  # http://testserver, no proxy
    assert client.get("/api/v1/me").status_code == 200


def test_wrong_password_and_unknown_user_look_the_same(world: World) -> None:
    member = world.member(world.org())
    client = fresh_client(world)
    wrong = assert_problem(
        client.post(LOGIN, json={"email": member.email, "password": "nope-nope"}), 401, "not-authenticated"
    )
    unknown = assert_problem(
        client.post(LOGIN, json={"email": "ghost@x.test", "password": "nope-nope"}), 401, "not-authenticated"
    )
    assert wrong["detail"] == unknown["detail"]
    assert "studyshelf_session" not in client.cookies


def test_login_email_is_case_insensitive(world: World) -> None:
    member = world.member(world.org())
    response = fresh_client(world).post(LOGIN, json={"email": f"  {member.email.upper()} ", "password": PASSWORD})
    assert response.status_code == 200


def test_logout_ends_the_session(owner: Member) -> None:
    cookie = owner.client.cookies["studyshelf_session"]
    response = owner.client.post("/api/v1/auth/logout", headers=owner.headers())
    assert response.status_code == 204
    assert "studyshelf_session" not in owner.client.cookies
    replay = TestClient(owner.client.app, cookies={"studyshelf_session": cookie})
    assert_problem(replay.get("/api/v1/me"), 401, "not-authenticated")


def test_logout_needs_the_csrf_token(owner: Member) -> None:
    assert_problem(owner.client.post("/api/v1/auth/logout"), 403, "csrf-failed")
    assert owner.client.get("/api/v1/me").status_code == 200


def test_no_credentials_is_401_with_a_challenge(app_client: TestClient) -> None:
    for path in (
        "/api/v1/me",
        "/api/v1/orgs",
        f"/api/v1/folders/{uuid.uuid4()}/children",
        f"/api/v1/files/{uuid.uuid4()}/content",
    ):
        response = app_client.get(path)
        assert_problem(response, 401, "not-authenticated")
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_expired_session_is_401(owner: Member, services: Services) -> None:
    with unit_of_work(services.write_sessions) as db:
        db.execute(
            update(WebSession)
            .where(WebSession.user_id == owner.user_id)
            .values(expires_at=utcnow() - timedelta(seconds=CLOCK_SKEW + 1))  # past the skew between instances
        )
    assert_problem(owner.client.get("/api/v1/me"), 401, "not-authenticated")
    response = owner.client.post(
        "/api/v1/folders", json={"name": "x", "parent_id": str(owner.root_folder_id)}, headers=owner.headers()
    )
    assert_problem(response, 401, "not-authenticated")


def test_garbage_session_cookie_is_401(world: World) -> None:
    client = TestClient(world.app, cookies={"studyshelf_session": "forged"})
    assert_problem(client.get("/api/v1/me"), 401, "not-authenticated")


def test_tokens_are_shown_once_and_stored_hashed(owner: Member, services: Services) -> None:
    created = create_token(owner, name="laptop")
    secret = created["token"]
    assert isinstance(secret, str)
    assert secret.startswith("ss_")
    assert created["prefix"] == secret[:10]

    listed = owner.client.get("/api/v1/auth/tokens").json()
    assert [t["id"] for t in listed] == [created["id"]]
    assert "token" not in listed[0]
    assert secret not in owner.client.get("/api/v1/auth/tokens").text

    with services.read_sessions() as db:
        row = db.scalars(select(ApiToken)).one()
        assert row.token_hash == sha256_hex(secret)
        for table in Base.metadata.sorted_tables:
            for record in db.execute(select(table)).all():
                assert all(secret not in str(value) for value in record), f"plaintext token in {table.name}"


def test_bearer_token_authenticates_and_revocation_stops_it(owner: Member, world: World) -> None:
    created = create_token(owner)
    client = fresh_client(world)
    me = client.get("/api/v1/me", headers=bearer(created["token"]))
    assert me.status_code == 200
    assert me.json()["user"]["email"] == owner.email

    assert owner.client.delete(f"/api/v1/auth/tokens/{created['id']}", headers=owner.headers()).status_code == 204
    assert_problem(client.get("/api/v1/me", headers=bearer(created["token"])), 401, "not-authenticated")
    assert owner.client.get("/api/v1/auth/tokens").json() == []
    assert_problem(
        owner.client.delete(f"/api/v1/auth/tokens/{created['id']}", headers=owner.headers()), 404, "not-found"
    )


def test_an_invalid_bearer_token_is_401_even_with_a_session(owner: Member) -> None:
    assert_problem(owner.client.get("/api/v1/me", headers=bearer("ss_forged")), 401, "not-authenticated")


def test_nobody_revokes_or_sees_another_users_token(world: World) -> None:
    org = world.org()
    alice, bob = world.member(org), world.member(org)
    created = create_token(alice)
    assert bob.client.get("/api/v1/auth/tokens").json() == []
    assert_problem(bob.client.delete(f"/api/v1/auth/tokens/{created['id']}", headers=bob.headers()), 404, "not-found")
    assert fresh_client(world).get("/api/v1/me", headers=bearer(created["token"])).status_code == 200


def test_csrf_is_required_for_cookie_writes_but_not_for_bearer_writes(owner: Member, world: World) -> None:
    body = {"name": "Chemistry", "parent_id": str(owner.root_folder_id)}
    assert_problem(owner.client.post("/api/v1/folders", json=body), 403, "csrf-failed")
    assert_problem(
        owner.client.post("/api/v1/folders", json=body, headers={"X-CSRF-Token": "wrong"}), 403, "csrf-failed"
    )
    assert owner.client.get(f"/api/v1/folders/{owner.root_folder_id}/children").json()["items"] == []

    token = create_token(owner)["token"]
    response = fresh_client(world).post("/api/v1/folders", json=body, headers=bearer(token))
    assert response.status_code == 201, response.text
    assert (
        owner.client.post("/api/v1/folders", json={**body, "name": "Physics"}, headers=owner.headers()).status_code
        == 201
    )


def test_a_token_scoped_to_an_org_and_capped_at_viewer(world: World) -> None:
    org, other = world.org("northwind"), world.org("contoso", OrgKind.PARTNER)
    member = world.member(org, Role.EDITOR)
    with unit_of_work(world.services.write_sessions) as db:
        user = db.scalars(select(User).where(User.email == member.email)).one()
        partners.add_member(db, user=user, org=db.get(Organization, other.id) or other, role=Role.OWNER)
    token = create_token(member, org_id=str(org.id), role="viewer")
    assert token["role"] == "viewer"
    client = fresh_client(world)
    headers = bearer(token["token"])
    assert client.get(f"/api/v1/folders/{member.root_folder_id}/children", headers=headers).status_code == 200
    write = client.post("/api/v1/folders", json={"name": "x", "parent_id": str(member.root_folder_id)}, headers=headers)
    assert_problem(write, 403, "permission-denied")
    me = client.get("/api/v1/me", headers=headers).json()
    assert [o["slug"] for o in me["organizations"]] == ["northwind"]
    assert [o["role"] for o in me["organizations"]] == ["viewer"]


def test_a_token_cannot_outrank_its_owner(world: World) -> None:
    member = world.member(world.org(), Role.VIEWER)
    response = member.client.post(
        "/api/v1/auth/tokens",
        json={"name": "x", "org_id": str(member.org_id), "role": "owner"},
        headers=member.headers(),
    )
    assert_problem(response, 422, "invalid")
    response = member.client.post(
        "/api/v1/auth/tokens", json={"name": "x", "org_id": str(uuid.uuid4())}, headers=member.headers()
    )
    assert_problem(response, 404, "not-found")


def test_me_lists_each_org_with_its_root_folder(world: World, services: Services) -> None:
    northwind, contoso, hidden = (
        world.org("northwind"),
        world.org("contoso", OrgKind.PARTNER),
        world.org("hidden", OrgKind.PARTNER),
    )
    member = world.member(northwind, Role.EDITOR)
    with unit_of_work(services.write_sessions) as db:
        user = db.scalars(select(User).where(User.email == member.email)).one()
        partners.add_member(db, user=user, org=db.get(Organization, contoso.id) or contoso, role=Role.VIEWER)
        roots = {org.slug: str(get_root_folder(db, org_id=org.id).id) for org in (northwind, contoso, hidden)}
    me = member.client.get("/api/v1/me").json()
    assert me["user"]["email"] == member.email
    orgs = {o["slug"]: o for o in me["organizations"]}
    assert set(orgs) == {"northwind", "contoso"}
    assert orgs["northwind"]["root_folder_id"] == roots["northwind"] == str(member.root_folder_id)
    assert orgs["contoso"]["root_folder_id"] == roots["contoso"]
    assert (orgs["northwind"]["role"], orgs["contoso"]["role"]) == ("editor", "viewer")
    assert me["current_org_id"] == str(northwind.id)


def test_orgs_visible_to_partners_and_to_operator_staff(world: World) -> None:
    northwind, contoso, fabrikam = (
        world.org("northwind"),
        world.org("contoso", OrgKind.PARTNER),
        world.org("fabrikam", OrgKind.PARTNER),
    )
    partner = world.member(contoso)
    staff = world.member(northwind)
    # Partners see themselves and the publisher, never each other; the publisher's staff see every partner.
    seen_by_partner = {o["slug"]: o["id"] for o in partner.client.get("/api/v1/orgs").json()}
    assert seen_by_partner == {"contoso": str(contoso.id), "northwind": str(northwind.id)}
    seen_by_staff = {o["slug"]: o["id"] for o in staff.client.get("/api/v1/orgs").json()}
    assert seen_by_staff == {"contoso": str(contoso.id), "fabrikam": str(fabrikam.id), "northwind": str(northwind.id)}


def test_members_of_an_org(world: World) -> None:
    org, other = world.org("northwind"), world.org("contoso", OrgKind.PARTNER)
    owner = world.member(org, Role.OWNER, email="b-owner@northwind.test")
    world.member(org, Role.VIEWER, email="a-viewer@northwind.test")
    outsider = world.member(other)
    members = owner.client.get(f"/api/v1/orgs/{org.id}/members").json()
    assert [(m["user"]["email"], m["role"]) for m in members] == [
        ("a-viewer@northwind.test", "viewer"),
        ("b-owner@northwind.test", "owner"),
    ]
    assert_problem(outsider.client.get(f"/api/v1/orgs/{org.id}/members"), 404, "not-found")
    assert_problem(owner.client.get("/api/v1/orgs/not-a-uuid/members"), 422, "invalid")


def test_login_is_throttled_per_client_network(world: World, services: Services) -> None:
    """One network guessing over many accounts backs off too (tests/partners/test_login_throttle.py: the rest)."""
    settings = services.settings.model_copy(update={"login_network_max_failures": 3})
    app = create_app(services=dataclasses.replace(services, settings=settings))
    member = world.member(world.org())
    guesser = TestClient(app, client=("198.51.100.7", 4000))
    for i in range(3):
        assert guesser.post(LOGIN, json={"email": f"user{i}@x.test", "password": "wrong-password"}).status_code == 401
    assert_problem(guesser.post(LOGIN, json={"email": member.email, "password": PASSWORD}), 429, "too-many-requests")
    assert (
        TestClient(app, client=("198.51.101.8", 4000))
        .post(LOGIN, json={"email": member.email, "password": PASSWORD})
        .status_code
        == 200
    )


def test_success_resets_the_account_counter(world: World, services: Services) -> None:
    app = create_app(
        services=dataclasses.replace(services, settings=services.settings.model_copy(update={"login_max_failures": 3}))
    )
    member = world.member(world.org())
    for round_ in range(2):
        for i in range(2):
            client = TestClient(app, client=(f"198.51.{round_}.{i}", 4000))
            assert client.post(LOGIN, json={"email": member.email, "password": "wrong-password"}).status_code == 401
        assert (
            TestClient(app, client=("203.0.113.1", 4000))
            .post(LOGIN, json={"email": member.email, "password": PASSWORD})
            .status_code
            == 200
        )


def test_cookie_is_secure_behind_https(world: World, services: Services) -> None:
    member = world.member(world.org())
    https_services = dataclasses.replace(
        services, settings=services.settings.model_copy(update={"base_url": "https://shelf.example"})
    )
    response = TestClient(create_app(services=https_services)).post(
        LOGIN, json={"email": member.email, "password": PASSWORD}
    )
    assert "secure" in [p.strip().lower() for p in response.headers["set-cookie"].split(";")]

    proxied = dataclasses.replace(
        services, settings=services.settings.model_copy(update={"trusted_proxies": ["10.0.0.0/8"]})
    )
    app = create_app(services=proxied)
    forwarded = {"X-Forwarded-Proto": "https"}
    behind_proxy = TestClient(app, client=("10.1.2.3", 4000)).post(
        LOGIN, json={"email": member.email, "password": PASSWORD}, headers=forwarded
    )
    assert "secure" in [p.strip().lower() for p in behind_proxy.headers["set-cookie"].split(";")]
    spoofed = TestClient(app, client=("192.0.2.1", 4000)).post(
        LOGIN, json={"email": member.email, "password": PASSWORD}, headers=forwarded
    )
    assert "secure" not in [p.strip().lower() for p in spoofed.headers["set-cookie"].split(";")]


def test_sessions_are_stored_by_hash(owner: Member, services: Services) -> None:
    cookie = owner.client.cookies["studyshelf_session"]
    with services.read_sessions() as db:
        ids = list(db.execute(text("SELECT id FROM web_sessions")).scalars())
    assert ids == [sha256_hex(cookie)]


def test_control_characters_in_stored_text_are_422_not_500(owner: Member, world: World) -> None:
    # PostgreSQL cannot store NUL in text; these once reached the database and failed there.
    client = fresh_client(world)
    assert_problem(client.post(LOGIN, json={"email": "a\x00@x.test", "password": "whatever"}), 422, "invalid")
    response = owner.client.post("/api/v1/auth/tokens", json={"name": "ci\x00"}, headers=owner.headers())
    assert_problem(response, 422, "invalid")
    assert owner.client.get("/api/v1/auth/tokens").json() == []
