"""Admission (the visit decision) and the leak radar (spread, through a fake GeoLookup), called directly."""

from __future__ import annotations

from sqlalchemy import select

from studyshelf.core.db import unit_of_work
from studyshelf.delivery import admission, radar
from studyshelf.delivery.models import Link, Refusal, Sighting
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


def _link(owner: Member, **extra: object) -> str:
    file = uploaded(owner, owner.root_folder_id, "notes.txt", b"notes")
    created = create_link(owner, file["id"], **extra)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def _visit(world: World, link_id: str, facts: admission.VisitFacts, geo: FakeGeo) -> admission.Admission:
    with unit_of_work(world.services.write_sessions) as db:
        return admission.admit_visit(db, geo=geo, link_id=link_id, facts=facts, now=world.services.clock.now())


def test_an_embedded_visit_is_admitted_and_its_sighting_kept_with_the_lookups_country(
    world: World, owner: Member
) -> None:
    link_id = _link(owner)
    geo = FakeGeo({"198.51.100.7": "NZ"})
    admitted = _visit(world, link_id, _facts("198.51.100.7"), geo)
    assert admitted.refusal is None
    assert not admitted.preview_only
    with unit_of_work(world.services.read_sessions) as db:
        sighting = db.scalars(select(Sighting).where(Sighting.link_id == link_id)).one()
        assert sighting.country == "NZ"
        assert sighting.network == radar.network_of("198.51.100.7", salt="s")
        assert db.get(Link, link_id).view_count == 1  # type: ignore[union-attr]  # created just above


def test_a_top_level_visit_to_an_embed_link_is_refused_and_recorded(world: World, owner: Member) -> None:
    link_id = _link(owner)
    geo = FakeGeo({"203.0.113.9": "FR"})
    facts = _facts("203.0.113.9", sec_fetch_dest="document", sec_fetch_site="none", referer="")
    refused = _visit(world, link_id, facts, geo)
    assert refused.refusal == "top-level"
    with unit_of_work(world.services.read_sessions) as db:
        refusal = db.scalars(select(Refusal).where(Refusal.link_id == link_id)).one()
        assert (refusal.reason, refusal.country) == ("top-level", "FR")
        assert db.get(Link, link_id).view_count == 0  # type: ignore[union-attr]  # created just above


def test_a_previewer_sees_a_card_and_counts_nothing(world: World, owner: Member) -> None:
    link_id = _link(owner)
    geo = FakeGeo({})
    preview = _visit(world, link_id, _facts("198.51.100.7", user_agent="Slackbot-LinkExpanding 1.0"), geo)
    assert preview.preview_only
    assert preview.refusal is None
    assert geo.asked == []  # no sighting, no refusal: nobody was looked up
    with unit_of_work(world.services.read_sessions) as db:
        assert db.get(Link, link_id).view_count == 0  # type: ignore[union-attr]  # created just above


def test_the_view_limit_refuses_the_visit_after_the_last_view(world: World, owner: Member) -> None:
    link_id = _link(owner, max_views=1)
    geo = FakeGeo({})
    assert _visit(world, link_id, _facts("198.51.100.7"), geo).refusal is None
    assert _visit(world, link_id, _facts("198.51.100.7"), geo).refusal == "over-limit"


def test_the_radar_suspends_a_link_seen_from_too_many_countries(world: World, owner: Member) -> None:
    policy = {"max_countries_per_hour": 2, "max_networks_per_hour": 100}
    changed = owner.client.patch(f"/api/v1/orgs/{owner.org_id}/link-policy", json=policy, headers=owner.headers())
    assert changed.status_code == 200, changed.text
    link_id = _link(owner)
    geo = FakeGeo({"198.51.1.7": "DE", "198.51.2.7": "FR", "198.51.3.7": "JP"})
    outcomes = [_visit(world, link_id, _facts(ip), geo) for ip in ("198.51.1.7", "198.51.2.7", "198.51.3.7")]
    assert [o.refusal for o in outcomes] == [None, None, "suspended"]
    assert outcomes[-1].suspended_now is not None
    assert "3 countries" in outcomes[-1].suspended_now
    with unit_of_work(world.services.read_sessions) as db:
        link = db.get(Link, link_id)
        assert link is not None
        assert link.suspended_reason == outcomes[-1].suspended_now
        assert admission.link_state(db, link, now=world.services.clock.now()) == "suspended"


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
