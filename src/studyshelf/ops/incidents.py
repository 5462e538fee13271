"""Incidents: an alarm that fires opens one (or joins the open one of its rule and scope), with a timeline, an
owner and a deadline to mitigate it (14 h by default, per severity in the settings). Reminders go out at 50 %
and 90 % of the time, the escalation contacts hear when the deadline passes, and the breach is recorded.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from studyshelf.core.errors import Conflict, Invalid, NotFound, PermissionDenied
from studyshelf.notify.models import OutboxMessage
from studyshelf.notify.service import MAX_ATTEMPTS
from studyshelf.ops import alarm_notices
from studyshelf.ops.alarm_metrics import METRICS
from studyshelf.ops.alarms import ALARM, Transition
from studyshelf.ops.models import AlarmRule, Incident, IncidentEvent, IncidentNotice
from studyshelf.partners.models import Membership, OrgKind
from studyshelf.partners.permissions import Permission, acting_org_ids, allows, operates_alarms
from studyshelf.partners.principal import Principal
from studyshelf.services import Services
from studyshelf.settings import Settings

REMINDERS = (0.5, 0.9)  # shares of the time to the deadline


def deadline_for(settings: Settings, severity: str) -> timedelta:
    hours = settings.incident_deadline_hours_by_severity.get(severity, settings.incident_deadline_hours)
    return timedelta(hours=hours)


def _event(
    db: Session, incident: Incident, kind: str, at: datetime, text: str = "", actor: uuid.UUID | None = None
) -> None:
    db.add(IncidentEvent(incident_id=incident.id, at=at, kind=kind, text=text[:2000], actor_id=actor))


def _describe(transition: Transition) -> str:
    rule = transition.rule
    spec = METRICS[rule.metric]
    value = "no data" if transition.value is None else f"{transition.value:.4g} {spec.unit}"
    condition = f"{rule.comparison} {rule.threshold:g} {spec.unit}, {rule.datapoints_to_alarm} of {rule.datapoints} min"
    return f"{spec.label} is {value} ({condition})"


def _title(rule: AlarmRule, scope_key: str) -> str:
    return f"{rule.name}" + (f" — {rule.scope} {scope_key}" if scope_key else "")


def record_transition(db: Session, services: Services, transition: Transition) -> Incident | None:
    """Open or join the incident of a firing alarm, or note on it that the alarm cleared."""
    state = transition.state
    current = db.scalar(
        select(Incident).where(
            Incident.rule_id == state.rule_id, Incident.scope_key == state.scope_key, Incident.resolved_at.is_(None)
        )
    )
    detail = _describe(transition)
    if transition.to != ALARM:
        if current is not None:
            _event(db, current, "cleared", transition.at, detail)
            alarm_notices.send(
                db,
                services,
                current,
                purpose="cleared",
                detail=detail,
            )
        return current
    if current is not None:
        _event(db, current, "fired", transition.at, f"fired again: {detail}")
        return current
    rule = transition.rule
    incident = Incident(
        rule_id=rule.id,
        scope_key=state.scope_key,
        org_id=state.org_id,
        title=_title(rule, state.scope_key)[:300],
        severity=rule.severity,
        opened_at=transition.at,
        deadline_at=transition.at + deadline_for(services.settings, rule.severity),
    )
    db.add(incident)
    db.flush()
    _event(db, incident, "fired", transition.at, detail)
    alarm_notices.send(
        db,
        services,
        incident,
        purpose="fired",
        detail=detail,
    )
    return incident


def check_deadlines(db: Session, services: Services, *, now: datetime) -> int:
    """Send the reminders due and escalate the incidents past their deadline; return how many notices."""
    sent = 0
    open_ones = db.scalars(select(Incident).where(Incident.resolved_at.is_(None), Incident.mitigated_at.is_(None)))
    for incident in open_ones:
        span = incident.deadline_at - incident.opened_at
        while (
            incident.reminders_sent < len(REMINDERS)
            and now >= incident.opened_at + span * REMINDERS[incident.reminders_sent]
        ):
            share = REMINDERS[incident.reminders_sent]
            left = incident.deadline_at - now
            detail = f"{share:.0%} of the time to mitigate has passed; {_hours(left)} left."
            _event(db, incident, "reminder", now, detail)
            sent += alarm_notices.send(
                db,
                services,
                incident,
                purpose="reminder",
                detail=detail,
            )
            incident.reminders_sent += 1
        if incident.breached_at is None and now >= incident.deadline_at:
            incident.breached_at = now
            passed = "The deadline passed before the incident was mitigated."
            _event(db, incident, "breached", now, passed)
            escalated = alarm_notices.send(db, services, incident, purpose="escalation", detail=passed, escalation=True)
            _event(db, incident, "escalated", now, f"escalated to {escalated} contact(s)")
            sent += escalated
    db.flush()
    return sent


def _hours(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.1f} h"


def sync_notices(db: Session, *, now: datetime) -> int:
    """Write each new sending attempt of the incidents' notices on their timelines; return how many lines."""
    written = 0
    pending = db.execute(
        select(IncidentNotice, OutboxMessage)
        .outerjoin(OutboxMessage, OutboxMessage.id == IncidentNotice.outbox_id)
        .where(IncidentNotice.settled.is_(False))
    ).all()
    for notice, message in pending:
        incident = db.get(Incident, notice.incident_id)
        assert incident is not None
        if message is None:
            notice.settled = True
            continue
        in_flight = message.lease_until is not None and message.lease_until > now and message.sent_at is None
        if message.attempts <= notice.attempts_seen or in_flight:  # nothing new, or a drain is sending it now
            continue
        notice.attempts_seen = message.attempts
        what = f"{notice.purpose} {notice.channel} to {notice.target}"
        if message.sent_at is not None:
            _event(db, incident, "notified", message.sent_at, what)
            notice.settled = True
        else:
            _event(
                db, incident, "notify_failed", now, f"{what}: attempt {message.attempts} failed: {message.last_error}"
            )
            if message.attempts >= MAX_ATTEMPTS:
                _event(db, incident, "notify_gave_up", now, f"{what}: no more attempts")
                notice.settled = True
        written += 1
    db.flush()
    return written


