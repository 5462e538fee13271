"""A remembered visit (delivery/admission.py `visits`) admits only while nothing that could take the link's
access away has changed: revoking, suspending or editing the link, deleting its file or folder, revoking its
grant — on any instance — ends it at the next visit, however long it would still be kept. A link with a view
limit is never remembered, so its count decides every visit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from studyshelf.core.clock import utcnow
from studyshelf.core.db import unit_of_work
from studyshelf.delivery import admission
from studyshelf.delivery.models import Link, Refusal
from studyshelf.delivery.radar import Visitor
from studyshelf.delivery.view_counts import count_limited_view
from studyshelf.library.access_epoch import EpochCache, read_epoch
from studyshelf.partners.models import Grant
from tests.conftest import Member, World
from tests.library.support import uploaded
from tests.links.support import EMBEDDED, LMS, create_link, link_path, settle, visitor
from tests.sharing.support import grant, partnership


@pytest.fixture(autouse=True)
def remembered(monkeypatch: pytest.MonkeyPatch) -> EpochCache[str, admission.RememberedVisit]:
    """Visits remembered for an hour: whatever ends one in these tests is a change, never the time kept."""
    visits: EpochCache[str, admission.RememberedVisit] = EpochCache(3600.0, admission.VISITS_MAX)
    monkeypatch.setattr(admission, "visits", visits)
    return visits


def _epoch(world: World) -> int:
    with world.services.engine.connect() as connection:
        return read_epoch(connection)


def _refusals(world: World) -> list[str]:
    with unit_of_work(world.services.read_sessions) as db:
        return list(db.scalars(select(Refusal.reason).order_by(Refusal.at)))


def _embedded_facts() -> admission.VisitFacts:
    return admission.VisitFacts(
        visitor=Visitor(ip="203.0.113.7", salt="salt", origin=LMS),
        own_origin="http://testserver",
        sec_fetch_dest="iframe",
        sec_fetch_site="cross-site",
        referer=f"{LMS}/course/view.php?id=7",
    )


def _shown(member: Member, path: str) -> int:
    return visitor(member).get(path, headers=EMBEDDED).status_code


def test_a_usable_file_link_is_remembered_and_a_revocation_ends_it_at_once(
    world: World, owner: Member, remembered: EpochCache[str, admission.RememberedVisit]
) -> None:
    file = uploaded(owner, owner.root_folder_id, "notes.txt", b"notes")
    created = create_link(owner, file["id"]).json()
    path = f"/v/{created['id']}"
    assert _shown(owner, path) == 200
    assert remembered.holds(created["id"])
    revoked = owner.client.post(f"/api/v1/links/{created['id']}/revoke", headers=owner.headers())
    assert revoked.status_code == 200, revoked.text
    assert _shown(owner, path) == 403
    assert _refusals(world) == ["revoked"]


def test_an_edit_of_the_link_applies_to_the_next_visit(world: World, owner: Member) -> None:
    file = uploaded(owner, owner.root_folder_id, "notes.txt", b"notes")
    created = create_link(owner, file["id"]).json()
    path = f"/v/{created['id']}"
    assert _shown(owner, path) == 200
    edited = owner.client.patch(
        f"/api/v1/links/{created['id']}",
        json={"allowed_origins": ["https://canvas.other.edu"]},
        headers=owner.headers(),
    )
    assert edited.status_code == 200, edited.text
    assert _shown(owner, path) == 403  # embedded in Moodle, now allowed only in another platform
    assert len(_refusals(world)) == 1


def test_deleting_the_file_ends_its_remembered_visits(world: World, owner: Member) -> None:
    file = uploaded(owner, owner.root_folder_id, "notes.txt", b"notes")
    path = link_path(create_link(owner, file["id"]))
    assert _shown(owner, path) == 200
    assert owner.client.delete(f"/api/v1/files/{file['id']}", headers=owner.headers()).status_code == 204
    assert _shown(owner, path) == 403
    assert _refusals(world) == ["deleted"]


def test_revoking_the_grant_ends_a_partners_remembered_visits(world: World) -> None:
    p = partnership(world)
    grant_id = grant(p.publisher, p.course["id"], p.partner.id).json()["id"]
    created = create_link(p.teacher, p.notes["id"], org_id=str(p.partner.id))
    assert created.status_code == 201, created.text
    assert _shown(p.student, link_path(created)) == 200
    assert _shown(p.student, link_path(created)) == 200
    p.publisher.client.delete(f"/api/v1/grants/{grant_id}", headers=p.publisher.headers())
    assert _shown(p.student, link_path(created)) == 403
    assert _refusals(world) == ["grant-revoked"]


def test_a_remembered_visit_ends_when_the_grant_runs_out(world: World) -> None:
    p = partnership(world)
    ends = utcnow() + timedelta(days=2)
    given = grant(p.publisher, p.course["id"], p.partner.id, expires_at=ends.isoformat())
    assert given.status_code == 201, given.text
    created = create_link(p.teacher, p.notes["id"], org_id=str(p.partner.id))
    assert _shown(p.student, link_path(created)) == 200
    link_id = created.json()["id"]
    facts = _embedded_facts()
    epoch = _epoch(world)
    before = admission.remembered_visit(link_id, facts=facts, now=ends - timedelta(seconds=1), epoch=epoch)
    assert before is not None
    assert before.refusal is None
    assert admission.remembered_visit(link_id, facts=facts, now=ends, epoch=epoch) is None  # read afresh


def test_an_epoch_raised_elsewhere_ends_every_remembered_visit(world: World, owner: Member) -> None:
    file = uploaded(owner, owner.root_folder_id, "notes.txt", b"notes")
    link_id = create_link(owner, file["id"]).json()["id"]
    assert _shown(owner, f"/v/{link_id}") == 200
    facts = _embedded_facts()
    epoch = _epoch(world)
    assert admission.remembered_visit(link_id, facts=facts, now=utcnow(), epoch=epoch) is not None
    # Another instance suspends an unrelated grant's target: the epoch moves, every remembered read goes.
    with unit_of_work(world.services.write_sessions) as db:
        db.execute(update(Link).where(Link.id == "nothing-at-all").values(label="x"))
    assert _epoch(world) == epoch + 1
    assert admission.remembered_visit(link_id, facts=facts, now=utcnow(), epoch=epoch + 1) is None


def test_a_limited_link_is_never_remembered_and_admits_exactly_its_limit(
    world: World, owner: Member, remembered: EpochCache[str, admission.RememberedVisit]
) -> None:
    file = uploaded(owner, owner.root_folder_id, "notes.txt", b"notes")
    created = create_link(owner, file["id"], max_views=3).json()
    path = f"/v/{created['id']}"
    assert [_shown(owner, path) for _ in range(5)] == [200, 200, 200, 403, 403]
    assert not remembered.holds(created["id"])
    settle(world)
    assert owner.client.get(f"/api/v1/links/{created['id']}").json()["view_count"] == 3


def test_counting_a_limited_view_takes_no_access_away(world: World, owner: Member) -> None:
    file = uploaded(owner, owner.root_folder_id, "notes.txt", b"notes")
    link_id = create_link(owner, file["id"], max_views=3).json()["id"]
    before = _epoch(world)
    with unit_of_work(world.services.write_sessions) as db:
        link = db.scalars(select(Link).where(Link.id == link_id)).one()
        assert count_limited_view(db, link=link, event_id="evt-1", line=None, at=utcnow())
    assert _epoch(world) == before  # the other links' remembered visits stay


def test_a_grant_without_end_is_remembered_without_end(world: World) -> None:
    p = partnership(world)
    grant(p.publisher, p.course["id"], p.partner.id)
    created = create_link(p.teacher, p.notes["id"], org_id=str(p.partner.id))
    assert _shown(p.student, link_path(created)) == 200
    hit = admission.visits.get(created.json()["id"], epoch=_epoch(world))
    assert hit is not None
    assert hit.access_until is None
    with unit_of_work(world.services.read_sessions) as db:
        assert db.scalars(select(Grant)).one().expires_at is None
