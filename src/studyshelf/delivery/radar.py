"""The leak radar: where a link is used, hour by hour, and its suspension when it spreads past the policy.

A visitor is kept only as a salted hash of its network and a country (through `GeoLookup`); the notices
of a suspension join the caller's transaction in the outbox and leave after its commit.

Sightings decide nothing for the visit that makes them, so a viewer request only notes them
(`SightingRecorder.note`: a set lookup, and a list append for a network new to this process this hour); one
thread per process writes the noted sightings every `radar_flush_seconds` (1 s) in one transaction and checks
the spread of each link that gained one. So the radar lags by at most that interval plus one write: a link
that spreads is suspended within about a second of the visit that pushed it over, the visits of that second
are still admitted, and a crash of the process forgets at most that second's sightings. Each sighting keeps
the hour of its visit, so one written after the hour has turned still counts for the hour it was seen in.
"""

from __future__ import annotations

import hashlib
import ipaddress
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from studyshelf.core.batches import BackgroundBatches
from studyshelf.core.db import unit_of_work
from studyshelf.core.geo import GeoLookup
from studyshelf.delivery import links
from studyshelf.delivery.models import Link, Refusal, Sighting
from studyshelf.notify import service as notify
from studyshelf.partners import audit
from studyshelf.partners.models import User
from studyshelf.services import Services


