"""Erasing one partner's analytics data on request (the right to erasure; the organisation is the controller).

What goes: its raw events in the warehouse (those it sees in its figures: its content's usage, its own usage of
others' content), its rollups and audience cells in the application database, and the course titles its
launches taught. The other rollups that counted those events (the operator's, the platform's) are rebuilt for
every day the events fell on: the days are first marked not rolled, in the transaction that records the audit
entry, so from then on every figure over them reads the raw events (already without the partner) until the
day is rolled again, here at once or by the daily job should this request stop half-way.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from studyshelf.analytics import course_names
from studyshelf.analytics.reports.models import AudienceRollup, DailyRollup, MonthlyRollup, RolledDay
from studyshelf.analytics.reports.rollup import roll_day, time_zones, zone
from studyshelf.core.db import affected_rows
from studyshelf.core.errors import Invalid, Unavailable
from studyshelf.partners import audit
from studyshelf.partners import service as partners
from studyshelf.partners.models import Organization, OrgKind
from studyshelf.partners.permissions import require_operator_admin
from studyshelf.partners.principal import Principal
from studyshelf.services import Services
from studyshelf.warehouse import Warehouse, WarehouseError

ACTION: Final = "analytics.erase"
WHAT: Final = "erase an organisation's analytics data"


@dataclass(frozen=True)
class Erasure:
    org_id: uuid.UUID
    org_name: str
    event_days: int  # UTC days that held its events
    rollup_rows: int  # its own rollup and audience rows deleted
    course_titles: int
    stale_days: list[tuple[str, date]]  # (time zone, day) rollups to rebuild without its events (rebuild())


def erasable(db: Session, *, principal: Principal, org_id: uuid.UUID) -> Organization:
    """The partner whose data an operator admin may erase (403 for anyone else, 404 for an unknown one)."""
    require_operator_admin(principal, what=WHAT)
    org = partners.get_organization(db, org_id)
    if org.kind is OrgKind.OPERATOR:
        raise Invalid("Only a partner organisation's analytics data can be erased, not the operator's.")
    return org


def erase(db: Session, warehouse: Warehouse, *, principal: Principal, org_id: uuid.UUID, confirm: str) -> Erasure:
    """Erase the partner's analytics data once `confirm` repeats its slug, audited; the caller commits, then
    calls rebuild() for the days whose other rollups counted the partner (until then they read raw events)."""
    org = erasable(db, principal=principal, org_id=org_id)
    if confirm.strip() != org.slug:
        raise Invalid.for_field("confirm", f"Type the organisation's slug ({org.slug}) to confirm the erasure.")
    try:
        days = warehouse.erase_org(str(org_id))
    except WarehouseError as exc:
        raise Unavailable("The analytics warehouse cannot be reached; nothing was erased. Try again shortly.") from exc
    stale = _local_days(db, days)
    rows = _forget_rollups(db, scope=str(org_id), stale=stale)
    titles = course_names.forget(db, org_id=org_id)
    audit.record(
        db,
        principal=principal,
        org_id=org_id,
        action=ACTION,
        target_type="organization",
        target_id=org_id,
        target_label=org.name,
        after={"event_days": len(days), "rollup_rows": rows, "course_titles": titles, "stale_days": len(stale)},
    )
    db.flush()
    return Erasure(org_id, org.name, len(days), rows, titles, stale)


def rebuild(services: Services, stale: list[tuple[str, date]], *, now: datetime) -> None:
    """Roll the erased partner's days again (after the erasure's commit; the daily job would, should this stop)."""
    for tz, day in stale:
        roll_day(services, tz, day, now=now)


def _local_days(db: Session, utc_days: list[date]) -> list[tuple[str, date]]:
    """The rolled (zone, day) pairs that overlap the UTC days (a UTC day meets one or two days of a zone)."""
    pairs: set[tuple[str, date]] = set()
    for tz in time_zones(db):
        local = zone(tz)
        for day in utc_days:
            start = datetime.combine(day, time(), UTC)
            for instant in (start, start + timedelta(days=1) - timedelta(microseconds=1)):
                pairs.add((tz, instant.astimezone(local).date()))
    if not pairs:
        return []
    rolled = {(tz, day) for tz, day in db.execute(select(RolledDay.tz, RolledDay.day))}
    return sorted(pairs & rolled)


def _forget_rollups(db: Session, *, scope: str, stale: list[tuple[str, date]]) -> int:
    """Delete the scope's rollups everywhere and mark the stale days not rolled (readers fall back to raw)."""
    deleted = 0
    for table in (DailyRollup, MonthlyRollup, AudienceRollup):
        deleted += affected_rows(db.execute(delete(table).where(table.scope == scope)))
    for tz, day in stale:
        db.execute(delete(RolledDay).where(RolledDay.tz == tz, RolledDay.day == day))
    return deleted
