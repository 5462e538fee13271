"""Property-based checks of every operation in our own OpenAPI document: no 5xx, responses match the schema."""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import APIOperation, Case
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from studyshelf.app import create_app
from studyshelf.core.db import unit_of_work
from studyshelf.partners import service as partners
from studyshelf.partners.models import User
from studyshelf.settings import Settings
from tests.conftest import World


@dataclass(frozen=True)
class Caller:
    """A real owner's personal token, and ids of things that exist in their library."""

    token: str
    known: dict[str, str]


@pytest.fixture
def caller(world: World) -> Caller:
    org = world.org()
    member = world.member(org)
    file = member.client.post(
        f"/api/v1/folders/{member.root_folder_id}/files",
        files={"file": ("notes.txt", b"hello")},
        headers=member.headers(),
    ).json()
    folder = member.client.post(
        "/api/v1/folders", json={"name": "Week 1", "parent_id": str(member.root_folder_id)}, headers=member.headers()
    ).json()
    version = member.client.get(f"/api/v1/files/{file['id']}/versions").json()[0]
    with unit_of_work(world.services.write_sessions) as db:
        user = db.get(User, member.user_id)
        assert user is not None
        _, token = partners.create_api_token(db, user=user, name="schemathesis")
    known = {
        "org_id": str(org.id),
        "folder_id": folder["id"],
        "file_id": file["id"],
        "version_id": version["id"],
        "user_id": str(member.user_id),
    }
    return Caller(token=token, known=known)


def _load_schema() -> schemathesis.BaseSchema:
    """Our OpenAPI document, built by an app that is never started (tests call their own app).

    Not through `from_asgi`: that would run the app's lifespan, whose background threads (scheduler, flushers,
    media processing) would then work beside collection; CPython 3.11 tracks the AST constructor's recursion per
    interpreter, so their imports beside hypothesis's `ast.parse` fail with "AST constructor recursion depth
    mismatch".
    """
    data_dir = Path(tempfile.mkdtemp(prefix="studyshelf-openapi-"))
    app = create_app(
        Settings(environment="test", data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'unused.sqlite3'}")
    )
    return schemathesis.openapi.from_dict(app.openapi())


schema = _load_schema()


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_conforms_to_its_schema(case: Case[APIOperation[Any, Any, Any, Any]], world: World, caller: Caller) -> None:
    # Well-formed ids point at real things half the time, so handlers get past their 404s.
    for name, value in list((case.path_parameters or {}).items()):
        if name in caller.known and _is_uuid(value) and int(uuid.UUID(str(value))) % 2 == 0:
            case.path_parameters[name] = caller.known[name]
    case.call_and_validate(
        app=world.app,
        headers={"Authorization": f"Bearer {caller.token}"},
        checks=[not_a_server_error, response_schema_conformance],
    )


def _is_uuid(value: object) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True
