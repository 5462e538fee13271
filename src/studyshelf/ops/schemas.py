"""API shapes of alarms, contacts and incidents."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class AlarmRuleRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    key: str
    name: str
    metric: str
    scope: str
    comparison: str
    threshold: float
    window_minutes: int
    datapoints: int
    datapoints_to_alarm: int
    min_views: int
    enabled: bool
    severity: str
    updated_at: datetime


class AlarmRuleUpdate(BaseModel):
    """Any of a rule's settings; each is checked against its metric (unknown metrics, absurd values: 422)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    metric: str | None = None
    scope: str | None = None
    comparison: str | None = None
    threshold: float | None = Field(default=None, allow_inf_nan=False)
    window_minutes: int | None = None
    datapoints: int | None = None
    datapoints_to_alarm: int | None = None
    min_views: int | None = None
    enabled: bool | None = None
    severity: str | None = None


class AlarmStateRead(BaseModel):
    rule_id: uuid.UUID
    rule_key: str
    name: str
    metric: str
    scope: str
    scope_key: str
    org_id: uuid.UUID | None
    state: Literal["OK", "ALARM"]
    since: datetime
    value: float | None
    recent: str = Field(description="the last datapoints, newest last: 1 breaching, 0 not, - no data")


class ContactCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org_id: uuid.UUID | None = Field(default=None, description="null: the operator's contacts (global alarms)")
    kind: Literal["email", "webhook"]
    target: str = Field(min_length=1, max_length=1000)
    escalation: bool = Field(default=False, description="hears when an incident's deadline passes")


class ContactRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    org_id: uuid.UUID | None
    kind: str
    target: str
    escalation: bool
    created_at: datetime


class IncidentEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    kind: str
    actor_id: uuid.UUID | None
    text: str


class IncidentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    rule_id: uuid.UUID
    scope_key: str
    org_id: uuid.UUID | None
    title: str
    severity: str
    opened_at: datetime
    deadline_at: datetime
    owner_id: uuid.UUID | None
    acknowledged_at: datetime | None
    mitigated_at: datetime | None
    resolved_at: datetime | None
    breached_at: datetime | None
    seconds_left: float | None = Field(
        default=None, description="to the deadline (negative: past it); null once mitigated"
    )
    timeline: list[IncidentEventRead] | None = None


class IncidentAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(default="", max_length=2000)
    owner_id: uuid.UUID | None = None


class MonthFiguresRead(BaseModel):
    month: str
    incidents: int
    mean_seconds_to_acknowledge: float | None
    mean_seconds_to_mitigate: float | None
    mitigated_within_deadline: float | None
