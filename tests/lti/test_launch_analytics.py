"""A view through an LTI launch is an analytics event with its course and resource link."""

from __future__ import annotations

import pytest

from studyshelf.analytics.ingest.drain import drain_all
from studyshelf.analytics.warehouse import SummaryQuery
from studyshelf.core.clock import utcnow
from studyshelf.services import Services
from tests.lti.conftest import Campus, launch, login, register, target_of
from tests.lti.platform import CLAIM, Simulator


@pytest.mark.parametrize("family", ["moodle", "canvas"])
def test_a_launch_view_carries_course_and_resource_link(
    family: str, campus: Campus, simulator: Simulator, services: Services
) -> None:
    platform = simulator.platform(family)
    register(campus, platform)
    started = login(campus.lms, platform)
    claims = platform.claims(nonce=started.nonce, extra={CLAIM + "custom": target_of(campus.notes)})
    assert launch(campus.lms, platform, platform.sign(claims), started.state).status_code == 200
    drain_all(services.events, services.warehouse, consumer="test")
    now = utcnow()
    window = {"start": now.replace(year=now.year - 1), "end": now.replace(year=now.year + 1)}
    by_course = services.warehouse.summary(SummaryQuery(**window, breakdown="course")).breakdown
    assert [(key, m.views) for key, m in by_course] == [("c-42", 1)]
    university = str(campus.university.id)
    scoped = services.warehouse.summary(SummaryQuery(**window, scope_org=university, filters={"course": "c-42"}))
    assert scoped.totals.views == 1
