"""Sending each finished day's report to the organisations that asked for it, by e-mail and/or webhook.

One `ReportDelivery` row per (organisation, day) makes sending idempotent: `sent_at` is set once every
configured destination took the report, and a destination that took it is written into `last_error` as
`<channel>: sent`, so a retry after a partial failure sends only to the others. A failed day is tried
again on the job's next runs, at most MAX_ATTEMPTS times (saving the settings grants a fresh round).
A crash between sending and recording can repeat one sending: webhook receivers can drop repeats by the
`X-StudyShelf-Delivery` header, which is the same on every attempt for a day.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from studyshelf.analytics.reports.daily import build_report, filename, to_csv, today_in
from studyshelf.analytics.reports.models import ReportDelivery, ReportSettings, RolledDay
from studyshelf.analytics.reports.org_settings import Destinations, destinations, sign, webhook_secret
from studyshelf.analytics.reports.schemas import DailyReport
from studyshelf.core.db import affected_rows, insert_missing, unit_of_work
from studyshelf.core.errors import NotFound
from studyshelf.core.ids import new_id
from studyshelf.core.outbound import OutboundError
from studyshelf.mail import Attachment, MailError, Message
from studyshelf.services import Services

log = logging.getLogger("studyshelf.reports")
LOOKBACK_DAYS = 3  # days before yesterday still sent when the job was down, or a destination was just set
MAX_ATTEMPTS = 10
SENT = "sent"


@dataclass(frozen=True)
class Due:
    org_id: uuid.UUID
    day: date
    to: Destinations


def due_reports(db: Session, *, now: datetime, lookback_days: int = LOOKBACK_DAYS) -> list[Due]:
    """Rolled days of every organisation with a destination that are neither sent nor given up on."""
    found = []
    for row in db.scalars(
        select(ReportSettings).where((ReportSettings.emails != "") | (ReportSettings.webhook_url != ""))
    ):
        today = today_in(row.time_zone, now)
        first = today - timedelta(days=lookback_days + 1)
        rolled = db.scalars(
            select(RolledDay.day).where(RolledDay.tz == row.time_zone, RolledDay.day >= first, RolledDay.day < today)
        )
        finished = set(
            db.scalars(
                select(ReportDelivery.day).where(
                    ReportDelivery.org_id == row.org_id,
                    ReportDelivery.day >= first,
                    (ReportDelivery.sent_at.is_not(None)) | (ReportDelivery.attempts >= MAX_ATTEMPTS),
                )
            )
        )
        found += [Due(row.org_id, day, destinations(row)) for day in sorted(rolled) if day not in finished]
    return found


def _claim(services: Services, due: Due) -> tuple[uuid.UUID, set[str]] | None:
    """Count an attempt; return the delivery's id and the channels already done, or None if it is finished."""
    with unit_of_work(services.write_sessions) as db:
        insert_missing(
            db, ReportDelivery, {"id": new_id(), "org_id": due.org_id, "day": due.day, "attempts": 0, "last_error": ""}
        )
        claimed = db.execute(
            update(ReportDelivery)
            .where(
                ReportDelivery.org_id == due.org_id,
                ReportDelivery.day == due.day,
                ReportDelivery.sent_at.is_(None),
                ReportDelivery.attempts < MAX_ATTEMPTS,
            )
            .values(attempts=ReportDelivery.attempts + 1)
        )
        if affected_rows(claimed) != 1:
            return None
        row = db.scalars(
            select(ReportDelivery).where(ReportDelivery.org_id == due.org_id, ReportDelivery.day == due.day)
        ).one()
        done = {line.split(":", 1)[0] for line in row.last_error.splitlines() if line.endswith(f": {SENT}")}
        return row.id, done


