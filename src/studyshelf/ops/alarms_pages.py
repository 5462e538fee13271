"""The Alarms page (rules, states, contacts) and the Incidents pages (open incidents, a timeline, the figures)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from babel.numbers import format_decimal
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from studyshelf.core.errors import Invalid
from studyshelf.notify.service import webhook_signing_secret
from studyshelf.ops import alarm_notices, alarms, incidents
from studyshelf.ops.alarm_metrics import METRICS
from studyshelf.ops.models import AlarmRule
from studyshelf.partners.deps import DbSession, Now, ServicesDep
from studyshelf.partners.pages import PagePrincipal, current_org_id
from studyshelf.partners.permissions import Permission, allows, operates_alarms, require_alarm_operator
from studyshelf.partners.principal import Principal
from studyshelf.services import Services
from studyshelf.web import i18n
from studyshelf.web.i18n import N_
from studyshelf.web.render import render, translated

router = APIRouter(include_in_schema=False)
ALARMS = "/settings/alarms"
INCIDENTS = "/settings/incidents"
FIGURES_DAYS = 366

# Rule names, metric labels, scopes, states, severities and units are marked N_ where they are written (ops/alarms.py,
# ops/alarm_metrics.py) and translated here with `| translate`, so a value not marked (a renamed rule) shows as it is.
CONTACT_KINDS = {alarm_notices.EMAIL: N_("E-mail"), alarm_notices.WEBHOOK: N_("Webhook")}


@dataclass(frozen=True)
class ContactsScope:
    """Whose contacts the page shows: the operator's (org_id None) or the organisation worked in; `manages` False
    when the person may not change them."""

    manages: bool
    org_id: uuid.UUID | None


def _contacts_scope(principal: Principal) -> ContactsScope:
    if operates_alarms(principal):
        return ContactsScope(True, None)
    org_id = current_org_id(principal)
    return ContactsScope(org_id is not None and allows(principal, Permission.SETTINGS_MANAGE, org_id), org_id)


def significant(value: float) -> str:
    """A reading with four significant digits in the page's language (`0.02345`, `0,02345`; `%.4g` in English)."""
    if i18n.current_locale() == i18n.DEFAULT_LOCALE:
        return f"{value:.4g}"
    return format_decimal(value, format="@###", locale=i18n.current_locale())


def _rule_refusal(request: Request, exc: Invalid, rule: AlarmRule, changes: dict[str, object]) -> str:
    """Why alarms.update_rule refused a rule's form, in the request's language (in English, the service's words)."""
    refusals: dict[str, tuple[str, dict[str, object]]] = {
        "window_minutes": (N_("The window must be 1 to %(maximum)s minutes."), {"maximum": alarms.MAX_WINDOW_MINUTES}),
        "datapoints": (N_("Datapoints must be 1 to %(maximum)s."), {"maximum": alarms.MAX_DATAPOINTS}),
        "datapoints_to_alarm": (
            N_("Datapoints to alarm must be 1 to the datapoints (%(datapoints)s)."),
            {"datapoints": changes["datapoints"]},
        ),
        "min_views": (N_("Minimum views must be 1 to %(maximum)s."), {"maximum": alarms.MAX_MIN_VIEWS}),
        "severity": (N_("The severity must be one of %(severities)s."), {"severities": ", ".join(alarms.SEVERITIES)}),
    }
    spec = METRICS.get(rule.metric)
    if spec is not None:
        refusals["threshold"] = (
            N_("The threshold of %(metric)s must be between 0 and %(maximum)s %(unit)s."),
            {"metric": rule.metric, "maximum": f"{spec.maximum:g}", "unit": spec.unit},
        )
    found = refusals.get(str(exc.extra.get("field")))
    return exc.detail if found is None else translated(request, found[0], **found[1])


def _alarms_page(
    request: Request, db: DbSession, services: Services, principal: Principal, *, status: int = 200, **extra: Any
) -> Response:
    operator = operates_alarms(principal)
    scope = _contacts_scope(principal)
    context = {
        "title": "Alarms",
        "nav": "alarms",
        "operator": operator,
        "rules": alarms.list_rules(db) if operator else [],
        "metrics": METRICS,
        "comparisons": alarms.COMPARISONS,
        "severities": alarms.SEVERITIES,
        "significant": significant,
        "contact_kinds": CONTACT_KINDS,
        "states": alarms.list_states(db, org_ids=incidents.visible_orgs(principal)),
        "manages_contacts": scope.manages,
        "contact_org": scope.org_id,
        "contacts": alarm_notices.list_contacts(db, org_id=scope.org_id) if scope.manages else [],
        "signing_secret": webhook_signing_secret(services.keys) if scope.manages else "",
        **extra,
    }
    return render(request, "ops/alarms.html", context, status=status)


@router.get(ALARMS, response_class=HTMLResponse)
def alarms_page(request: Request, principal: PagePrincipal, db: DbSession, services: ServicesDep) -> Response:
    return _alarms_page(request, db, services, principal)


