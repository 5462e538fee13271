"""Fixtures for analytics tests."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from studyshelf.analytics.ingest.drain import drain_all
from studyshelf.partners.models import Organization, OrgKind, Role
from studyshelf.services import Services
from tests.conftest import Member, World
from tests.links.support import create_link, link_path
from tests.sharing.support import Partnership, grant, partnership

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


def drain(services: Services) -> int:
    return drain_all(services.events, services.warehouse, consumer="test")


@dataclass
class Usage:
    """A publisher whose course folder is shared with two partners, each with a link to the same file."""

    p: Partnership
    other: Organization
    other_teacher: Member
    partner_link: str  # /v/… of the first partner
    other_link: str  # /v/… of the second partner
    own_link: str  # /v/… of the publisher itself


@pytest.fixture
def usage(world: World) -> Usage:
    p = partnership(world)
    other = world.org("college", OrgKind.PARTNER)
    other_teacher = world.member(other, Role.EDITOR)
    for org in (p.partner, other):
        assert grant(p.publisher, p.course["id"], org.id).status_code == 201
    partner_link = link_path(create_link(p.teacher, p.notes["id"], org_id=str(p.partner.id)))
    other_link = link_path(create_link(other_teacher, p.notes["id"], org_id=str(other.id)))
    own_link = link_path(create_link(p.publisher, p.notes["id"]))
    return Usage(p, other, other_teacher, partner_link, other_link, own_link)