def _email_text(report: DailyReport, base_url: str) -> str:
    t = report.totals
    rate = "—" if t.fail_rate is None else f"{t.fail_rate:.1%}"
    lines = [
        f"StudyShelf usage of {report.org.name} on {report.day:%A %d %B %Y} ({report.time_zone}).",
        "",
        f"Views: {t.views}    Unique viewers: {t.viewers}    Downloads: {t.downloads}",
        f"Failed loads: {t.fails} of {t.load_ok + t.fails} ({rate})    Blocked requests: {t.blocked}",
    ]
    failing = sorted((f for f in report.files if f.fails), key=lambda f: -f.fails)[:5]
    if failing:
        lines += ["", "Files that failed to load most:"]
        lines += [f"  {f.fails} × {f.name}" + (f" ({f.path})" if f.path else "") for f in failing]
    lines += [
        "",
        "The attached CSV has every file, folder, country, browser and file type.",
        f"All reports: {base_url.rstrip('/')}/analytics/reports",
    ]
    return "\n".join(lines) + "\n"


def _send_email(services: Services, report: DailyReport, to: tuple[str, ...]) -> None:
    if not services.mailer.enabled:
        raise MailError("no mail server is configured (STUDYSHELF_SMTP_URL)")
    csv_bytes = to_csv(report).encode("utf-8-sig")  # the BOM makes spreadsheet programs read UTF-8
    services.mailer.send(
        Message(
            to=", ".join(to),
            subject=f"{report.org.name}: StudyShelf report for {report.day:%d %b %Y}",
            text=_email_text(report, services.settings.base_url),
            attachments=(Attachment(filename(report, "csv"), csv_bytes, "text/csv"),),
        )
    )


def _post_webhook(services: Services, report: DailyReport, url: str, delivery_id: uuid.UUID) -> None:
    body = report.model_dump_json().encode()
    secret = webhook_secret(services.keys, report.org.id)
    services.outbound.request(
        "POST",
        url,
        what="the webhook",
        content=body,
        headers={
            "Content-Type": "application/json",
            "User-Agent": "StudyShelf-Reports/1",
            "X-StudyShelf-Event": "report.daily",
            "X-StudyShelf-Delivery": str(delivery_id),
            "X-StudyShelf-Signature": sign(secret, body),
        },
    )


def _send(services: Services, due: Due, report: DailyReport, delivery_id: uuid.UUID, done: set[str]) -> dict[str, str]:
    """Send to each destination not yet done; the outcome per channel ('sent' or why not)."""
    outcome = dict.fromkeys(done, SENT)
    if due.to.emails and "email" not in done:
        try:
            _send_email(services, report, due.to.emails)
            outcome["email"] = SENT
        except MailError as exc:
            outcome["email"] = str(exc)
    if due.to.webhook_url and "webhook" not in done:
        try:
            _post_webhook(services, report, due.to.webhook_url, delivery_id)
            outcome["webhook"] = SENT
        except OutboundError as exc:
            outcome["webhook"] = str(exc)
    return outcome


def deliver(services: Services, due: Due, now: datetime) -> bool | None:
    """Send one organisation's report of one day: True when sent, False when it failed, None when not ours."""
    claimed = _claim(services, due)
    if claimed is None:
        return None
    delivery_id, done = claimed
    try:
        with unit_of_work(services.read_sessions) as db:
            report = build_report(db, org_id=due.org_id, day=due.day, now=now)
    except NotFound as exc:  # the time zone changed since the day was found, or the organisation went
        outcome = {"report": exc.detail}
    else:
        outcome = _send(services, due, report, delivery_id, done)
    complete = all(value == SENT for value in outcome.values())
    with unit_of_work(services.write_sessions) as db:
        db.execute(
            update(ReportDelivery)
            .where(ReportDelivery.id == delivery_id)
            .values(
                sent_at=services.clock.now() if complete else None,
                last_error="" if complete else "\n".join(f"{k}: {v}"[:500] for k, v in sorted(outcome.items())),
            )
        )
    if not complete:
        log.warning("report of %s for %s not delivered: %s", due.org_id, due.day, outcome)
    return complete


def deliver_due(services: Services, _memo: str) -> str:
    """The scheduler's job: deliver every report that is due (see the module's docstring)."""
    with unit_of_work(services.read_sessions) as db:
        now = services.clock.now()
        due = due_reports(db, now=now)
    results = [deliver(services, item, now) for item in due]
    sent, failed = results.count(True), results.count(False)
    return f"{sent} reports delivered, {failed} failed"
