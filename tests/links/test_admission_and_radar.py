"""Admission (the visit decision, a read), the view limit's count, and the leak radar (spread, through a fake
GeoLookup and a MovableClock), called directly."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import orjson
from sqlalchemy import select

from studyshelf.core.clock import MovableClock
from studyshelf.core.db import unit_of_work
from studyshelf.delivery import admission, radar, view_counts
from studyshelf.delivery.models import CountedView, Link, Refusal, Sighting
from tests.conftest import Member, World
from tests.library.support import uploaded
from tests.links.support import LMS, create_link


class FakeGeo:
    """Countries by address, as a test decides them."""

    def __init__(self, countries: dict[str, str]) -> None:
        self.countries = countries
        self.asked: list[str] = []

    def country(self, ip: str) -> str:
        self.asked.append(ip)
        return self.countries.get(ip, "")


def _facts(ip: str, **headers: str) -> admission.VisitFacts:
    return admission.VisitFacts(
        visitor=radar.Visitor(ip=ip, salt="s", origin=headers.get("referer", "")),
        own_origin="http://testserver",
        sec_fetch_dest=headers.get("sec_fetch_dest", "iframe"),
        sec_fetch_site=headers.get("sec_fetch_site", "cross-site"),
        referer=headers.get("referer", f"{LMS}/course/view.php?id=7"),
        user_agent=headers.get("user_agent", "Mozilla/5.0"),
    )


def _link(owner: Member, name: str = "notes.txt", **extra: object) -> str:
    file = uploaded(owner, owner.root_folder_id, name, b"notes")
    created = create_link(owner, file["id"], **extra)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def _decide(world: World, link_id: str, facts: admission.VisitFacts) -> admission.Admission:
    with unit_of_work(world.services.read_sessions) as db:
        return admission.admit_visit(db, link_id=link_id, facts=facts, now=world.services.clock.now())


def _recorder(world: World, geo: FakeGeo, clock: MovableClock) -> radar.SightingRecorder:
    return radar.SightingRecorder(replace(world.services, geo=geo, clock=clock), interval=3600)


def _view_count(world: World, link_id: str) -> int:
    with unit_of_work(world.services.read_sessions) as db:
        link = db.get(Link, link_id)
        assert link is not None
        return link.view_count


def test_an_embedded_visit_is_admitted_by_a_read_alone(world: World, owner: Member) -> None:
    link_id = _link(owner)
    admitted = _decide(world, link_id, _facts("198.51.100.7"))
    assert admitted.refusal is None
    assert not admitted.preview_only
    with unit_of_work(world.services.read_sessions) as db:
        assert db.scalars(select(Sighting)).all() == []
    assert _view_count(world, link_id) == 0  # an unlimited link's views are counted from the event buffer


def test_noted_sightings_are_written_in_one_batch_once_a_network_and_hour(world: World, owner: Member) -> None:
    link_id = _link(owner)
    geo = FakeGeo({"198.51.100.7": "NZ", "198.51.100.8": "NZ", "203.0.113.9": "FR"})
    recorder = _recorder(world, geo, MovableClock())
    for ip in ("198.51.100.7", "198.51.100.8", "203.0.113.9", "198.51.100.7"):  # two of one /24, one repeated
        recorder.note(link_id=link_id, visitor=radar.Visitor(ip=ip, salt="s"), now=world.services.clock.now())
    with unit_of_work(world.services.read_sessions) as db:
        assert db.scalars(select(Sighting)).all() == []  # nothing written on the visits' path
    assert recorder.flush() == 2
    assert geo.asked == ["198.51.100.7", "203.0.113.9"]  # looked up when written, once a network
    with unit_of_work(world.services.read_sessions) as db:
        rows = db.scalars(select(Sighting).where(Sighting.link_id == link_id)).all()
        assert sorted((s.network, s.country) for s in rows) == sorted(
            [(radar.network_of("198.51.100.7", salt="s"), "NZ"), (radar.network_of("203.0.113.9", salt="s"), "FR")]
        )


def test_a_top_level_visit_to_an_embed_link_is_refused_and_recorded(world: World, owner: Member) -> None:
    link_id = _link(owner)
    geo = FakeGeo({"203.0.113.9": "FR"})
    facts = _facts("203.0.113.9", sec_fetch_dest="document", sec_fetch_site="none", referer="")
    refused = _decide(world, link_id, facts)
    assert refused.refusal == "top-level"
    with unit_of_work(world.services.write_sessions) as db:
        now = world.services.clock.now()
        assert (
            admission.record_refusal(db, geo=geo, link=refused.link, reason="top-level", visitor=facts.visitor, now=now)
            is None
        )
    with unit_of_work(world.services.read_sessions) as db:
        refusal = db.scalars(select(Refusal).where(Refusal.link_id == link_id)).one()
        assert (refusal.reason, refusal.country) == ("top-level", "FR")
    assert _view_count(world, link_id) == 0


def test_a_previewer_sees_a_card_and_counts_nothing(world: World, owner: Member) -> None:
    link_id = _link(owner)
    preview = _decide(world, link_id, _facts("198.51.100.7", user_agent="Slackbot-LinkExpanding 1.0"))
    assert preview.preview_only
    assert preview.refusal is None


def test_the_view_limit_counts_with_the_event_line_and_refuses_after_the_last_view(world: World, owner: Member) -> None:
    link_id = _link(owner, max_views=1)
    assert _decide(world, link_id, _facts("198.51.100.7")).refusal is None
    at = world.services.clock.now()
    with unit_of_work(world.services.write_sessions) as db:
        link = db.get(Link, link_id)
        assert link is not None
        assert view_counts.count_limited_view(db, link=link, event_id="e-1", line=b'{"id":"e-1"}', at=at)
        assert not view_counts.count_limited_view(db, link=link, event_id="e-2", line=b'{"id":"e-2"}', at=at)
    assert _view_count(world, link_id) == 1
    with unit_of_work(world.services.read_sessions) as db:
        assert [(r.event_id, r.pending) for r in db.scalars(select(CountedView))] == [("e-1", '{"id":"e-1"}')]
    assert _decide(world, link_id, _facts("198.51.100.7")).refusal == "over-limit"


def test_the_drain_counts_each_view_event_once_and_clears_a_limited_views_line(world: World, owner: Member) -> None:
    unlimited, limited = _link(owner), _link(owner, "limited.txt", max_views=5)
    at = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    with unit_of_work(world.services.write_sessions) as db:
        link = db.get(Link, limited)
        assert link is not None
        assert view_counts.count_limited_view(db, link=link, event_id="lim-1", line=b"{}", at=at)

    def line(event_id: str, link_id: str, type_: str = "view") -> bytes:
        return orjson.dumps({"id": event_id, "type": type_, "link_id": link_id, "ts": at.isoformat()})

    batch = b"\n".join(
        [line("u-1", unlimited), line("u-2", unlimited), line("d-1", unlimited, "download"), line("lim-1", limited)]
    )
    for _ in range(2):  # a redelivered batch adds nothing
        with unit_of_work(world.services.write_sessions) as db:
            view_counts.add_views(db, view_counts.link_views(batch))
    assert (_view_count(world, unlimited), _view_count(world, limited)) == (2, 1)
    with unit_of_work(world.services.read_sessions) as db:
        assert db.scalar(select(CountedView.pending).where(CountedView.event_id == "lim-1")) is None


def test_the_radar_suspends_a_link_seen_from_too_many_countries_within_its_lag(world: World, owner: Member) -> None:
    policy = {"max_countries_per_hour": 2, "max_networks_per_hour": 100}
    changed = owner.client.patch(f"/api/v1/orgs/{owner.org_id}/link-policy", json=policy, headers=owner.headers())
    assert changed.status_code == 200, changed.text
    link_id = _link(owner)
    geo = FakeGeo({"198.51.1.7": "DE", "198.51.2.7": "FR", "198.51.3.7": "JP"})
    clock = MovableClock(datetime(2026, 12, 7, 9, 59, 58, tzinfo=UTC))
    recorder = _recorder(world, geo, clock)
    for ip in ("198.51.1.7", "198.51.2.7", "198.51.3.7"):
        recorder.note(link_id=link_id, visitor=radar.Visitor(ip=ip, salt="s"), now=clock.now())
        clock.advance(0.5)
    clock.advance(2)  # the batch is written after the hour turned: the sightings keep the hour they were seen in
    assert recorder.flush() == 3
    with unit_of_work(world.services.read_sessions) as db:
        link = db.get(Link, link_id)
        assert link is not None
        assert "3 countries" in link.suspended_reason
        assert admission.link_state(db, link, now=clock.now()) == "suspended"
    assert _decide(world, link_id, _facts("198.51.1.7")).refusal == "suspended"


def test_one_network_seen_twice_in_an_hour_is_one_sighting(world: World, owner: Member) -> None:
    link_id = _link(owner)
    geo = FakeGeo({"198.51.100.7": "DE", "198.51.100.8": "DE"})
    with unit_of_work(world.services.write_sessions) as db:
        link = db.get(Link, link_id)
        assert link is not None
        for ip in ("198.51.100.7", "198.51.100.8"):  # the same /24
            assert (
                radar.record_sighting(
                    db, geo=geo, link=link, visitor=radar.Visitor(ip=ip, salt="s"), now=world.services.clock.now()
                )
                is None
            )
    with unit_of_work(world.services.read_sessions) as db:
        assert len(db.scalars(select(Sighting).where(Sighting.link_id == link_id)).all()) == 1


def test_network_ids_are_salted_prefixes() -> None:
    assert radar.network_of("198.51.100.7", salt="a") == radar.network_of("198.51.100.200", salt="a")
    assert radar.network_of("198.51.100.7", salt="a") != radar.network_of("198.51.100.7", salt="b")
    assert radar.network_of("2001:db8:1:2::1", salt="a") == radar.network_of("2001:db8:1:ffff::9", salt="a")
    assert radar.network_of("not an address", salt="a") == "unknown"
