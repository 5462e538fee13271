"""Courses appear by the titles their launches told, not by the LMS's ids; learners stay pseudonymous."""

from __future__ import annotations

from sqlalchemy import select

from studyshelf.analytics.ingest.drain import drain_all
from studyshelf.analytics.models import CourseName
from studyshelf.core.db import unit_of_work
from studyshelf.services import Services
from tests.lti.conftest import Campus, launch, login, register, target_of
from tests.lti.platform import CLAIM, Platform, Simulator

HTMX = {"HX-Request": "true"}


def _launch(campus: Campus, platform: Platform, context: dict[str, object], link: dict[str, str]) -> None:
    started = login(campus.lms, platform)
    claims = platform.claims(
        nonce=started.nonce, extra={CLAIM + "custom": target_of(campus.notes), CLAIM + "context": context}
    )
    claims[CLAIM + "resource_link"] = link
    assert launch(campus.lms, platform, platform.sign(claims), started.state).status_code == 200


def _names(services: Services) -> dict[tuple[str, str], tuple[str, str, str]]:
    with unit_of_work(services.read_sessions) as db:
        rows = db.scalars(select(CourseName)).all()
        return {(r.kind, r.key): (r.title, r.label, r.platform) for r in rows}


def test_a_launch_teaches_the_course_and_activity_titles(
    campus: Campus, simulator: Simulator, services: Services
) -> None:
    platform = simulator.platform("moodle")
    register(campus, platform)
    context = {"id": "c-42", "label": "BIO101", "title": "Biology 101"}
    _launch(campus, platform, context, {"id": "rl-1", "title": "Week 1 notes"})
    assert _names(services) == {
        ("course", "c-42"): ("Biology 101", "BIO101", "Test moodle"),
        ("resource_link", "rl-1"): ("Week 1 notes", "", "Test moodle"),
    }
    # A renamed course is renamed here; a launch without titles forgets nothing.
    _launch(campus, platform, {**context, "title": "Biology 101 (2027)"}, {"id": "rl-1"})
    _launch(campus, platform, {"id": "c-42"}, {"id": "rl-1"})
    names = _names(services)
    assert names[("course", "c-42")][0] == "Biology 101 (2027)"
    assert names[("resource_link", "rl-1")][0] == "Week 1 notes"
    assert all(str(campus.university.id) not in key for _kind, key in names)


def test_the_dashboard_names_courses_for_the_partner_and_the_publisher(
    campus: Campus, simulator: Simulator, services: Services
) -> None:
    platform = simulator.platform("moodle")
    register(campus, platform)
    _launch(campus, platform, {"id": "c-42", "label": "BIO101", "title": "Biology <101>"}, {"id": "rl-1"})
    drain_all(services.events, services.warehouse, consumer="test")
    for member in (campus.admin, campus.publisher):
        board = member.client.get("/analytics", headers=HTMX)
        assert board.status_code == 200, board.text
        assert "Biology &lt;101&gt; (BIO101) · Test moodle" in board.text  # escaped like any other name
        assert ">c-42<" not in board.text
    chip = campus.admin.client.get("/analytics", params={"course": "c-42"})
    assert "Biology &lt;101&gt; (BIO101)" in chip.text
    unknown = campus.admin.client.get("/analytics", params={"course": "c-unknown"})
    assert unknown.status_code == 200
    assert "c-unknown" in unknown.text  # a course no launch named shows its id


def test_the_summary_api_names_courses_organisations_and_files(
    campus: Campus, simulator: Simulator, services: Services
) -> None:
    platform = simulator.platform("moodle")
    register(campus, platform)
    _launch(campus, platform, {"id": "c-42", "label": "BIO101", "title": "Biology 101"}, {"id": "rl-1"})
    drain_all(services.events, services.warehouse, consumer="test")
    url = "/api/v1/analytics/summary"
    by_course = campus.publisher.client.get(url, params={"org_id": str(campus.publisher.org_id), "breakdown": "course"})
    assert by_course.status_code == 200, by_course.text
    assert [(r["key"], r["name"]) for r in by_course.json()["rows"]] == [("c-42", "Biology 101 (BIO101) · Test moodle")]
    assert by_course.json()["top_files"][0]["name"] == "notes.txt"
    by_partner = campus.admin.client.get(url, params={"org_id": str(campus.university.id), "breakdown": "partner"})
    assert [r["name"] for r in by_partner.json()["rows"]] == ["University (you)"]
    by_country = campus.admin.client.get(url, params={"org_id": str(campus.university.id), "breakdown": "country"})
    assert all(r["name"] is None for r in by_country.json()["rows"])
