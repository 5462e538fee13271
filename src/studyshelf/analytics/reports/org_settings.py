"""An organisation's report settings: the time zone of its days, and where its daily report is sent."""

from __future__ import annotations

import functools
import hashlib
import hmac
import uuid
import zoneinfo
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import update
from sqlalchemy.orm import Session

from studyshelf.analytics.reports.models import ReportDelivery, ReportSettings
from studyshelf.core import outbound
from studyshelf.core.errors import Invalid
from studyshelf.core.keys import KeyRing, Purpose
from studyshelf.core.redact import mask_url, unless_masked
from studyshelf.partners import audit
from studyshelf.partners.permissions import Permission, allows, require
from studyshelf.partners.principal import Principal

DEFAULT_TIME_ZONE = "UTC"
MAX_EMAILS = 20


@functools.cache
def time_zones() -> tuple[str, ...]:
    """Every IANA time zone this machine knows, sorted (read once: the list walks the zoneinfo tree)."""
    return tuple(sorted(zoneinfo.available_timezones() | {DEFAULT_TIME_ZONE}))


def zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):  # a zone removed from tzdata since it was chosen
        return zoneinfo.ZoneInfo(DEFAULT_TIME_ZONE)


@dataclass(frozen=True)
class Destinations:
    emails: tuple[str, ...]
    webhook_url: str

    @property
    def any(self) -> bool:
        return bool(self.emails or self.webhook_url)


def get_settings(db: Session, *, org_id: uuid.UUID) -> ReportSettings:
    """The organisation's settings; defaults (UTC, sent nowhere) until an admin saves some, not stored until then."""
    return db.get(ReportSettings, org_id) or ReportSettings(
        org_id=org_id, time_zone=DEFAULT_TIME_ZONE, emails="", webhook_url=""
    )


def time_zone_of(db: Session, *, org_id: uuid.UUID) -> str:
    return get_settings(db, org_id=org_id).time_zone


def destinations(row: ReportSettings) -> Destinations:
    return Destinations(tuple(e for e in (row.emails or "").split(",") if e), row.webhook_url or "")


def read_settings(db: Session, *, principal: Principal, org_id: uuid.UUID) -> tuple[ReportSettings, bool]:
    """The settings for anyone who may read the organisation's analytics, and whether they may change them
    (and so see their secrets: see `shown_webhook`)."""
    require(principal, Permission.ANALYTICS_READ, org_id, what="organisation")
    return get_settings(db, org_id=org_id), allows(principal, Permission.SETTINGS_MANAGE, org_id)


def shown_webhook(row: ReportSettings, *, can_edit: bool) -> str:
    """The webhook as the reader may see it: whole for those who may change the settings (admins), else masked."""
    url = row.webhook_url or ""
    return url if can_edit else mask_url(url)


def clean_time_zone(value: str) -> str:
    name = value.strip()
    if name not in time_zones():
        raise Invalid(f"{name[:64]!r} is not a time zone; choose one like Europe/Berlin or America/New_York.")
    return name


def clean_emails(values: list[str]) -> list[str]:
    """Valid, normalised, de-duplicated addresses; the first bad one is named in the error."""
    cleaned: list[str] = []
    for raw in values:
        value = raw.strip()
        if not value:
            continue
        try:
            address = validate_email(value, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise Invalid(f"{value[:320]!r} is not an e-mail address: {exc}") from exc
        if address.casefold() not in {a.casefold() for a in cleaned}:
            cleaned.append(address)
    if len(cleaned) > MAX_EMAILS:
        raise Invalid(f"At most {MAX_EMAILS} e-mail addresses.")
    return cleaned


def clean_webhook(value: str) -> str:
    if not value.strip():
        return ""
    try:
        return outbound.check_url(value)
    except ValueError as exc:
        raise Invalid(str(exc)) from exc


def update_settings(
    db: Session, *, principal: Principal, org_id: uuid.UUID, time_zone: str, emails: list[str], webhook_url: str
) -> ReportSettings:
    """Change the time zone and destinations (admins); failed deliveries get a fresh round of attempts.

    A masked webhook sent back (a form that showed it masked) keeps the stored one."""
    require(principal, Permission.SETTINGS_MANAGE, org_id, what="organisation")
    row = db.get(ReportSettings, org_id)
    cleaned = {
        "time_zone": clean_time_zone(time_zone),
        "emails": ",".join(clean_emails(emails)),
        "webhook_url": clean_webhook(unless_masked(webhook_url, row.webhook_url if row is not None else "")),
    }
    if row is None:
        row = ReportSettings(org_id=org_id, time_zone=DEFAULT_TIME_ZONE, emails="", webhook_url="")
        db.add(row)
    before = {key: getattr(row, key) for key in cleaned}
    changed = {key: value for key, value in cleaned.items() if before[key] != value}
    for key, value in cleaned.items():
        setattr(row, key, value)
    db.flush()
    if changed:
        db.execute(
            update(ReportDelivery)
            .where(ReportDelivery.org_id == org_id, ReportDelivery.sent_at.is_(None))
            .values(attempts=0)
        )
        audit.record(
            db,
            principal=principal,
            org_id=org_id,
            action="report_settings.update",
            target_type="organization",
            target_id=org_id,
            before={k: before[k] for k in changed},
            after=changed,
        )
    return row


def webhook_secret(keys: KeyRing, org_id: uuid.UUID) -> str:
    """The key of an organisation's webhook signatures, derived from the install secret (stable, never stored:
    receivers hold it, so its purpose stays on the legacy derivation, core/keys.py)."""
    return keys.mac(Purpose.REPORT_WEBHOOK, str(org_id).encode()).hex()


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