# --- who may see and act -------------------------------------------------------------------------------------


def visible_orgs(principal: Principal) -> list[uuid.UUID] | None:
    """None: every incident (operator admins); else the organisations whose incidents the principal sees."""
    if operates_alarms(principal):
        return None
    return [org for org in acting_org_ids(principal) if allows(principal, Permission.ANALYTICS_READ, org)]


def list_incidents(db: Session, *, principal: Principal, open_only: bool = False) -> list[Incident]:
    query = select(Incident)
    orgs = visible_orgs(principal)
    if orgs is not None:
        query = query.where(Incident.org_id.in_(orgs))
    if open_only:
        query = query.where(Incident.resolved_at.is_(None))
    return list(db.scalars(query.order_by(Incident.resolved_at.is_not(None), Incident.deadline_at)))


def get_incident(db: Session, *, principal: Principal, incident_id: uuid.UUID) -> Incident:
    """The incident, or NotFound when it is not one the principal may see (another organisation's)."""
    incident = db.get(Incident, incident_id)
    orgs = visible_orgs(principal)
    if incident is None or (orgs is not None and incident.org_id not in orgs):
        raise NotFound("No such incident.")
    return incident


def timeline(db: Session, incident: Incident) -> list[IncidentEvent]:
    return list(
        db.scalars(
            select(IncidentEvent)
            .where(IncidentEvent.incident_id == incident.id)
            .order_by(IncidentEvent.at, IncidentEvent.id)
        )
    )


def _require_act(principal: Principal, incident: Incident) -> None:
    if operates_alarms(principal):
        return
    if incident.org_id is None or not allows(principal, Permission.LIBRARY_WRITE, incident.org_id):
        raise PermissionDenied("Your role does not allow acting on this incident.")


def act(
    db: Session,
    *,
    principal: Principal,
    incident: Incident,
    action: str,
    now: datetime,
    text: str = "",
    owner_id: uuid.UUID | None = None,
) -> Incident:
    """Acknowledge, add a note, mark mitigated or resolved, or assign the owner; each goes on the timeline."""
    _require_act(principal, incident)
    actor = principal.user.id
    text = text.strip()
    if action != "note" and incident.resolved_at is not None:
        raise Conflict("The incident is resolved.")
    if action == "acknowledge":
        if incident.acknowledged_at is None:
            incident.acknowledged_at = now
            incident.owner_id = incident.owner_id or actor
        _event(db, incident, "acknowledged", now, text, actor)
    elif action == "note":
        if not text:
            raise Invalid("A note needs text.", field="text")
        _event(db, incident, "note", now, text, actor)
    elif action == "mitigate":
        incident.acknowledged_at = incident.acknowledged_at or now
        incident.mitigated_at = incident.mitigated_at or now
        _event(db, incident, "mitigated", now, text, actor)
    elif action == "resolve":
        incident.acknowledged_at = incident.acknowledged_at or now
        incident.mitigated_at = incident.mitigated_at or now
        incident.resolved_at = now
        _event(db, incident, "resolved", now, text, actor)
    elif action == "assign":
        if owner_id is None or not _may_own(db, incident, owner_id):
            raise Invalid(
                "The owner must be a member of the incident's organisation or the operator.", field="owner_id"
            )
        incident.owner_id = owner_id
        _event(db, incident, "assigned", now, text, actor)
    else:
        raise Invalid(f"Unknown action {action!r}.", field="action")
    db.flush()
    return incident


def _may_own(db: Session, incident: Incident, user_id: uuid.UUID) -> bool:
    memberships = db.scalars(select(Membership).where(Membership.user_id == user_id))
    return any(m.org_id == incident.org_id or m.organization.kind is OrgKind.OPERATOR for m in memberships)


@dataclass(frozen=True)
class MonthFigures:
    month: str  # YYYY-MM
    incidents: int
    mean_time_to_acknowledge: timedelta | None
    mean_time_to_mitigate: timedelta | None
    mitigated_within_deadline: float | None  # share of the month's incidents


def monthly_figures(db: Session, *, since: datetime) -> list[MonthFigures]:
    """Per month of opening: time to acknowledge, time to mitigate, and the share mitigated within the deadline."""
    months: dict[str, list[Incident]] = {}
    for incident in db.scalars(select(Incident).where(Incident.opened_at >= since).order_by(Incident.opened_at)):
        months.setdefault(f"{incident.opened_at:%Y-%m}", []).append(incident)
    figures = []
    for month, incidents in sorted(months.items(), reverse=True):
        acked = [i.acknowledged_at - i.opened_at for i in incidents if i.acknowledged_at]
        mitigated = [i.mitigated_at - i.opened_at for i in incidents if i.mitigated_at]
        in_time = sum(1 for i in incidents if i.mitigated_at and i.mitigated_at <= i.deadline_at)
        figures.append(
            MonthFigures(
                month, len(incidents), _mean(acked), _mean(mitigated), in_time / len(incidents) if incidents else None
            )
        )
    return figures


def _mean(values: list[timedelta]) -> timedelta | None:
    return sum(values, timedelta()) / len(values) if values else None
