"""Helpers for sharing tests: an operator with content and a partner with members."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from studyshelf.partners.models import Organization, OrgKind, Role
from tests.conftest import Member, World
from tests.library.support import make_folder, uploaded


@dataclass
class Partnership:
    operator: Organization
    partner: Organization
    publisher: Member  # owner of the operator
    student: Member  # viewer of the partner
    teacher: Member  # editor of the partner
    course: dict[str, Any]  # a folder of the operator
    notes: dict[str, Any]  # a file in it


def partnership(world: World) -> Partnership:
    operator = world.org("publisher", OrgKind.OPERATOR)
    partner = world.org("university", OrgKind.PARTNER)
    publisher = world.member(operator, Role.OWNER)
    student = world.member(partner, Role.VIEWER)
    teacher = world.member(partner, Role.EDITOR)
    course = make_folder(publisher, publisher.root_folder_id, "Course")
    notes = uploaded(publisher, course["id"], "notes.txt", b"lecture notes")
    return Partnership(operator, partner, publisher, student, teacher, course, notes)


def grant(
    owner: Member, target_id: str, grantee: uuid.UUID, level: str = "view", *, target_type: str = "folder", **extra: Any
) -> httpx.Response:
    body = {"target_type": target_type, "target_id": target_id, "grantee_org_id": str(grantee), "level": level, **extra}
    response: httpx.Response = owner.client.post("/api/v1/grants", json=body, headers=owner.headers())
    return response
