"""Erasing a partner's analytics data: raw events and rollups on both warehouses, audited, gone from every figure."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from studyshelf.analytics import course_names
from studyshelf.analytics.models import CourseName
from studyshelf.analytics.reports.models import AudienceRollup, DailyRollup, MonthlyRollup, RolledDay
from studyshelf.analytics.reports.rollup import catch_up
from studyshelf.core.db import unit_of_work
from studyshelf.partners.models import AuditEntry
from studyshelf.services import Services
from tests.analytics.data_support import Orgs, ago, db_url, new_uuid, noon, orgs, settings, usage  # noqa: F401 - this module's fixtures: both warehouses
from tests.conftest import Member, World

URL = "/api/v1/analytics/erasures"
SUMMARY = "/api/v1/analytics/summary"


@pytest.fixture
def o(world: World, services: Services) -> Orgs:
    """Three days of use, rolled up: the partner 3+2+1 views, the other partner 2+1+1, the operator 1+1+1."""
    found = orgs(world)
    today = services.clock.now().date()
    for days, (partner, other) in {1: (3, 2), 2: (2, 1), 4: (1, 1)}.items():
        services.warehouse.insert(usage(found, ago(today, days), partner_views=partner, other_views=other, own_views=1))
    with unit_of_work(services.write_sessions) as db:
        course_names.learn(
            db,
            org_id=found.partner.id,
            course="ctx-1",
            course_title="Biology 101",
            course_label="BIO101",
            resource_link="rl-1",
            link_title="Week 1 notes",
            platform="University Moodle",
            now=services.clock.now(),
        )
    catch_up(services)
    return found


def _views(member: Member, org_id: object, today: date, *, last: int = 1, **filters: str) -> tuple[int, str]:
    params = {"org_id": str(org_id), "from": ago(today, 6).isoformat(), "to": ago(today, last).isoformat(), **filters}
    response = member.client.get(SUMMARY, params=params)
    assert response.status_code == 200, response.text
    return int(response.json()["totals"]["views"]), str(response.json()["source"])


def _erase(member: Member, org_id: object, confirm: str) -> dict[str, object]:
    response = member.client.post(URL, json={"org_id": str(org_id), "confirm": confirm}, headers=member.headers())
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def _count(services: Services, table: type, **where: object) -> int:
    with unit_of_work(services.read_sessions) as db:
        query = select(func.count()).select_from(table).filter_by(**where)
        return int(db.scalar(query) or 0)


def test_erasure_removes_the_partner_from_every_figure(services: Services, o: Orgs) -> None:
    today = services.clock.now().date()
    assert _views(o.publisher, o.operator.id, today) == (6 + 4 + 3, "rollups")
    assert _views(o.teacher, o.partner.id, today) == (6, "rollups")
    assert _count(services, DailyRollup, scope=str(o.partner.id)) > 0

    report = f"/api/v1/analytics/reports/{ago(today, 1).isoformat()}"
    before = o.publisher.client.get(report, params={"org_id": str(o.operator.id)})
    assert before.json()["totals"]["views"] == 3 + 2 + 1

    body = _erase(o.publisher, o.partner.id, "university")
    assert body["event_days"] == 3
    assert body["rollup_rows"]
    assert body["course_titles"] == 2
    assert body["days_to_rebuild"] == 3

    assert _views(o.publisher, o.operator.id, today) == (4 + 3, "rollups")  # rebuilt without the partner
    assert _views(o.publisher, o.operator.id, today, partner=str(o.partner.id))[0] == 0
    assert _views(o.teacher, o.partner.id, today)[0] == 0
    assert _views(o.teacher, o.partner.id, today, last=0)[0] == 0  # raw events for today too
    assert _views(o.stranger, o.other.id, today) == (4, "rollups")  # the other partner keeps its figures
    assert o.publisher.client.get(report, params={"org_id": str(o.operator.id)}).json()["totals"]["views"] == 3
    assert o.partner_admin.client.get(report, params={"org_id": str(o.partner.id)}).json()["totals"]["views"] == 0
    for table in (DailyRollup, MonthlyRollup, AudienceRollup):
        assert _count(services, table, scope=str(o.partner.id)) == 0
    assert _count(services, CourseName, org_id=o.partner.id) == 0
    assert _count(services, RolledDay, tz="UTC") >= 3
    assert services.warehouse.org_events(str(o.partner.id), *_window(today), limit=10) == []

    with unit_of_work(services.read_sessions) as db:
        entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "analytics.erase")).one()
    assert entry.org_id == o.partner.id
    assert entry.actor_email == o.publisher.email
    assert entry.target_label == "University"


def _window(today: date) -> tuple[object, object]:
    return noon(ago(today, 30)), noon(today)


def test_only_operator_admins_may_erase(services: Services, o: Orgs) -> None:
    body = {"org_id": str(o.partner.id), "confirm": "university"}
    for member in (o.teacher, o.partner_admin, o.stranger):
        response = member.client.post(URL, json=body, headers=member.headers())
        assert response.status_code == 403
        assert response.headers["content-type"].startswith("application/problem+json")
    assert _views(o.teacher, o.partner.id, services.clock.now().date())[0] == 6  # nothing erased


def test_bad_requests_are_refused_and_erase_nothing(services: Services, o: Orgs) -> None:
    client, headers = o.publisher.client, o.publisher.headers()
    wrong = client.post(URL, json={"org_id": str(o.partner.id), "confirm": "college"}, headers=headers)
    assert wrong.status_code == 422
    assert "university" in wrong.json()["detail"]
    operator = client.post(URL, json={"org_id": str(o.operator.id), "confirm": "publisher"}, headers=headers)
    assert operator.status_code == 422
    unknown = client.post(URL, json={"org_id": new_uuid(), "confirm": "x"}, headers=headers)
    assert unknown.status_code == 404
    assert client.post(URL, json={"org_id": "nope", "confirm": "x"}, headers=headers).status_code == 422
    assert client.post(URL, json={"org_id": str(o.partner.id)}, headers=headers).status_code == 422
    assert _views(o.teacher, o.partner.id, services.clock.now().date())[0] == 6


def test_the_settings_page_confirms_then_erases(services: Services, o: Orgs) -> None:
    client = o.publisher.client
    page = client.get("/settings/analytics-data")
    assert page.status_code == 200
    assert "University (university)" in page.text
    assert 'href="/settings/analytics-data"' in page.text  # in the menu
    confirm = client.get("/settings/analytics-data", params={"org_id": str(o.partner.id)})
    assert "Type <code>university</code> to confirm" in confirm.text
    form = {"org_id": str(o.partner.id), "csrf_token": o.publisher.csrf}
    refused = client.post("/settings/analytics-data/erase", data={**form, "confirm": "nope"})
    assert refused.status_code == 422
    assert "to confirm the erasure" in refused.text
    done = client.post("/settings/analytics-data/erase", data={**form, "confirm": "university"})
    assert done.status_code == 200  # after the redirect
    assert "The analytics data of University was erased" in done.text
    assert _views(o.teacher, o.partner.id, services.clock.now().date())[0] == 0
    assert o.teacher.client.get("/settings/analytics-data").status_code == 403
    assert 'href="/settings/analytics-data"' not in o.teacher.client.get("/settings/tokens").text
