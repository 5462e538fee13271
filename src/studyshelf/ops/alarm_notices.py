"""Who hears about incidents, and what they get: e-mails and signed, Slack- and Teams-compatible webhook calls.

Notices are outbox messages (notify/), queued in the transaction that opened or changed the incident and sent
after its commit with the outbox's retries; `IncidentNotice` follows each one so that every attempt reaches
the incident's timeline (`incidents.sync_notices`).
"""

from __future__ import annotations

import ipaddress
import uuid
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from studyshelf.core.errors import Invalid, NotFound
from studyshelf.core.outbound import check_url, is_allowed_address
from studyshelf.notify.service import enqueue_email, enqueue_webhook
from studyshelf.ops.models import AlarmContact, Incident, IncidentNotice
from studyshelf.partners.permissions import Permission, operates_alarms, require, require_alarm_operator
from studyshelf.partners.principal import Principal
from studyshelf.services import Services
from studyshelf.web.i18n import N_

EMAIL = "email"
WEBHOOK = "webhook"
SUBJECTS = {
    "fired": "Alarm: {title}",
    "reminder": "Reminder: {title} is not mitigated yet",
    "escalation": "Deadline passed: {title}",
    "cleared": "Cleared: {title}",
}


def add_contact(
    db: Session, services: Services, *, org_id: uuid.UUID | None, kind: str, target: str, escalation: bool
) -> AlarmContact:
    """Add a recipient of the operator's (org_id None) or an organisation's incidents; the target is checked."""
    target = target.strip()
    if kind == EMAIL:
        local, _, domain = target.partition("@")
        if not local or "." not in domain or any(c.isspace() for c in target) or len(target) > 320:
            raise Invalid.for_field("target", N_("Enter an e-mail address."))
    elif kind == WEBHOOK:
        try:
            target = check_url(target)
        except ValueError as exc:
            raise Invalid.for_field("target", str(exc)) from exc
        host = urlsplit(target).hostname or ""
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None and not is_allowed_address(literal, services.outbound.allowed):
            raise Invalid.for_field(
                "target", N_("The outbound policy refuses this address (private, loopback or link-local).")
            )
    else:
        raise Invalid.for_field("kind", N_("A contact is an e-mail address or a webhook."))
    contact = AlarmContact(org_id=org_id, kind=kind, target=target, escalation=escalation)
    db.add(contact)
    db.flush()
    return contact


def list_contacts(db: Session, *, org_id: uuid.UUID | None) -> list[AlarmContact]:
    owner = AlarmContact.org_id.is_(None) if org_id is None else AlarmContact.org_id == org_id
    return list(db.scalars(select(AlarmContact).where(owner).order_by(AlarmContact.created_at)))


def remove_contact(db: Session, *, org_id: uuid.UUID | None, contact_id: uuid.UUID) -> None:
    contact = db.get(AlarmContact, contact_id)
    if contact is None or contact.org_id != org_id:
        raise NotFound("No such contact.")
    db.delete(contact)
    db.flush()


def incident_url(services: Services, incident: Incident) -> str:
    return f"{services.settings.base_url.rstrip('/')}/settings/incidents/{incident.id}"


def _text(services: Services, incident: Incident, purpose: str, detail: str) -> str:
    headline = SUBJECTS[purpose].format(title=incident.title)
    lines = [headline, detail, f"Severity: {incident.severity}. Mitigate by {incident.deadline_at:%Y-%m-%d %H:%M} UTC."]
    lines.append(f"Incident: {incident_url(services, incident)}")
    return "\n".join(line for line in lines if line)


def webhook_payload(services: Services, incident: Incident, purpose: str, detail: str) -> dict[str, object]:
    """One body for Slack (`text`, `blocks`) and Microsoft Teams (`text`, `sections` of a MessageCard)."""
    text = _text(services, incident, purpose, detail)
    url = incident_url(services, incident)
    facts = [
        {"name": "Severity", "value": incident.severity},
        {"name": "Deadline", "value": f"{incident.deadline_at:%Y-%m-%d %H:%M} UTC"},
        {"name": "Opened", "value": f"{incident.opened_at:%Y-%m-%d %H:%M} UTC"},
    ]
    return {
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {
                "type": "actions",
                "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Open incident"}, "url": url}],
            },
        ],
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": SUBJECTS[purpose].format(title=incident.title),
        "sections": [{"activityTitle": SUBJECTS[purpose].format(title=incident.title), "text": detail, "facts": facts}],
        "potentialAction": [{"@type": "OpenUri", "name": "Open incident", "targets": [{"os": "default", "uri": url}]}],
        "incident": {
            "id": str(incident.id),
            "url": url,
            "purpose": purpose,
            "severity": incident.severity,
            "org_id": str(incident.org_id) if incident.org_id else None,
            "opened_at": incident.opened_at.isoformat(),
            "deadline_at": incident.deadline_at.isoformat(),
        },
    }


def send(
    db: Session,
    services: Services,
    incident: Incident,
    *,
    purpose: str,
    detail: str,
    escalation: bool = False,
) -> int:
    """Queue one notice per recipient (sent after commit), or per escalation contact; return how many."""
    contacts = recipients(db, incident, escalation=escalation)
    for contact in contacts:
        if contact.kind == EMAIL:
            subject = SUBJECTS[purpose].format(title=incident.title)
            message = enqueue_email(
                db,
                to=contact.target,
                subject=subject,
                text=_text(services, incident, purpose, detail),
                event=f"incident.{purpose}",
                now=services.clock.now(),
            )
        else:
            message = enqueue_webhook(
                db,
                url=contact.target,
                payload=webhook_payload(services, incident, purpose, detail),
                event=f"incident.{purpose}",
                now=services.clock.now(),
                signed=True,
            )
        db.add(
            IncidentNotice(
                outbox_id=message.id,
                incident_id=incident.id,
                channel=contact.kind,
                target=contact.target,
                purpose=purpose,
            )
        )
    db.flush()
    return len(contacts)


def recipients(db: Session, incident: Incident, *, escalation: bool) -> list[AlarmContact]:
    """The operator's contacts for global incidents, the organisation's for organisation and file incidents."""
    owner = AlarmContact.org_id.is_(None) if incident.org_id is None else AlarmContact.org_id == incident.org_id
    return list(db.scalars(select(AlarmContact).where(owner, AlarmContact.escalation.is_(escalation))))


def require_contacts_manager(principal: Principal, org_id: uuid.UUID | None) -> None:
    """The operator's contacts are the operator admins'; an organisation's, its admins' (and the operator admins')."""
    if operates_alarms(principal):
        return
    if org_id is None:
        require_alarm_operator(principal)
    else:
        require(principal, Permission.SETTINGS_MANAGE, org_id, what="organisation")
