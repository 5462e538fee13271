"""Shared fixtures: a fresh database (SQLite or PostgreSQL) and data dir per test, an app, signed-in clients."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from studyshelf.app import create_app
from studyshelf.core import migrate
from studyshelf.core.db import Base, make_engine, unit_of_work
from studyshelf.library.folders import get_root_folder
from studyshelf.library.provisioning import provision_organization
from studyshelf.partners import service as partners
from studyshelf.partners.models import Organization, OrgKind, Role
from studyshelf.services import Services, build_services
from studyshelf.settings import Settings
from tests.mail_support import SmtpInbox, running_smtp_inbox
from tests.s3_support import S3Server, running_s3_server

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN_URL = os.environ.get("STUDYSHELF_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
PASSWORD = "correct horse battery"


def postgres_available() -> bool:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def require_service(available: bool, name: str) -> None:
    """Skip on a laptop without the service; under CI=true a missing service is a failure."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{name} is required under CI=true but is not reachable")
    pytest.skip(f"{name} is not available")


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashing() -> Iterator[None]:
    """Tests sign in hundreds of times; production cost parameters would make that minutes."""
    from argon2 import PasswordHasher

    original = partners._hasher
    partners._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    yield
    partners._hasher = original


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for every test (migrations run once per worker)."""
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL database for this test worker, migrated once, dropped at the end."""
    require_service(postgres_available(), "PostgreSQL")
    name = f"studyshelf_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield url
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _truncate_all(services: Services) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with services.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} CASCADE"))


BOTH_DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """A fresh SQLite copy of the migrated template, or the worker's PostgreSQL database (per request.param)."""
    if request.param == "sqlite":
        path = tmp_path / "studyshelf.sqlite3"
        shutil.copyfile(sqlite_template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(params=BOTH_DATABASES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    return database_url(request, tmp_path, sqlite_template)


def make_settings(tmp_path: Path, db_url: str, **overrides: object) -> Settings:
    """The settings every test starts from; a module's own `settings` fixture adds what it is about."""
    base: dict[str, object] = {
        "environment": "test",
        "data_dir": tmp_path / "data",
        "database_url": db_url,
        "secret_key": "test-secret-key-that-is-long-enough-for-production-0123456789",
        "max_upload_bytes": 10 * 1024 * 1024,
        "scheduler_interval_seconds": 0,
    }
    return Settings(**{**base, **overrides})  # type: ignore[arg-type]  # test overrides are any setting


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return make_settings(tmp_path, db_url)


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    built = build_services(settings)
    yield built
    if built.engine.dialect.name == "postgresql":
        _truncate_all(built)
    built.warehouse.close()
    built.events.close()
    built.engine.dispose()


@pytest.fixture
def smtp_inbox() -> Iterator[SmtpInbox]:
    """A local SMTP server; point `smtp_url` at `smtp_inbox.url`."""
    with running_smtp_inbox() as inbox:
        yield inbox


@pytest.fixture
def app_client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services=services), base_url="http://testserver") as client:
        yield client


@dataclass
class Member:
    """A user with a role in an organisation, and a client signed in as them."""

    client: TestClient
    user_id: uuid.UUID
    email: str
    org_id: uuid.UUID
    root_folder_id: uuid.UUID
    csrf: str

    def headers(self) -> dict[str, str]:
        return {"X-CSRF-Token": self.csrf}


class World:
    """Builds organisations and signed-in members for a test."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.app = create_app(services=services)

    def org(self, slug: str = "northwind", kind: OrgKind = OrgKind.OPERATOR) -> Organization:
        with unit_of_work(self.services.write_sessions) as db:
            return provision_organization(db, name=slug.title(), slug=slug, kind=kind)

    def member(self, org: Organization, role: Role = Role.OWNER, email: str | None = None) -> Member:
        email = email or f"{role.value}-{uuid.uuid4().hex[:6]}@{org.slug}.test"
        with unit_of_work(self.services.write_sessions) as db:
            user = partners.create_user(db, email=email, password=PASSWORD)
            partners.add_member(db, user=user, org=db.get(Organization, org.id) or org, role=role)
            root = get_root_folder(db, org_id=org.id)
            user_id, root_id = user.id, root.id
        client = TestClient(self.app, base_url="http://testserver")
        response = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        return Member(client, user_id, email, org.id, root_id, response.json()["csrf_token"])


@pytest.fixture
def world(services: Services) -> World:
    return World(services)


@pytest.fixture
def owner(world: World) -> Member:
    """An owner of the operator organisation, signed in."""
    return world.member(world.org())


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One moto S3 server for the whole test session (per xdist worker); make a bucket per test."""
    with running_s3_server() as server:
        yield server
