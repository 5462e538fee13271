"""Tables of the alarms: request signals per process and minute, rules and their states, contacts, incidents."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from studyshelf.core.clock import utcnow
from studyshelf.core.db import Base
from studyshelf.core.ids import new_id


class RequestMinute(Base):
    """One process's requests in one minute: readers add up every instance's rows of a window."""

    __tablename__ = "request_minutes"

    instance: Mapped[str] = mapped_column(String(100), primary_key=True)  # hostname:pid:start
    minute: Mapped[datetime] = mapped_column(primary_key=True, index=True)
    requests: Mapped[int] = mapped_column(Integer)
    errors_5xx: Mapped[int] = mapped_column(Integer)
    buckets: Mapped[list[int]] = mapped_column(JSON)  # counts per signals.LATENCY_BUCKETS, the last one unbounded


class AlarmRule(Base):
    """What to watch: a metric over a window, compared with a threshold, firing when M of N minutes breach."""

    __tablename__ = "alarm_rules"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(64), unique=True)  # stable name of a default rule, or a new id
    name: Mapped[str] = mapped_column(String(200))
    metric: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(16))  # global | organisation | file
    comparison: Mapped[str] = mapped_column(String(2))  # > >= < <=
    threshold: Mapped[float] = mapped_column(Float)
    window_minutes: Mapped[int] = mapped_column(Integer)  # what one datapoint aggregates
    datapoints: Mapped[int] = mapped_column(Integer)  # N: the minutes looked at
    datapoints_to_alarm: Mapped[int] = mapped_column(Integer)  # M: how many of them must breach
    min_views: Mapped[int] = mapped_column(Integer, default=20)  # file scope: files with fewer views are skipped
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    severity: Mapped[str] = mapped_column(String(16))  # critical | warning
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AlarmState(Base):
    """A rule's state for one scope ("" for global, an organisation or a file id), with its recent datapoints."""

    __tablename__ = "alarm_states"

    rule_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("alarm_rules.id", ondelete="CASCADE"), primary_key=True)
    scope_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    org_id: Mapped[uuid.UUID | None] = mapped_column(default=None)  # whose alarm it is (None: the operator's)
    state: Mapped[str] = mapped_column(String(8), default="OK")  # OK | ALARM
    since: Mapped[datetime] = mapped_column(default=utcnow)  # the last transition
    recent: Mapped[str] = mapped_column(String(64), default="")  # newest last: 1 breaching, 0 not, - no data
    value: Mapped[float | None] = mapped_column(Float, default=None)
    evaluated_minute: Mapped[datetime | None] = mapped_column(default=None)


class AlarmContact(Base):
    """Who hears about alarms: the operator's (org_id None) or an organisation's; `escalation` ones hear of breaches."""

    __tablename__ = "alarm_contacts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), default=None, index=True
    )
    kind: Mapped[str] = mapped_column(String(16))  # email | webhook
    target: Mapped[str] = mapped_column(String(1000))
    escalation: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Incident(Base):
    """An alarm that fired, until someone resolves it; one open incident per rule and scope."""

    __tablename__ = "incidents"
    __table_args__ = (
        Index(
            "uq_incidents_open",
            "rule_id",
            "scope_key",
            unique=True,
            sqlite_where=text("resolved_at IS NULL"),
            postgresql_where=text("resolved_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    rule_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("alarm_rules.id", ondelete="CASCADE"), index=True)
    scope_key: Mapped[str] = mapped_column(String(64))
    org_id: Mapped[uuid.UUID | None] = mapped_column(default=None, index=True)
    title: Mapped[str] = mapped_column(String(300))
    severity: Mapped[str] = mapped_column(String(16))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    deadline_at: Mapped[datetime] = mapped_column()
    owner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)
    mitigated_at: Mapped[datetime | None] = mapped_column(default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0)  # of incidents.REMINDERS
    breached_at: Mapped[datetime | None] = mapped_column(default=None)


class IncidentEvent(Base):
    """One line of an incident's timeline."""

    __tablename__ = "incident_events"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column()
    kind: Mapped[str] = mapped_column(String(32))  # fired, notified, notify_failed, acknowledged, note, …
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    text: Mapped[str] = mapped_column(Text, default="")


class IncidentNotice(Base):
    """An outbox message sent about an incident, followed until it is sent or given up, so its attempts reach
    the timeline."""

    __tablename__ = "incident_notices"

    outbox_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(1000))
    purpose: Mapped[str] = mapped_column(String(32))  # fired, reminder, escalation, cleared
    attempts_seen: Mapped[int] = mapped_column(Integer, default=0)
    settled: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
