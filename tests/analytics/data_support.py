"""A publisher and two partners with events on either warehouse (DuckDB with SQLite, PostgreSQL with PostgreSQL)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from studyshelf.events import Event
from studyshelf.partners.models import Organization, OrgKind, Role
from studyshelf.settings import Settings
from tests.analytics.support import event
from tests.conftest import Member, World, make_settings
from tests.contracts.test_warehouse import pg_warehouse_url

BOTH_WAREHOUSES = ["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=BOTH_WAREHOUSES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """The app database to go with the warehouse: SQLite beside DuckDB, PostgreSQL beside PostgreSQL."""
    if request.param == "duckdb":
        path = tmp_path / "studyshelf.sqlite3"
        shutil.copyfile(sqlite_template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Iterator[Settings]:
    if db_url.startswith("sqlite"):
        yield make_settings(tmp_path, db_url)
        return
    for url in pg_warehouse_url():
        yield make_settings(tmp_path, db_url, warehouse_url=url)


@dataclass
class Orgs:
    operator: Organization
    partner: Organization
    other: Organization
    publisher: Member  # owner of the operator: an operator admin
    teacher: Member  # editor of the partner
    partner_admin: Member
    stranger: Member  # editor of the other partner


def orgs(world: World) -> Orgs:
    operator = world.org("publisher", OrgKind.OPERATOR)
    partner = world.org("university", OrgKind.PARTNER)
    other = world.org("college", OrgKind.PARTNER)
    return Orgs(
        operator,
        partner,
        other,
        world.member(operator, Role.OWNER),
        world.member(partner, Role.EDITOR),
        world.member(partner, Role.ADMIN),
        world.member(other, Role.EDITOR),
    )


def noon(day: date) -> datetime:
    return datetime.combine(day, time(12), UTC)


def usage(o: Orgs, day: date, *, partner_views: int, other_views: int, own_views: int) -> list[Event]:
    """Views of the operator's content on `day`: by the partner, by the other partner, by the operator itself."""
    operator, partner, other = str(o.operator.id), str(o.partner.id), str(o.other.id)
    at = noon(day)
    return [
        *(event(ts=at, owner_org=operator, partner_org=partner, viewer=f"p{i}") for i in range(partner_views)),
        *(event(ts=at, owner_org=operator, partner_org=other, viewer=f"o{i}") for i in range(other_views)),
        *(event(ts=at, owner_org=operator, partner_org=operator, viewer=f"s{i}") for i in range(own_views)),
    ]


def ago(today: date, days: int) -> date:
    return today - timedelta(days=days)


def new_uuid() -> str:
    return str(uuid.uuid4())
