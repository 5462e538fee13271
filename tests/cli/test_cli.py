"""The `studyshelf` command end to end: each command runs against a fresh data dir, as an operator would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, inspect, select, text, update
from typer.main import get_command
from typer.testing import CliRunner, Result

from studyshelf.app import create_app
from studyshelf.cli import app
from studyshelf.core.clock import utcnow
from studyshelf.library.models import Blob, Caption, File, FileVersion, Folder
from studyshelf.partners.models import Membership, Organization, OrgKind, Role, User
from studyshelf.services import Services, build_services
from studyshelf.settings import Settings

DEMO_TYPES = {
    "application/pdf",
    "video/mp4",
    "audio/mpeg",
    "image/png",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}
PASSWORD_LINE = re.compile(r"Password(?: \(shown once\))?:\s+(\S+)")


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean environment: only this test's data dir, nothing from the developer's shell."""
    for name in list(os.environ):
        if name.startswith("STUDYSHELF_"):
            monkeypatch.delenv(name)
    path = tmp_path / "data"
    monkeypatch.setenv("STUDYSHELF_DATA_DIR", str(path))
    return path


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def ok(*args: str) -> str:
    result = run(*args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


@pytest.fixture
def open_services(data_dir: Path) -> Iterator[Services]:
    """Services over the same environment the CLI sees (for checking what it did)."""
    services = build_services(Settings())
    yield services
    services.engine.dispose()


def counts(services: Services) -> dict[str, int]:
    with services.read_sessions() as db:
        return {
            model.__tablename__: db.scalar(select(func.count()).select_from(model)) or 0
            for model in (Organization, User, Membership, Folder, File, FileVersion, Blob)
        }


def sign_in(services: Services, email: str, password: str) -> int:
    with TestClient(create_app(services=services), base_url="http://testserver") as client:
        status: int = client.post("/api/v1/auth/login", json={"email": email, "password": password}).status_code
        return status


def command_paths() -> list[list[str]]:
    """Every command and sub-command the CLI has, found by walking it (so new ones are covered too)."""
    paths: list[list[str]] = [[]]
    root = get_command(app)
    stack = [([name], command) for name, command in getattr(root, "commands", {}).items()]
    while stack:
        path, command = stack.pop()
        paths.append(path)
        stack += [([*path, name], sub) for name, sub in getattr(command, "commands", {}).items()]
    return paths


def test_every_command_has_help(data_dir: Path) -> None:
    paths = command_paths()
    assert {"serve", "migrate", "demo"} <= {p[0] for p in paths if p}
    assert {("org", "create"), ("user", "create"), ("trash", "purge")} <= {tuple(p) for p in paths if len(p) == 2}
    for path in paths:
        output = ok(*path, "--help")
        assert "Usage" in output, path
    assert not data_dir.exists(), "--help must not touch the data dir"


def test_migrate_creates_the_schema(data_dir: Path) -> None:
    assert "up to date" in ok("migrate")
    assert "up to date" in ok("migrate")  # twice is harmless
    services = build_services(Settings())
    try:
        with services.engine.connect() as conn:
            assert conn.scalar(text("SELECT count(*) FROM alembic_version")) == 1
            assert conn.scalar(text("SELECT count(*) FROM organizations")) == 0
    finally:
        services.engine.dispose()


def test_org_and_user_create(data_dir: Path) -> None:
    ok("migrate")
    output = ok("org", "create", "--name", "Riverside University", "--slug", "riverside", "--kind", "partner")
    assert "riverside" in output

    output = ok("user", "create", "--email", "Ada@Riverside.test", "--org", "riverside", "--role", "editor")
    passwords = PASSWORD_LINE.findall(output)
    assert len(passwords) == 1, output
    assert output.count(passwords[0]) == 1  # shown once, and only there

    ok("user", "create", "--email", "bo@riverside.test", "--org", "riverside", "--password", "chosen-password-1")
    services = build_services(Settings())
    try:
        with services.read_sessions() as db:
            org = db.scalar(select(Organization).where(Organization.slug == "riverside"))
            assert org is not None
            assert org.kind is OrgKind.PARTNER
            query = select(User.email, Membership.role).join(Membership, Membership.user_id == User.id)
            roles = dict(db.execute(query).all())
        assert roles == {"ada@riverside.test": Role.EDITOR, "bo@riverside.test": Role.VIEWER}
        assert sign_in(services, "ada@riverside.test", passwords[0]) == 200
        assert sign_in(services, "bo@riverside.test", "chosen-password-1") == 200
    finally:
        services.engine.dispose()


def test_demo_creates_the_demo(data_dir: Path, open_services: Services) -> None:
    output = ok("demo")
    passwords = PASSWORD_LINE.findall(output)
    assert len(passwords) == 1, output

    services = open_services
    with services.read_sessions() as db:
        orgs = {o.slug: o for o in db.scalars(select(Organization))}
        assert set(orgs) == {"northwind", "riverside"}
        assert orgs["northwind"].kind is OrgKind.OPERATOR
        assert orgs["northwind"].name == "Northwind Publishing"
        assert orgs["riverside"].kind is OrgKind.PARTNER
        admin = db.scalar(select(User).where(User.email == "admin@studyshelf.local"))
        assert admin is not None
        assert admin.is_platform_admin
        roles = {m.org_id: m.role for m in admin.memberships}
        assert roles == {orgs["northwind"].id: Role.OWNER, orgs["riverside"].id: Role.ADMIN}
        versions = list(db.scalars(select(FileVersion).join(File, File.current_version_id == FileVersion.id)))
        names = set(db.scalars(select(File.name)))
        lecture = db.scalar(select(File.id).where(File.name == "Mitosis — lecture.mp4"))
        captions = [(c.language, c.is_default, c.source_format) for c in db.scalars(select(Caption))]
    assert lecture is not None
    assert sorted(captions) == [("de", False, "srt"), ("en", True, "vtt")]
    assert len(versions) >= 5
    assert {v.content_type for v in versions} >= DEMO_TYPES
    assert {"Cell structure.pdf", "Mitosis — lecture.mp4", "Pronunciation guide.mp3"} <= names
    for version in versions:  # the bytes are in the store, whole
        assert services.blobs.size(version.blob_sha256) == version.size > 0
    assert sign_in(services, "admin@studyshelf.local", passwords[0]) == 200


def test_demo_twice_changes_nothing(data_dir: Path, open_services: Services) -> None:
    ok("demo")
    before = counts(open_services)
    blobs_before = sorted(open_services.blobs.iter_digests())

    output = ok("demo", "--if-empty")
    assert "already set up" in output
    assert not PASSWORD_LINE.search(output)
    output = ok("demo")  # even without --if-empty nothing is added twice
    assert not PASSWORD_LINE.search(output)

    assert counts(open_services) == before
    assert sorted(open_services.blobs.iter_digests()) == blobs_before


def test_demo_uses_the_admin_settings(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDYSHELF_ADMIN_EMAIL", "ops@northwind.test")
    monkeypatch.setenv("STUDYSHELF_ADMIN_PASSWORD", "from-the-environment")
    output = ok("demo")
    assert "from-the-environment" not in output
    assert not PASSWORD_LINE.search(output)
    services = build_services(Settings())
    try:
        assert sign_in(services, "ops@northwind.test", "from-the-environment") == 200
        assert sign_in(services, "ops@northwind.test", "wrong-password") == 401
    finally:
        services.engine.dispose()


def test_trash_purge_removes_old_items_and_their_blobs(data_dir: Path, open_services: Services) -> None:
    ok("demo")
    services = open_services
    with services.write_sessions() as db, db.begin():
        old, recent = (
            db.scalars(
                select(File).where(File.name.in_(["Cell diagram.png", "Cell structure.pdf"])).order_by(File.name)
            )
        ).all()
        assert old.current_version is not None
        old_digest = old.current_version.blob_sha256
        db.execute(update(File).where(File.id == old.id).values(deleted_at=utcnow() - timedelta(days=31)))
        db.execute(update(File).where(File.id == recent.id).values(deleted_at=utcnow() - timedelta(days=1)))
    assert services.blobs.exists(old_digest)

    output = ok("trash", "purge")
    assert "Purged 1 items" in output
    assert "1 unused blobs" in output

    with services.read_sessions() as db:
        assert db.get(File, old.id) is None
        assert db.get(File, recent.id) is not None  # still restorable
        assert db.get(Blob, old_digest) is None
    assert not services.blobs.exists(old_digest)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["user", "create", "--email", "x@y.test", "--org", "nowhere"], "No organisation with the slug 'nowhere'"),
        (["org", "create", "--name", "Bad", "--slug", "Not A Slug"], "A slug is 1-64 lowercase"),
        (["org", "create", "--name", "Again", "--slug", "riverside"], "exists already"),
        (["user", "create", "--email", "taken@riverside.test", "--org", "riverside"], "exists already"),
        (
            ["user", "create", "--email", "new@riverside.test", "--org", "riverside", "--password", "short"],
            "8 characters",
        ),
    ],
)
def test_bad_input_is_a_clear_error(data_dir: Path, args: list[str], message: str) -> None:
    ok("migrate")
    ok("org", "create", "--name", "Riverside", "--slug", "riverside")
    ok("user", "create", "--email", "taken@riverside.test", "--org", "riverside")
    result = run(*args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


def test_the_installed_command_reports_errors_without_a_traceback(data_dir: Path) -> None:
    ok("migrate")
    command = Path(sys.executable).with_name("studyshelf")
    result = subprocess.run(  # noqa: S603 — our own entry point, fixed arguments
        [str(command), "user", "create", "--email", "x@y.test", "--org", "nowhere"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "No organisation with the slug 'nowhere'" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.postgres
def test_cli_against_postgresql(data_dir: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDYSHELF_DATABASE_URL", postgres_url)
    monkeypatch.setenv("STUDYSHELF_ADMIN_PASSWORD", "postgres-admin-pw")
    services = build_services(Settings())
    ok("migrate")
    tables = [name for name in inspect(services.engine).get_table_names() if name != "alembic_version"]
    truncate = ", ".join(f'"{name}"' for name in tables)
    try:
        with services.engine.begin() as conn:  # the worker's database is shared; start from empty
            conn.execute(text(f"TRUNCATE {truncate} CASCADE"))
        ok("demo", "--if-empty")
        assert "already set up" in ok("demo", "--if-empty")
        ok("org", "create", "--name", "Lakeside College", "--slug", "lakeside")
        ok("user", "create", "--email", "t@lakeside.test", "--org", "lakeside", "--role", "editor")
        assert run("user", "create", "--email", "t@lakeside.test", "--org", "lakeside").exit_code == 1
        assert "Purged 0 items" in ok("trash", "purge")
        found = counts(services)
        assert found["organizations"] == 3
        assert found["users"] == 2
        assert found["files"] >= 5
        assert sign_in(services, "admin@studyshelf.local", "postgres-admin-pw") == 200
    finally:
        with services.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {truncate} CASCADE"))
        services.engine.dispose()
