"""Enqueue notifications with the change they report; drain them after commit and from the scheduler.

`enqueue_*` only add a row to the caller's session, so a notification exists exactly when its change was
committed. `drain` runs outside any transaction of the caller: it leases due messages in one short write
transaction, sends them with no transaction open (a slow receiver or mail server never holds the database's
write lock), then records each outcome. A failure is retried with growing back-off (BACKOFF doubled per
attempt, at most MAX_BACKOFF) up to MAX_ATTEMPTS; the last error is kept on the row.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from studyshelf.core.db import affected_rows, unit_of_work
from studyshelf.core.keys import KeyRing, Purpose
from studyshelf.core.outbound import OutboundError
from studyshelf.mail import MailError, Message
from studyshelf.notify.models import OutboxMessage
from studyshelf.services import Services

log = logging.getLogger("studyshelf.notify")
MAX_ATTEMPTS = 8
BACKOFF = timedelta(minutes=1)
MAX_BACKOFF = timedelta(hours=6)
KEEP = timedelta(days=30)  # sent and given-up messages are kept this long, for support
LEASE = timedelta(minutes=5)  # longer than one send can take (the outbound deadline, an SMTP timeout)
BATCH = 50
EMAIL = "email"
WEBHOOK = "webhook"


def enqueue_email(db: Session, *, to: str, subject: str, text: str, event: str, now: datetime) -> OutboxMessage:
    """Queue an e-mail, due from `now` (the caller's `Services.clock`); it is sent after the caller's transaction
    commits."""
    message = OutboxMessage(
        kind=EMAIL, event=event, target=to, subject=subject[:300], body=text, created_at=now, next_attempt_at=now
    )
    db.add(message)
    db.flush()
    return message


def enqueue_webhook(
    db: Session, *, url: str, payload: dict[str, object], event: str, now: datetime, signed: bool = False
) -> OutboxMessage:
    """Queue a JSON POST to a webhook, due from `now`; it is sent after the caller's transaction commits.

    A `signed` call carries `X-StudyShelf-Signature: t=<unix time>,v1=<hex>`, made when it is sent (so each retry
    has a fresh time): HMAC-SHA256 over `<t>.<body>` with the install's webhook signing secret."""
    message = OutboxMessage(
        kind=WEBHOOK,
        event=event,
        target=url,
        body=json.dumps(payload),
        signed=signed,
        created_at=now,
        next_attempt_at=now,
    )
    db.add(message)
    db.flush()
    return message


def webhook_signing_secret(keys: KeyRing) -> str:
    """The secret receivers verify signed webhooks with: one per install, derived from the install secret."""
    return keys.mac(Purpose.ALARM_WEBHOOK, b"webhook signature").hex()


def webhook_signature(secret: str, body: bytes, timestamp: int) -> str:
    """The X-StudyShelf-Signature value of a body sent at `timestamp` (unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def backoff(attempts: int) -> timedelta:
    """The wait after the given number of failed attempts: 1, 2, 4 … minutes, at most six hours."""
    wait: timedelta = BACKOFF * 2 ** max(attempts - 1, 0)
    return min(wait, MAX_BACKOFF)


@dataclass(frozen=True)
class _Leased:
    id: uuid.UUID
    kind: str
    event: str
    target: str
    subject: str
    body: str
    attempts: int
    signed: bool


def _lease(services: Services, now: datetime, limit: int) -> list[_Leased]:
    """Take up to `limit` due messages (counting an attempt each); the row lease keeps other drains off."""
    with unit_of_work(services.write_sessions) as db:
        candidates = list(
            db.scalars(
                select(OutboxMessage.id)
                .where(
                    OutboxMessage.sent_at.is_(None),
                    OutboxMessage.attempts < MAX_ATTEMPTS,
                    OutboxMessage.next_attempt_at <= now,
                    or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until < now),
                )
                .order_by(OutboxMessage.next_attempt_at)
                .limit(limit)
            )
        )
        leased = []
        for message_id in candidates:
            taken = db.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == message_id,
                    OutboxMessage.sent_at.is_(None),
                    or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until < now),
                )
                .values(lease_until=now + LEASE, attempts=OutboxMessage.attempts + 1)
            )
            if affected_rows(taken) == 1:
                row = db.get(OutboxMessage, message_id)
                assert row is not None
                db.refresh(row)
                leased.append(
                    _Leased(row.id, row.kind, row.event, row.target, row.subject, row.body, row.attempts, row.signed)
                )
        return leased


def _send(services: Services, message: _Leased) -> None:
    if message.kind == EMAIL:
        if not services.mailer.enabled:
            raise MailError("no mail server is configured (STUDYSHELF_SMTP_URL)")
        services.mailer.send(Message(to=message.target, subject=message.subject, text=message.body))
        return
    body = message.body.encode()
    headers = {
        "Content-Type": "application/json",
        "X-StudyShelf-Event": message.event,
        "X-StudyShelf-Delivery": str(message.id),  # the same on every attempt: receivers can drop repeats
    }
    if message.signed:
        timestamp = int(services.clock.now().timestamp())
        headers["X-StudyShelf-Signature"] = webhook_signature(webhook_signing_secret(services.keys), body, timestamp)
    services.outbound.request("POST", message.target, what="the webhook", content=body, headers=headers)


def _record(services: Services, message: _Leased, *, error: str | None, now: datetime) -> None:
    values: dict[str, object] = {"lease_until": None}
    if error is None:
        values.update(sent_at=now, last_error="")
    else:
        values.update(last_error=error[:500], next_attempt_at=now + backoff(message.attempts))
    with unit_of_work(services.write_sessions) as db:
        db.execute(update(OutboxMessage).where(OutboxMessage.id == message.id).values(**values))


def drain(services: Services, *, now: datetime | None = None, limit: int = BATCH) -> tuple[int, int]:
    """Send what is due; return (sent, failed). Call it with no transaction open; tests pass `now`."""
    sent = failed = 0
    for _ in range(limit):  # one lease at a time, so a lease never outlives the sending it covers
        at = now or services.clock.now()
        leased = _lease(services, at, 1)
        if not leased:
            break
        (message,) = leased
        try:
            _send(services, message)
        except (OutboundError, MailError, OSError) as exc:
            error = str(exc) or type(exc).__name__
            log.warning(
                "%s %s (%s) not sent, attempt %d: %s", message.kind, message.id, message.event, message.attempts, error
            )
            _record(services, message, error=error, now=at)
            failed += 1
        else:
            _record(services, message, error=None, now=at)
            sent += 1
    return sent, failed


def prune(services: Services, *, now: datetime | None = None) -> int:
    """Forget messages sent, or given up on, more than KEEP ago; return how many."""
    cutoff = (now or services.clock.now()) - KEEP
    with unit_of_work(services.write_sessions) as db:
        done = (OutboxMessage.sent_at < cutoff) | (
            (OutboxMessage.attempts >= MAX_ATTEMPTS) & (OutboxMessage.next_attempt_at < cutoff)
        )
        result = db.execute(delete(OutboxMessage).where(done))
        return affected_rows(result)
