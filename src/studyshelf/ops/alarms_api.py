"""The alarms and incidents API: rules (operator admins), states, contacts, incidents and their actions."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from studyshelf.ops import alarm_notices, alarms, incidents
from studyshelf.ops.models import Incident
from studyshelf.ops.schemas import (
    AlarmRuleRead,
    AlarmRuleUpdate,
    AlarmStateRead,
    ContactCreate,
    ContactRead,
    IncidentAction,
    IncidentEventRead,
    IncidentRead,
    MonthFiguresRead,
)
from studyshelf.partners.deps import CurrentPrincipal, DbSession, Now, ServicesDep
from studyshelf.partners.permissions import require_alarm_operator

router = APIRouter(prefix="/api/v1", tags=["alarms"])
FIGURES_MONTHS = 12


@router.get("/alarms/rules", response_model=list[AlarmRuleRead])
def list_rules(principal: CurrentPrincipal, db: DbSession) -> list[AlarmRuleRead]:
    """Every alarm rule, the defaults included (operator admins)."""
    require_alarm_operator(principal)
    return [AlarmRuleRead.model_validate(rule) for rule in alarms.list_rules(db)]


@router.patch("/alarms/rules/{rule_id}", response_model=AlarmRuleRead)
def update_rule(
    rule_id: uuid.UUID, body: AlarmRuleUpdate, principal: CurrentPrincipal, db: DbSession, now: Now
) -> AlarmRuleRead:
    """Change a rule's metric, scope, threshold, window, datapoints, severity or on/off (operator admins)."""
    require_alarm_operator(principal)
    rule = alarms.get_rule(db, rule_id)
    changes = {name: value for name, value in body.model_dump(exclude_unset=True).items() if value is not None}
    alarms.update_rule(db, rule, changes=changes, now=now)
    return AlarmRuleRead.model_validate(rule)


@router.get("/alarms", response_model=list[AlarmStateRead])
def list_states(principal: CurrentPrincipal, db: DbSession) -> list[AlarmStateRead]:
    """Alarm states: every one for operator admins, those of the caller's organisations for others."""
    org_ids = incidents.visible_orgs(principal)
    return [
        AlarmStateRead(
            rule_id=rule.id,
            rule_key=rule.key,
            name=rule.name,
            metric=rule.metric,
            scope=rule.scope,
            scope_key=state.scope_key,
            org_id=state.org_id,
            state=state.state,
            since=state.since,
            value=state.value,
            recent=state.recent,
        )
        for rule, state in alarms.list_states(db, org_ids=org_ids)
    ]


@router.get("/alarms/contacts", response_model=list[ContactRead])
def list_contacts(principal: CurrentPrincipal, db: DbSession, org_id: uuid.UUID | None = None) -> list[ContactRead]:
    """Who hears about the operator's (no org_id) or an organisation's incidents."""
    alarm_notices.require_contacts_manager(principal, org_id)
    return [ContactRead.model_validate(c) for c in alarm_notices.list_contacts(db, org_id=org_id)]


@router.post("/alarms/contacts", response_model=ContactRead, status_code=201)
def add_contact(body: ContactCreate, principal: CurrentPrincipal, db: DbSession, services: ServicesDep) -> ContactRead:
    """Add an e-mail or webhook recipient; a webhook URL the outbound policy refuses is a 422."""
    alarm_notices.require_contacts_manager(principal, body.org_id)
    contact = alarm_notices.add_contact(
        db, services, org_id=body.org_id, kind=body.kind, target=body.target, escalation=body.escalation
    )
    return ContactRead.model_validate(contact)


@router.delete("/alarms/contacts/{contact_id}", status_code=204)
def remove_contact(
    contact_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession, org_id: uuid.UUID | None = None
) -> Response:
    alarm_notices.require_contacts_manager(principal, org_id)
    alarm_notices.remove_contact(db, org_id=org_id, contact_id=contact_id)
    return Response(status_code=204)


def incident_read(
    incident: Incident, *, now: datetime, timeline: list[IncidentEventRead] | None = None
) -> IncidentRead:
    read = IncidentRead.model_validate(incident)
    if incident.mitigated_at is None:
        read.seconds_left = (incident.deadline_at - now).total_seconds()
    read.timeline = timeline
    return read


@router.get("/incidents", response_model=list[IncidentRead])
def list_incidents(
    principal: CurrentPrincipal,
    db: DbSession,
    now: Now,
    open_only: Annotated[bool, Query(alias="open", description="only unresolved incidents")] = False,
) -> list[IncidentRead]:
    """Incidents the caller may see (operator admins: all; others: their organisations'), open ones first."""
    return [incident_read(i, now=now) for i in incidents.list_incidents(db, principal=principal, open_only=open_only)]


@router.get("/incidents/figures", response_model=list[MonthFiguresRead])
def monthly_figures(principal: CurrentPrincipal, db: DbSession, now: Now) -> list[MonthFiguresRead]:
    """Per month: mean time to acknowledge and to mitigate, the share mitigated within the deadline (operator)."""
    require_alarm_operator(principal)
    figures = incidents.monthly_figures(db, since=now - timedelta(days=31 * FIGURES_MONTHS))
    return [
        MonthFiguresRead(
            month=f.month,
            incidents=f.incidents,
            mean_seconds_to_acknowledge=_seconds(f.mean_time_to_acknowledge),
            mean_seconds_to_mitigate=_seconds(f.mean_time_to_mitigate),
            mitigated_within_deadline=f.mitigated_within_deadline,
        )
        for f in figures
    ]


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def _with_timeline(db: DbSession, incident: Incident, now: datetime) -> IncidentRead:
    events = [IncidentEventRead.model_validate(e) for e in incidents.timeline(db, incident)]
    return incident_read(incident, now=now, timeline=events)


@router.get("/incidents/{incident_id}", response_model=IncidentRead)
def get_incident(incident_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession, now: Now) -> IncidentRead:
    """One incident with its timeline; another organisation's is a 404."""
    incident = incidents.get_incident(db, principal=principal, incident_id=incident_id)
    return _with_timeline(db, incident, now)


@router.post("/incidents/{incident_id}/{action}", response_model=IncidentRead)
def act_on_incident(
    incident_id: uuid.UUID,
    action: Literal["acknowledge", "note", "mitigate", "resolve", "assign"],
    principal: CurrentPrincipal,
    db: DbSession,
    now: Now,
    body: IncidentAction | None = None,
) -> IncidentRead:
    """Acknowledge, add a note (`text`), mark mitigated or resolved, or assign the owner (`owner_id`)."""
    incident = incidents.get_incident(db, principal=principal, incident_id=incident_id)
    given = body or IncidentAction()
    incidents.act(
        db, principal=principal, incident=incident, action=action, now=now, text=given.text, owner_id=given.owner_id
    )
    return _with_timeline(db, incident, now)
