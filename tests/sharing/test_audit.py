"""The audit log: every change recorded with who, what, before/after and request id; filterable; CSV; append-only."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from studyshelf.core.db import unit_of_work
from studyshelf.partners.models import OrgKind, Role
from tests.conftest import World
from tests.library.support import assert_problem, make_folder, uploaded
from tests.sharing.support import grant, partnership


def test_changes_are_recorded_with_actor_target_and_request_id(world: World) -> None:
    p = partnership(world)
    response = p.publisher.client.patch(
        f"/api/v1/folders/{p.course['id']}", json={"name": "Course 2026"}, headers=p.publisher.headers()
    )
    grant(p.publisher, p.course["id"], p.partner.id)
    entries = p.publisher.client.get(f"/api/v1/orgs/{p.operator.id}/audit").json()
    actions = [e["action"] for e in entries]
    assert actions[:3] == ["grant.create", "folder.rename", "file.upload"]
    rename = entries[1]
    assert rename["actor_email"] == p.publisher.email
    assert rename["target_id"] == p.course["id"]
    assert '"Course"' in rename["before"]
    assert '"Course 2026"' in rename["after"]
    assert rename["request_id"] == response.headers["x-request-id"]


def test_filters_narrow_the_log_and_csv_exports_it(world: World) -> None:
    p = partnership(world)
    make_folder(p.publisher, p.publisher.root_folder_id, "=HYPERLINK(1)")
    url = f"/api/v1/orgs/{p.operator.id}/audit"
    only_folders = p.publisher.client.get(url, params={"action": "folder.create"}).json()
    assert {e["action"] for e in only_folders} == {"folder.create"}
    assert len(only_folders) == 2
    by_target = p.publisher.client.get(url, params={"target": "notes"}).json()
    assert [e["action"] for e in by_target] == ["file.upload"]
    assert p.publisher.client.get(url, params={"actor": "nobody@"}).json() == []
    assert p.publisher.client.get(url, params={"since": "2999-01-01T00:00:00Z"}).json() == []
    exported = p.publisher.client.get(f"{url}.csv", params={"action": "folder.create"})
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[0][:3] == ["at", "actor_email", "action"]
    assert len(rows) == 3
    assert all(not row[5].startswith("=") for row in rows[1:]), "cells must not run as spreadsheet formulas"


def test_only_admins_read_the_log(world: World) -> None:
    org = world.org()
    editor = world.member(org, Role.EDITOR)
    stranger = world.member(world.org("other", OrgKind.PARTNER))
    assert_problem(editor.client.get(f"/api/v1/orgs/{org.id}/audit"), 403, "permission-denied")
    assert_problem(stranger.client.get(f"/api/v1/orgs/{org.id}/audit"), 404, "not-found")


def test_the_database_refuses_to_change_entries(world: World) -> None:
    p = partnership(world)
    uploaded(p.publisher, p.course["id"], "more.txt", b"more")
    for statement in ("UPDATE audit_entries SET action = 'forged'", "DELETE FROM audit_entries"):
        with pytest.raises(DBAPIError), unit_of_work(world.services.write_sessions) as db:
            db.execute(text(statement))


def test_platform_admins_see_every_organisation_read_only_and_audited(world: World) -> None:
    p = partnership(world)
    staff_org = world.org("staff", OrgKind.OPERATOR)
    staff = world.member(staff_org, Role.OWNER)
    with unit_of_work(world.services.write_sessions) as db:
        from studyshelf.partners.models import User

        user = db.get(User, staff.user_id)
        assert user is not None
        user.is_platform_admin = True
    assert staff.client.get(f"/api/v1/files/{p.notes['id']}/content").content == b"lecture notes"
    assert staff.client.get(f"/api/v1/folders/{p.course['id']}/children").status_code == 200
    refused = staff.client.delete(f"/api/v1/files/{p.notes['id']}", headers=staff.headers())
    assert_problem(refused, 403, "permission-denied")
    views = p.publisher.client.get(
        f"/api/v1/orgs/{p.operator.id}/audit", params={"action": "platform_admin.view"}
    ).json()
    assert views
    assert all(e["actor_email"] == staff.email and e["via_platform_admin"] for e in views)
    assert {e["target_id"] for e in views} >= {p.notes["id"], p.course["id"]}
