"""Daily reports: content from known rollups (JSON and CSV), readiness, partner scoping, settings."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from studyshelf.analytics.reports.daily import build_report, today_in
from studyshelf.analytics.reports.schemas import REPORT_FORMAT
from studyshelf.core.db import unit_of_work
from studyshelf.partners.models import AuditEntry, Role
from studyshelf.web.errors import PROBLEM_BASE
from tests.analytics.reports_support import DAY, Shelf, mark_rolled, rollup, shelf
from tests.conftest import Member, World

REPORTS = "/api/v1/analytics/reports"


@pytest.fixture
def s(world: World) -> Shelf:
    return shelf(world)


def _report(member: Member, org_id: object, day: date = DAY, fmt: str = "json") -> Any:
    return member.client.get(f"{REPORTS}/{day.isoformat()}", params={"org_id": str(org_id), "format": fmt})


def test_json_report_has_totals_and_every_table(s: Shelf) -> None:
    response = _report(s.p.publisher, s.p.operator.id)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert (
        response.headers["content-disposition"] == 'attachment; filename="studyshelf-report-publisher-2026-11-20.json"'
    )
    report = response.json()
    assert report["format"] == REPORT_FORMAT
    assert report["org"]["slug"] == "publisher"
    assert (report["day"], report["time_zone"]) == ("2026-11-20", "UTC")
    assert report["start"].startswith("2026-11-20T00:00:00")
    assert report["end"].startswith("2026-11-21T00:00:00")
    totals = report["totals"]
    assert (totals["views"], totals["viewers"], totals["fails"], totals["fail_rate"]) == (10, 4, 2, 0.25)
    assert (totals["downloads"], totals["bytes"]) == (1, 1000)
    files = report["files"]
    assert [(f["name"], f["path"], f["views"], f["fail_rate"]) for f in files] == [
        ("notes.txt", "Course", 7, round(1 / 6, 4)),
        ("=cmd.pdf", "Course / Week 1", 3, 0.5),
    ]
    assert files[0]["key"] == s.p.notes["id"]
    assert files[0]["owner"] == "Publisher"
    assert not files[0]["deleted"]
    assert [(f["name"], f["path"]) for f in report["folders"]] == [("Course", ""), ("Week 1", "Course")]
    assert [(c["key"], c["name"], c["views"]) for c in report["countries"]] == [("GB", "GB", 8), ("", "Unknown", 2)]
    assert [b["name"] for b in report["browsers"]] == ["Chrome"]
    assert [c["name"] for c in report["categories"]] == ["document"]
    assert [e["key"] for e in report["extensions"]] == ["txt", "pdf"]


def test_csv_report_is_one_formula_safe_table(s: Shelf) -> None:
    response = _report(s.p.publisher, s.p.operator.id, fmt="csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert (
        response.headers["content-disposition"] == 'attachment; filename="studyshelf-report-publisher-2026-11-20.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["section"] for r in rows] == [
        "total",
        "file",
        "file",
        "folder",
        "folder",
        "country",
        "country",
        "browser",
        "category",
        "extension",
        "extension",
    ]
    total = rows[0]
    assert (total["day"], total["name"], total["views"], total["fails"], total["fail_rate"]) == (
        "2026-11-20",
        "Publisher",
        "10",
        "2",
        "0.2500",
    )
    evil = rows[2]
    assert evil["name"] == "'=cmd.pdf"  # a spreadsheet shows it, never runs it
    assert (evil["path"], evil["fail_rate"], evil["downloads"]) == ("Course / Week 1", "0.5000", "1")
    no_loads = [r for r in rows if r["load_ok"] == "0" and r["fails"] == "0"]
    assert all(r["fail_rate"] == "" for r in no_loads)


def test_a_day_not_rolled_up_is_a_not_ready_problem(s: Shelf) -> None:
    response = _report(s.p.publisher, s.p.operator.id, day=DAY + timedelta(days=1))
    assert response.status_code == 404
    problem = response.json()
    assert problem["type"] == PROBLEM_BASE + "report-not-ready"
    assert "not ready" in problem["detail"]
    assert (problem["day"], problem["time_zone"]) == ("2026-11-21", "UTC")


def test_a_rolled_day_without_usage_is_an_empty_report(world: World, owner: Member) -> None:
    mark_rolled(world.services)
    report = _report(owner, owner.org_id).json()
    assert report["totals"] == {
        "views": 0,
        "viewers": 0,
        "load_ok": 0,
        "fails": 0,
        "fail_rate": None,
        "downloads": 0,
        "blocked": 0,
        "bytes": 0,
    }
    assert report["files"] == report["countries"] == report["extensions"] == []
    lines = _report(owner, owner.org_id, fmt="csv").text.splitlines()
    assert len(lines) == 2
    assert lines[1].startswith("2026-11-20,total,")


def test_an_organisation_gets_only_its_own_report(s: Shelf) -> None:
    partner = _report(s.p.student, s.p.partner.id).json()
    assert partner["totals"]["views"] == 5
    assert [(f["name"], f["path"], f["owner"]) for f in partner["files"]] == [("notes.txt", "Course", "Publisher")]
    assert partner["countries"] == []  # the publisher's rows are not the partner's
    assert _report(s.p.student, s.p.operator.id).status_code == 404  # not even its existence
    assert s.p.student.client.get(REPORTS, params={"org_id": str(s.p.operator.id)}).status_code == 404
    assert _report(s.p.publisher, s.p.partner.id).status_code == 404


def test_a_shared_item_is_named_from_the_shared_folder_down_and_only_while_shared(world: World, s: Shelf) -> None:
    week, notes = s.week["id"], s.p.notes["id"]
    rollup(
        world.services,
        scope=s.p.partner.id,
        day=DAY - timedelta(days=1),
        rows={("file", s.evil["id"]): {"views": 1}, ("folder", week): {"views": 1}, ("file", notes): {"views": 2}},
    )
    mark_rolled(world.services, day=DAY - timedelta(days=1))
    report = _report(s.p.student, s.p.partner.id, day=DAY - timedelta(days=1)).json()
    assert [(f["name"], f["path"]) for f in report["files"]] == [
        ("notes.txt", "Course"),
        ("=cmd.pdf", "Course / Week 1"),
    ]
    assert [(f["name"], f["path"]) for f in report["folders"]] == [("Week 1", "Course")]
    query = {"target_type": "folder", "target_id": s.p.course["id"]}
    grants = s.p.publisher.client.get("/api/v1/grants", params=query).json()
    revoked = s.p.publisher.client.delete(f"/api/v1/grants/{grants[0]['id']}", headers=s.p.publisher.headers())
    assert revoked.status_code == 204
    report = _report(s.p.student, s.p.partner.id, day=DAY - timedelta(days=1)).json()
    assert {f["name"] for f in report["files"]} == {"(file no longer shared with you)"}
    assert {f["path"] for f in report["files"]} == {""}


def test_deleted_items_keep_their_names(world: World, s: Shelf) -> None:
    deleted = s.p.publisher.client.delete(f"/api/v1/files/{s.evil['id']}", headers=s.p.publisher.headers())
    assert deleted.status_code in {200, 204}, deleted.text
    with unit_of_work(world.services.read_sessions) as db:
        report = build_report(db, org_id=s.p.operator.id, day=DAY, now=world.services.clock.now())
    evil = next(f for f in report.files if f.key == s.evil["id"])
    assert (evil.name, evil.deleted) == ("=cmd.pdf", True)


def test_days_are_listed_with_status_and_links(world: World, s: Shelf) -> None:
    today = today_in("UTC", world.services.clock.now())
    mark_rolled(world.services, day=today - timedelta(days=1))
    mark_rolled(world.services, day=today - timedelta(days=3))
    params = {"org_id": str(s.p.operator.id), "from": (today - timedelta(days=3)).isoformat()}
    listing = s.p.publisher.client.get(REPORTS, params=params).json()
    assert listing["time_zone"] == "UTC"
    assert listing["to"] == today.isoformat()
    assert [(d["status"], d["views"]) for d in listing["days"]] == [
        ("open", None),
        ("ready", 0),
        ("pending", None),  # a gap between rolled days: the job has yet to roll it
        ("ready", 0),
    ]
    ready = listing["days"][1]
    assert ready["links"]["csv"] == (
        f"{REPORTS}/{(today - timedelta(days=1)).isoformat()}?org_id={s.p.operator.id}&format=csv"
    )
    assert s.p.publisher.client.get(ready["links"]["json"]).status_code == 200
    old = s.p.publisher.client.get(
        REPORTS, params={"org_id": str(s.p.operator.id), "from": "2026-11-19", "to": "2026-11-20"}
    )
    assert [(d["day"], d["status"], d["views"], d["fails"]) for d in old.json()["days"]] == [
        ("2026-11-20", "ready", 10, 2),
        ("2026-11-19", "none", None, None),  # before the first rolled day (the oldest usage): nothing to report
    ]


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2026-11-20", "to": "2026-11-01"},
        {"from": "2020-01-01", "to": "2026-01-01"},
        {"from": "not-a-day"},
    ],
)
def test_bad_ranges_are_422(owner: Member, params: dict[str, str]) -> None:
    response = owner.client.get(REPORTS, params={"org_id": str(owner.org_id), **params})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_bad_report_requests_are_4xx(owner: Member) -> None:
    assert owner.client.get(f"{REPORTS}/2026-13-01", params={"org_id": str(owner.org_id)}).status_code == 422
    assert owner.client.get(f"{REPORTS}/2026-11-20", params={"org_id": "nope"}).status_code == 422
    assert _report(owner, owner.org_id, fmt="xlsx").status_code == 422
    first = owner.client.get(REPORTS, params={"org_id": str(owner.org_id), "to": "0001-01-01"})
    assert [d["day"] for d in first.json()["days"]] == ["0001-01-01"]  # the calendar's edge is no error


def test_the_report_follows_the_organisations_time_zone(world: World, s: Shelf) -> None:
    settings = f"/api/v1/orgs/{s.p.operator.id}/report-settings"
    body = {"time_zone": "Europe/Berlin", "emails": [], "webhook_url": ""}
    assert s.p.publisher.client.put(settings, json=body, headers=s.p.publisher.headers()).status_code == 200
    assert _report(s.p.publisher, s.p.operator.id).status_code == 404  # only the UTC day is rolled up
    rollup(world.services, scope=s.p.operator.id, tz="Europe/Berlin", rows={("", ""): {"views": 3}})
    mark_rolled(world.services, tz="Europe/Berlin")
    report = _report(s.p.publisher, s.p.operator.id).json()
    assert (report["time_zone"], report["totals"]["views"]) == ("Europe/Berlin", 3)
    assert report["start"] == "2026-11-20T00:00:00+01:00"
    assert report["end"] == "2026-11-21T00:00:00+01:00"


# --- Settings --------------------------------------------------------------------------------------------------


def _settings_url(member: Member) -> str:
    return f"/api/v1/orgs/{member.org_id}/report-settings"


def test_settings_default_to_utc_and_nowhere(owner: Member) -> None:
    got = owner.client.get(_settings_url(owner)).json()
    assert (got["time_zone"], got["emails"], got["webhook_url"], got["can_edit"]) == ("UTC", [], "", True)
    assert len(got["webhook_secret"]) == 64


def test_admins_change_settings_and_it_is_audited(world: World, owner: Member) -> None:
    body = {
        "time_zone": "America/New_York",
        "emails": ["Reports@Example.edu", " dean@example.edu ", "reports@example.edu"],
        "webhook_url": "https://hooks.example.edu/reports",
    }
    response = owner.client.put(_settings_url(owner), json=body, headers=owner.headers())
    assert response.status_code == 200, response.text
    got = response.json()
    assert got["emails"] == ["Reports@example.edu", "dean@example.edu"]
    assert (got["time_zone"], got["webhook_url"]) == ("America/New_York", "https://hooks.example.edu/reports")
    assert owner.client.get(_settings_url(owner)).json()["emails"] == got["emails"]
    with unit_of_work(world.services.read_sessions) as db:
        entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "report_settings.update")).one()
    assert entry.org_id == owner.org_id
    assert "America/New_York" in entry.after
    assert "UTC" in entry.before


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"time_zone": "Mars/Olympus"}, "not a time zone"),
        ({"time_zone": "../../etc/passwd"}, "not a time zone"),
        ({"time_zone": "UTC", "emails": ["not-an-address"]}, "not an e-mail address"),
        ({"time_zone": "UTC", "emails": ["a@localhost"]}, "not an e-mail address"),
        ({"time_zone": "UTC", "webhook_url": "http://hooks.example.edu/x"}, "https://"),
        ({"time_zone": "UTC", "webhook_url": "https://user:pw@hooks.example.edu/x"}, "no user name"),
        ({"time_zone": "UTC", "webhook_url": "https://hooks.example.edu:99999/x"}, "not a valid URL"),
        ({"time_zone": "UTC", "webhook_url": "https:///x"}, "needs a host"),
    ],
)
def test_bad_settings_are_refused_with_the_reason(owner: Member, body: dict[str, Any], fragment: str) -> None:
    response = owner.client.put(_settings_url(owner), json=body, headers=owner.headers())
    assert response.status_code == 422, response.text
    assert fragment in response.json()["detail"]
    assert owner.client.get(_settings_url(owner)).json()["time_zone"] == "UTC"


def test_malformed_settings_bodies_are_422(owner: Member) -> None:
    for body in ({}, {"time_zone": "UTC", "emails": "a@example.edu"}, {"time_zone": "UTC", "extra": 1}):
        assert owner.client.put(_settings_url(owner), json=body, headers=owner.headers()).status_code == 422


def test_only_admins_change_settings_and_see_the_secret(world: World, owner: Member) -> None:
    org = world.org("college")
    admin = world.member(org, Role.ADMIN)
    viewer = world.member(org, Role.VIEWER)
    got = viewer.client.get(_settings_url(viewer)).json()
    assert (got["can_edit"], got["webhook_secret"]) == (False, None)
    body = {"time_zone": "Europe/Paris"}
    assert viewer.client.put(_settings_url(viewer), json=body, headers=viewer.headers()).status_code == 403
    assert admin.client.put(_settings_url(admin), json=body, headers=admin.headers()).status_code == 200
    assert owner.client.put(_settings_url(viewer), json=body, headers=owner.headers()).status_code == 404
    assert owner.client.get(_settings_url(viewer)).status_code == 404
    no_csrf = admin.client.put(_settings_url(admin), json=body)
    assert no_csrf.status_code == 403
    assert no_csrf.json()["type"] == PROBLEM_BASE + "csrf-failed"