@router.post(ALARMS + "/rules/{rule_id}", response_class=HTMLResponse)
def save_rule(
    request: Request,
    rule_id: uuid.UUID,
    principal: PagePrincipal,
    db: DbSession,
    services: ServicesDep,
    now: Now,
    threshold: Annotated[float, Form(allow_inf_nan=False)],
    window_minutes: Annotated[int, Form()],
    datapoints: Annotated[int, Form()],
    datapoints_to_alarm: Annotated[int, Form()],
    severity: Annotated[str, Form(max_length=16)],
    min_views: Annotated[int, Form()] = 20,
    enabled: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    """Save a rule's thresholds, window and on/off (operator admins); a refused value shows the page with it."""
    require_alarm_operator(principal)
    rule = alarms.get_rule(db, rule_id)
    changes: dict[str, object] = {
        "threshold": threshold,
        "window_minutes": window_minutes,
        "datapoints": datapoints,
        "datapoints_to_alarm": datapoints_to_alarm,
        "severity": severity,
        "min_views": min_views,
        "enabled": enabled == "on",
    }
    try:
        alarms.update_rule(db, rule, changes=changes, now=now)
    except Invalid as exc:
        db.rollback()
        refusal = _rule_refusal(request, exc, rule, changes)
        return _alarms_page(request, db, services, principal, status=422, rule_error=(rule_id, refusal))
    return RedirectResponse(f"{ALARMS}?saved=true#rule-{rule.key}", status_code=303)


@router.post(ALARMS + "/contacts", response_class=HTMLResponse)
def add_contact(
    request: Request,
    principal: PagePrincipal,
    db: DbSession,
    services: ServicesDep,
    kind: Annotated[str, Form(max_length=16)],
    target: Annotated[str, Form(max_length=1000)],
    escalation: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    org_id = _contacts_scope(principal).org_id
    alarm_notices.require_contacts_manager(principal, org_id)
    try:
        alarm_notices.add_contact(db, services, org_id=org_id, kind=kind, target=target, escalation=escalation == "on")
    except Invalid as exc:
        db.rollback()
        return _alarms_page(
            request,
            db,
            services,
            principal,
            status=422,
            contact_error=exc.detail,
            contact_form={"kind": kind, "target": target},
        )
    return RedirectResponse(f"{ALARMS}#contacts", status_code=303)


@router.post(ALARMS + "/contacts/{contact_id}/delete", response_class=HTMLResponse)
def remove_contact(contact_id: uuid.UUID, principal: PagePrincipal, db: DbSession) -> Response:
    org_id = _contacts_scope(principal).org_id
    alarm_notices.require_contacts_manager(principal, org_id)
    alarm_notices.remove_contact(db, org_id=org_id, contact_id=contact_id)
    return RedirectResponse(f"{ALARMS}#contacts", status_code=303)


@router.get(INCIDENTS, response_class=HTMLResponse)
def incidents_page(request: Request, principal: PagePrincipal, db: DbSession, now: Now) -> Response:
    """Open incidents with the time left, the recently resolved, and the monthly figures (operator admins)."""
    shown = incidents.list_incidents(db, principal=principal)
    context = {
        "title": "Incidents",
        "nav": "incidents",
        "now": now,
        "open_incidents": [i for i in shown if i.resolved_at is None],
        "resolved": [i for i in shown if i.resolved_at is not None][:50],
        "figures": incidents.monthly_figures(db, since=now - timedelta(days=FIGURES_DAYS))
        if operates_alarms(principal)
        else None,
    }
    return render(request, "ops/incidents.html", context)


@router.get(INCIDENTS + "/{incident_id}", response_class=HTMLResponse)
def incident_page(
    request: Request, incident_id: uuid.UUID, principal: PagePrincipal, db: DbSession, now: Now
) -> Response:
    incident = incidents.get_incident(db, principal=principal, incident_id=incident_id)
    context = {
        "title": incident.title,
        "nav": "incidents",
        "now": now,
        "incident": incident,
        "timeline": incidents.timeline(db, incident),
        "my_id": principal.user.id,
    }
    return render(request, "ops/incident.html", context)


@router.post(INCIDENTS + "/{incident_id}/{action}", response_class=HTMLResponse)
def act_on_incident(
    incident_id: uuid.UUID,
    action: str,
    principal: PagePrincipal,
    db: DbSession,
    now: Now,
    text: Annotated[str, Form(max_length=2000)] = "",
    owner_id: Annotated[uuid.UUID | None, Form()] = None,
) -> Response:
    """Acknowledge, note, mitigate, resolve or take an incident from its page; back to the page (303)."""
    incident = incidents.get_incident(db, principal=principal, incident_id=incident_id)
    incidents.act(db, principal=principal, incident=incident, action=action, now=now, text=text, owner_id=owner_id)
    return RedirectResponse(f"{INCIDENTS}/{incident.id}#timeline", status_code=303)