def network_of(ip: str, *, salt: str) -> str:
    """A pseudonymous network id: the /24 (IPv4) or /48 (IPv6) prefix, hashed with a secret salt."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return "unknown"
    prefix = 24 if address.version == 4 else 48
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    return hashlib.sha256(f"{salt}|{network}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Visitor:
    """Where a request to a link comes from; kept only as a salted network hash and a country."""

    ip: str
    salt: str
    origin: str = ""


def record_refusal(db: Session, *, geo: GeoLookup, link_id: str | None, reason: str, visitor: Visitor) -> None:
    """Keep a `blocked` event (expired, revoked, origin, top-level, over-limit, bad-signature, grant-revoked …)."""
    db.add(
        Refusal(
            link_id=link_id if link_id and links.is_link_id(link_id) else None,
            reason=reason,
            origin=visitor.origin[:300],
            network=network_of(visitor.ip, salt=visitor.salt),
            country=geo.country(visitor.ip),
        )
    )
    db.flush()


@dataclass(frozen=True)
class Sighted:
    """A link used from a network at a time; `ip` only to look up the country when it is written."""

    link_id: str
    at: datetime
    network: str
    ip: str


def record_sightings(db: Session, *, geo: GeoLookup, sightings: Sequence[Sighted]) -> dict[str, str]:
    """Keep sightings (one a link, hour and network); check the spread of every link that gained one.

    Returns the links suspended now, with why."""
    if not sightings:
        return {}
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    rows = [
        {
            "id": uuid.uuid4(),
            "link_id": s.link_id,
            "hour": _hour_of(s.at),
            "network": s.network,
            "country": geo.country(s.ip),
        }
        for s in sightings
    ]
    added = db.execute(insert(Sighting).values(rows).on_conflict_do_nothing().returning(Sighting.link_id)).scalars()
    gained = set(added)
    suspended: dict[str, str] = {}
    for link_id in sorted(gained):
        link = db.get(Link, link_id)
        if link is None:
            continue
        latest = max(s.at for s in sightings if s.link_id == link_id)
        reason = check_spread(db, link=link, now=latest)
        if reason is not None:
            suspended[link_id] = reason
    return suspended


def record_sighting(db: Session, *, geo: GeoLookup, link: Link, visitor: Visitor, now: datetime) -> str | None:
    """Note where a link was used this hour, now; suspend it when its spread passes the policy. Returns why."""
    sighted = Sighted(link.id, now, network_of(visitor.ip, salt=visitor.salt), visitor.ip)
    return record_sightings(db, geo=geo, sightings=[sighted]).get(link.id)


class SightingRecorder:
    """The sightings of one process: noted by viewer requests, written with their spread checks in batches."""

    def __init__(self, services: Services, *, interval: float) -> None:
        self.services = services
        self._batches: BackgroundBatches[Sighted] = BackgroundBatches(
            self._write, interval=interval, name="studyshelf-radar"
        )
        self._lock = threading.Lock()
        self._hour: datetime | None = None
        self._noted: set[tuple[str, str]] = set()  # (link, network) noted this hour: written or queued

    def note(self, *, link_id: str, visitor: Visitor, now: datetime) -> None:
        """Note one admitted visit; only a network new to this process in this hour is queued."""
        network = network_of(visitor.ip, salt=visitor.salt)
        hour = _hour_of(now)
        with self._lock:
            if hour != self._hour or len(self._noted) > 200_000:
                self._hour, self._noted = hour, set()
            if (link_id, network) in self._noted:
                return
            self._noted.add((link_id, network))
        self._batches.add(Sighted(link_id, now, network, visitor.ip))

    def start(self) -> None:
        self._batches.start()

    def flush(self) -> int:
        """Write what is noted now (the thread does this every interval); return how many were written."""
        return self._batches.flush()

    def close(self) -> None:
        self._batches.close()

    def _write(self, sightings: list[Sighted]) -> None:
        services = self.services
        with unit_of_work(services.write_sessions) as db:
            suspended = record_sightings(db, geo=services.geo, sightings=sightings)
            for link_id, reason in suspended.items():
                link = db.get(Link, link_id)
                assert link is not None
                notify_suspension(services, db, link=link, reason=reason)
        if suspended:
            notify.drain(services)  # committed: the notices leave now, outside the transaction


def _hour_of(now: datetime) -> datetime:
    return now.replace(minute=0, second=0, microsecond=0)


def check_spread(db: Session, *, link: Link, now: datetime) -> str | None:
    """Suspend the link when this hour's networks, countries or refusals exceed the organisation's thresholds."""
    hour = _hour_of(now)
    policy = links.get_policy(db, org_id=link.org_id)
    seen = select(func.count(func.distinct(Sighting.network)), func.count(func.distinct(Sighting.country))).where(
        Sighting.link_id == link.id, Sighting.hour == hour
    )
    networks, countries = db.execute(seen).one()
    refusals = (
        db.scalar(
            select(func.count())
            .select_from(Refusal)
            .where(Refusal.link_id == link.id, Refusal.at >= hour, Refusal.reason.in_(("origin", "top-level")))
        )
        or 0
    )
    reason = None
    if networks > policy.max_networks_per_hour:
        reason = f"used from {networks} networks within an hour (limit {policy.max_networks_per_hour})"
    elif countries > policy.max_countries_per_hour:
        reason = f"used from {countries} countries within an hour (limit {policy.max_countries_per_hour})"
    elif refusals > policy.max_refusals_per_hour:
        reason = f"{refusals} refused attempts from unknown sites within an hour (limit {policy.max_refusals_per_hour})"
    if reason is not None and link.suspended_at is None:
        link.suspended_at = now
        link.suspended_reason = reason
        db.flush()
        audit.record(
            db,
            principal=None,
            org_id=link.org_id,
            action="link.suspend",
            target_type="link",
            target_id=link.id,
            target_label=link.label,
            after={"reason": reason},
        )
        return reason
    return None


def notify_suspension(services: Services, db: Session, *, link: Link, reason: str) -> None:
    """Queue the notices of a suspension: an e-mail to the link's creator, a webhook call for the organisation.

    They join the caller's transaction and leave after its commit (notify.drain), never inside it."""
    creator = db.get(User, link.created_by) if link.created_by else None
    text = (
        f"StudyShelf paused the link {link.label or link.id} because it was {reason}.\n"
        "This usually means the link was shared outside the course. Review it in StudyShelf and re-enable it "
        "if the use is legitimate.\n"
    )
    if creator is not None and services.mailer.enabled:
        notify.enqueue_email(
            db,
            to=creator.email,
            subject="A StudyShelf link was paused",
            text=text,
            event="link.suspended",
            now=services.clock.now(),
        )
    url = links.get_policy(db, org_id=link.org_id).notify_webhook_url
    if url:
        payload = {"event": "link.suspended", "link_id": link.id, "label": link.label, "reason": reason}
        notify.enqueue_webhook(db, url=url, payload=dict(payload), event="link.suspended", now=services.clock.now())
