"""The audit log: who changed what, when, as one append-only table."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from studyshelf.core.csvsafe import csv_safe
from studyshelf.partners.models import AuditEntry
from studyshelf.partners.permissions import Permission, require, role_in
from studyshelf.partners.principal import Principal

CSV_COLUMNS = (
    "at",
    "actor_email",
    "action",
    "target_type",
    "target_id",
    "target_label",
    "before",
    "after",
    "request_id",
)


def _summary(values: dict[str, Any] | None) -> str:
    return "" if not values else json.dumps(values, default=str, ensure_ascii=False, sort_keys=True)[:4000]


def record(
    db: Session,
    *,
    principal: Principal | None,
    org_id: uuid.UUID | None,
    action: str,
    target_type: str = "",
    target_id: uuid.UUID | str = "",
    target_label: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry; `principal` None means the system (CLI, scheduler)."""
    via_platform_admin = bool(
        principal is not None
        and org_id is not None
        and principal.user.is_platform_admin
        and role_in(principal, org_id) is None
    )
    entry = AuditEntry(
        org_id=org_id,
        actor_user_id=principal.user.id if principal else None,
        actor_email=principal.user.email if principal else "system",
        via_platform_admin=via_platform_admin,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        target_label=target_label[:300],
        before=_summary(before),
        after=_summary(after),
        request_id=principal.request_id if principal else "",
    )
    db.add(entry)
    db.flush()
    return entry


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    target: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _query(org_id: uuid.UUID, flt: AuditFilter) -> Select[AuditEntry]:
    query = select(AuditEntry).where(AuditEntry.org_id == org_id)
    if flt.actor:
        query = query.where(AuditEntry.actor_email.ilike(f"%{flt.actor.strip()}%"))
    if flt.action:
        query = query.where(AuditEntry.action == flt.action)
    if flt.target:
        term = flt.target.strip()
        query = query.where((AuditEntry.target_id == term) | AuditEntry.target_label.ilike(f"%{term}%"))
    if flt.since:
        query = query.where(AuditEntry.at >= flt.since)
    if flt.until:
        query = query.where(AuditEntry.at < flt.until)
    return query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc())


def list_entries(
    db: Session, *, principal: Principal, org_id: uuid.UUID, flt: AuditFilter, limit: int = 100, offset: int = 0
) -> list[AuditEntry]:
    """Entries of an organisation, newest first, for its admins."""
    require(principal, Permission.AUDIT_READ, org_id, what="audit log")
    return list(db.scalars(_query(org_id, flt).limit(limit).offset(offset)))


def list_actions(db: Session, *, principal: Principal, org_id: uuid.UUID) -> list[str]:
    require(principal, Permission.AUDIT_READ, org_id, what="audit log")
    query = select(AuditEntry.action).where(AuditEntry.org_id == org_id).distinct().order_by(AuditEntry.action)
    return list(db.scalars(query))


def export_csv(db: Session, *, principal: Principal, org_id: uuid.UUID, flt: AuditFilter) -> Iterator[str]:
    """The filtered log as CSV lines, streamed in batches."""
    require(principal, Permission.AUDIT_READ, org_id, what="audit log")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield buffer.getvalue()
    for entry in db.scalars(_query(org_id, flt).execution_options(yield_per=500)):
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([csv_safe(str(getattr(entry, c) if c != "at" else entry.at.isoformat())) for c in CSV_COLUMNS])
        yield buffer.getvalue()
