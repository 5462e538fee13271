"""Helpers of the alarm and incident tests: minutes of the alarm job, synthetic request minutes and events, the
receiver's side of a signed webhook, and reads of states, incidents and timelines."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from studyshelf.core.clock import MovableClock
from studyshelf.core.db import unit_of_work
from studyshelf.events import Event
from studyshelf.jobs.runner import JOBS
from studyshelf.notify.service import webhook_signature, webhook_signing_secret
from studyshelf.ops import signals
from studyshelf.ops.models import AlarmRule, AlarmState, Incident, IncidentEvent
from studyshelf.services import Services, build_services
from studyshelf.settings import Settings
from tests.analytics.support import event
from tests.webhook_support import Call

START = datetime(2031, 5, 5, 9, 0, 30, tzinfo=UTC)  # ahead of the wall clock: outbox rows made now are due
ONE_MINUTE = timedelta(minutes=1)
ALARM_JOB = next(job for job in JOBS if job.name == "ops.alarms")


def verify_signature(services: Services, call: Call) -> bool:
    """What a receiver does: recompute the HMAC over `<t>.<body>` with the shared secret."""
    parts = dict(part.split("=", 1) for part in call.headers["x-studyshelf-signature"].split(","))
    expected = webhook_signature(webhook_signing_secret(services.keys), call.body, int(parts["t"]))
    return expected == call.headers["x-studyshelf-signature"]


def run_minutes(services: Services, clock: MovableClock, minutes: int = 1) -> None:
    """Move the clock a minute at a time and run the alarm job after each."""
    for _ in range(minutes):
        clock.advance(60)
        ALARM_JOB.run(services, "")


def minute_of(clock: MovableClock) -> datetime:
    return clock.now().replace(second=0, microsecond=0)


def requests_then_run(
    services: Services, clock: MovableClock, *, requests: int, errors: int = 0, seconds: float = 0.05
) -> None:
    """Requests in the minute that is ending, then the next minute's evaluation (which reads the settled one)."""
    request_minute(services, minute_of(clock) - ONE_MINUTE, requests=requests, errors=errors, seconds=seconds)
    run_minutes(services, clock)


def fire_5xx(services: Services, clock: MovableClock, *, seconds: float = 0.05) -> None:
    """Five minutes of 10 % 5xx answers: the default rule fires (after one run to start from)."""
    run_minutes(services, clock)
    for _ in range(5):
        requests_then_run(services, clock, requests=100, errors=10, seconds=seconds)


def request_minute(services: Services, at: datetime, *, requests: int, errors: int = 0, seconds: float = 0.05) -> None:
    """Write one minute of requests as two processes would (half each)."""
    for instance in ("web-1:100:a", "web-2:200:b"):
        tally = signals.RequestTally()
        for index in range(requests // 2):
            status = 500 if index < errors // 2 else 200
            tally.record(seconds, status, at.timestamp())
        signals.flush(services, tally=tally, final=True, instance=instance)


def file_events(owner: str, file_id: str, at: datetime, *, views: int, ok: int, fails: int) -> list[Event]:
    """A file's views, successful and failed loads at one time."""
    common = {"ts": at, "owner_org": owner, "partner_org": owner, "file_id": file_id}
    return [
        *(event("view", **common) for _ in range(views)),
        *(event("load_ok", load_ms=120, **common) for _ in range(ok)),
        *(event("load_fail", error_class="network", **common) for _ in range(fails)),
    ]


def rule(services: Services, key: str) -> AlarmRule:
    with unit_of_work(services.read_sessions) as db:
        found = db.scalars(select(AlarmRule).where(AlarmRule.key == key)).one()
        db.expunge(found)
        return found


def states(services: Services, key: str) -> dict[str, str]:
    """The rule's state per scope key."""
    with unit_of_work(services.read_sessions) as db:
        found = db.execute(
            select(AlarmState.scope_key, AlarmState.state)
            .join(AlarmRule, AlarmRule.id == AlarmState.rule_id)
            .where(AlarmRule.key == key)
        )
        return dict(found.all())


def incidents_of(services: Services, key: str) -> list[Incident]:
    with unit_of_work(services.read_sessions) as db:
        rows = list(
            db.scalars(
                select(Incident)
                .join(AlarmRule, AlarmRule.id == Incident.rule_id)
                .where(AlarmRule.key == key)
                .order_by(Incident.opened_at)
            )
        )
        db.expunge_all()
        return rows


def timeline_kinds(services: Services, incident_id: uuid.UUID) -> list[str]:
    with unit_of_work(services.read_sessions) as db:
        found = db.scalars(
            select(IncidentEvent.kind)
            .where(IncidentEvent.incident_id == incident_id)
            .order_by(IncidentEvent.at, IncidentEvent.id)
        )
        return list(found)


def fresh_services(settings: Settings, clock: MovableClock) -> Services:
    """Another process over the same database (a restart)."""
    return dataclasses.replace(build_services(settings), clock=clock)
