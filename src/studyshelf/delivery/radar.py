"""The leak radar: where a link is used, hour by hour, and its suspension when it spreads past the policy.

A visitor is kept only as a salted hash of its network and a country (through `GeoLookup`); the notices
of a suspension join the caller's transaction in the outbox and leave after its commit.
"""

from __future__ import annotations

import hashlib
import ipaddress
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from studyshelf.core.db import affected_rows
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


def record_sighting(db: Session, *, geo: GeoLookup, link: Link, visitor: Visitor, now: datetime) -> str | None:
    """Note where a link was used this hour; suspend it when its spread passes the policy. Returns why, if so.

    Only a network not yet seen this hour can raise the counts, so only then are they checked.
    """
    hour = _hour_of(now)
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    added = affected_rows(
        db.execute(
            insert(Sighting)
            .values(
                id=uuid.uuid4(),
                link_id=link.id,
                hour=hour,
                network=network_of(visitor.ip, salt=visitor.salt),
                country=geo.country(visitor.ip),
            )
            .on_conflict_do_nothing()
        )
    )
    return check_spread(db, link=link, now=now) if added else None


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
            db, to=creator.email, subject="A StudyShelf link was paused", text=text, event="link.suspended"
        )
    url = links.get_policy(db, org_id=link.org_id).notify_webhook_url
    if url:
        payload = {"event": "link.suspended", "link_id": link.id, "label": link.label, "reason": reason}
        notify.enqueue_webhook(db, url=url, payload=dict(payload), event="link.suspended")
