"""Alarm rules, their states, and the evaluation the scheduler runs every minute.

A rule compares a metric (ops/alarm_metrics.py), aggregated over `window_minutes`, with a threshold once a
minute. It fires (OK → ALARM) when `datapoints_to_alarm` (M) of the last `datapoints` (N) minutes breach, and
clears (ALARM → OK) once M minutes in a row do not: one bad minute pages no one, and one good minute does not
end an alarm. A minute without data (no requests, a file no one opened) never breaches, so it helps an alarm
clear but never fires one. Each transition is returned to the caller (the alarm job),
which opens or updates the incident in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from studyshelf.core.db import insert_missing
from studyshelf.core.errors import Invalid, NotFound
from studyshelf.ops import metrics
from studyshelf.ops.alarm_metrics import FILE, GLOBAL, METRICS, ORGANISATION, Sample, Window
from studyshelf.ops.models import AlarmRule, AlarmState
from studyshelf.services import Services
from studyshelf.web.i18n import N_

OK = N_("OK")  # states and severities: stored as they are, translated where shown (ops/alarms_pages.py)
ALARM = N_("ALARM")
COMPARISONS = (">", ">=", "<", "<=")
SEVERITIES = (N_("critical"), N_("warning"))
MAX_WINDOW_MINUTES = 24 * 60
MAX_DATAPOINTS = 60
MAX_MIN_VIEWS = 1_000_000


@dataclass(frozen=True)
class RuleDefault:
    key: str
    name: str
    metric: str
    scope: str
    comparison: str
    threshold: float
    window_minutes: int
    datapoints: int
    datapoints_to_alarm: int
    severity: str = "critical"
    min_views: int = 20


# Issue 17, point 3. The names are stored with each rule; the Alarms page translates the ones written here.
DEFAULT_RULES = (
    RuleDefault("latency_p95", N_("p95 latency above 1 s for 5 min"), "latency_p95_seconds", GLOBAL, ">", 1.0, 1, 5, 5),
    RuleDefault("error_5xx", N_("5xx answers above 2 % for 5 min"), "error_5xx_rate", GLOBAL, ">", 0.02, 1, 5, 5),
    RuleDefault("load_fail", N_("load_fail above 5 % over 15 min"), "load_fail_rate", GLOBAL, ">", 0.05, 15, 3, 3),
    RuleDefault(
        "load_fail_org",
        N_("load_fail above 5 % over 15 min (organisation)"),
        "load_fail_rate",
        ORGANISATION,
        ">",
        0.05,
        15,
        3,
        3,
    ),
    RuleDefault(
        "load_fail_file",
        N_("load_fail above 5 % over 15 min (file)"),
        "load_fail_rate",
        FILE,
        ">",
        0.05,
        15,
        3,
        3,
        severity="warning",
    ),
    RuleDefault("ingest_lag", N_("event ingest lag above 60 s"), "ingest_lag_seconds", GLOBAL, ">", 60, 1, 3, 2),
    RuleDefault("disk_free", N_("free disk below 10 %"), "disk_free_ratio", GLOBAL, "<", 0.10, 1, 3, 2),
    RuleDefault("backup_lag", N_("backup replication lag above 60 s"), "backup_lag_seconds", GLOBAL, ">", 60, 1, 3, 2),
    RuleDefault(
        "backup_verify",
        N_("last verified backup older than its daily schedule"),
        "backup_verify_age_hours",
        GLOBAL,
        ">",
        26,
        1,
        3,
        2,
        severity="warning",
    ),
    RuleDefault(
        "link_suspension",
        N_("a link suspended by the leak radar"),
        "link_suspensions",
        ORGANISATION,
        ">",
        0,
        60,
        1,
        1,
        severity="warning",
    ),
)


def ensure_default_rules(db: Session) -> None:
    """Make the default rules exist (once; an operator's later changes are kept)."""
    for rule in DEFAULT_RULES:
        values = vars(rule) | {"id": uuid.uuid5(uuid.NAMESPACE_URL, f"studyshelf:alarm:{rule.key}"), "enabled": True}
        insert_missing(db, AlarmRule, values)
    db.flush()


def list_rules(db: Session) -> list[AlarmRule]:
    ensure_default_rules(db)
    return list(db.scalars(select(AlarmRule).order_by(AlarmRule.metric, AlarmRule.scope, AlarmRule.key)))


def get_rule(db: Session, rule_id: uuid.UUID) -> AlarmRule:
    rule = db.get(AlarmRule, rule_id)
    if rule is None:
        raise NotFound("No such alarm rule.")
    return rule


def _whole_number(merged: dict[str, object], field: str, low: int, high: int, message: str) -> int:
    value = merged[field]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Invalid.for_field(field, message)
    return value


def update_rule(db: Session, rule: AlarmRule, *, changes: dict[str, object], now: datetime) -> AlarmRule:
    """Apply checked changes to a rule; Invalid names the first field refused. A new metric or scope starts the
    rule's states afresh."""
    fields = ("metric", "scope", "threshold", "comparison", "window_minutes", "datapoints", "datapoints_to_alarm")
    merged = {name: getattr(rule, name) for name in (*fields, "min_views", "severity")} | changes
    metric = str(merged["metric"])
    if metric not in METRICS:
        raise Invalid.for_field("metric", f"Unknown metric {metric!r}; known: {', '.join(sorted(METRICS))}.")
    spec = METRICS[metric]
    if merged["scope"] not in spec.scopes:
        raise Invalid.for_field("scope", f"{metric} can be watched {', '.join(spec.scopes)}, not {merged['scope']!r}.")
    threshold = merged["threshold"]
    if not isinstance(threshold, int | float) or not 0 <= threshold <= spec.maximum:
        raise Invalid.for_field(
            "threshold", f"The threshold of {metric} must be between 0 and {spec.maximum:g} {spec.unit}."
        )
    if merged["comparison"] not in COMPARISONS:
        raise Invalid.for_field("comparison", f"The comparison must be one of {' '.join(COMPARISONS)}.")
    _whole_number(
        merged, "window_minutes", 1, MAX_WINDOW_MINUTES, f"The window must be 1 to {MAX_WINDOW_MINUTES} minutes."
    )
    datapoints = _whole_number(merged, "datapoints", 1, MAX_DATAPOINTS, f"Datapoints must be 1 to {MAX_DATAPOINTS}.")
    _whole_number(
        merged, "datapoints_to_alarm", 1, datapoints, f"Datapoints to alarm must be 1 to the datapoints ({datapoints})."
    )
    _whole_number(merged, "min_views", 1, MAX_MIN_VIEWS, f"Minimum views must be 1 to {MAX_MIN_VIEWS}.")
    if merged["severity"] not in SEVERITIES:
        raise Invalid.for_field("severity", f"The severity must be one of {', '.join(SEVERITIES)}.")
    if (metric, merged["scope"]) != (rule.metric, rule.scope):
        db.execute(delete(AlarmState).where(AlarmState.rule_id == rule.id))
    for name, value in changes.items():
        setattr(rule, name, value)
    rule.updated_at = now
    db.flush()
    return rule


def breaches(rule: AlarmRule, value: float) -> bool:
    threshold = rule.threshold
    return {
        ">": value > threshold,
        ">=": value >= threshold,
        "<": value < threshold,
        "<=": value <= threshold,
    }[rule.comparison]


@dataclass(frozen=True)
class Transition:
    rule: AlarmRule
    state: AlarmState
    to: str  # ALARM or OK
    at: datetime
    value: float | None


def _kept(rule: AlarmRule) -> int:
    """How many datapoints a state keeps."""
    return max(rule.datapoints, rule.datapoints_to_alarm)


def _step(rule: AlarmRule, state: AlarmState, mark: str, value: float | None, at: datetime) -> Transition | None:
    """Add one minute's datapoint (1 breaching, 0 not, - no data) and move the state if it must."""
    state.recent = (state.recent + mark)[-_kept(rule) :]
    state.evaluated_minute = at
    if value is not None:
        state.value = value
    needed = rule.datapoints_to_alarm
    last = state.recent[-rule.datapoints :]
    if state.state == OK and last.count("1") >= needed:
        state.state, state.since = ALARM, at
        return Transition(rule, state, ALARM, at, value)
    if state.state == ALARM and len(state.recent) >= needed and "1" not in state.recent[-needed:]:
        state.state, state.since = OK, at
        return Transition(rule, state, OK, at, value)
    return None


def _minutes(rule: AlarmRule, last: datetime | None, now_minute: datetime, windowed: bool) -> list[datetime]:
    """The minutes to evaluate: every one since the last evaluation (at most N) for windowed metrics, else now."""
    if not windowed or last is None:
        return [now_minute] if last is None or last < now_minute else []
    count = min(int((now_minute - last).total_seconds() // 60), _kept(rule))
    return [now_minute - timedelta(minutes=back) for back in range(count - 1, -1, -1)]


@dataclass(frozen=True)
class Reading:
    """A rule's samples for one minute."""

    rule_id: uuid.UUID
    minute: datetime
    samples: dict[str, Sample]


def read(services: Services, db: Session, *, now: datetime) -> list[Reading]:
    """Read every enabled rule's metric for the minutes it has not seen yet (no writes: call it in a read session,
    so slow readers — the warehouse, the backup location — never hold the database's write lock)."""
    now_minute = now.replace(second=0, microsecond=0)
    readings = []
    shared: dict[Hashable, object] = {}  # what readers have read in this run, for the rules that read it again
    for rule in db.scalars(select(AlarmRule).where(AlarmRule.enabled.is_(True)).order_by(AlarmRule.key)):
        spec = METRICS.get(rule.metric)
        if spec is None:
            continue
        last = db.scalar(select(func.max(AlarmState.evaluated_minute)).where(AlarmState.rule_id == rule.id))
        for minute in _minutes(rule, last, now_minute, spec.windowed):
            window = Window(end=minute, minutes=rule.window_minutes, min_views=rule.min_views, shared=shared)
            readings.append(Reading(rule.id, minute, spec.reader(services, db, window, rule.scope)))
    return readings


def apply(db: Session, readings: list[Reading]) -> list[Transition]:
    """Add the readings' datapoints to the states; return the transitions (the caller records incidents)."""
    transitions: list[Transition] = []
    states: dict[uuid.UUID, dict[str, AlarmState]] = {}
    for reading in readings:
        rule = db.get(AlarmRule, reading.rule_id)
        if rule is None or not rule.enabled:
            continue
        if rule.id not in states:
            rows = db.scalars(select(AlarmState).where(AlarmState.rule_id == rule.id))
            states[rule.id] = {state.scope_key: state for state in rows}
        known = states[rule.id]
        for key in sorted(set(reading.samples) | set(known)):
            state = known.get(key)
            if state is not None and state.evaluated_minute is not None and state.evaluated_minute >= reading.minute:
                continue  # read twice (a slow run overlapping the next): each minute counts once
            if state is None:
                first = reading.samples[key]
                state = AlarmState(
                    rule_id=rule.id, scope_key=key, org_id=first.org_id, state=OK, since=reading.minute, recent=""
                )
                db.add(state)
                known[key] = state
            sample = reading.samples.get(key)
            mark = "-" if sample is None else "1" if breaches(rule, sample.value) else "0"
            moved = _step(rule, state, mark, None if sample is None else sample.value, reading.minute)
            if moved is not None:
                transitions.append(moved)
            elif key and state.state == OK and state.recent == "-" * len(state.recent) == "-" * _kept(rule):
                db.delete(state)  # an organisation or file without data for N minutes: nothing to remember
                del known[key]
    db.flush()
    return transitions


def export_states(db: Session) -> int:
    """Set `studyshelf_alarm_state` (0 OK, 1 ALARM) for every rule and scope the engine keeps; return how many.

    The scope label is `global` or the organisation's or file's id: only scopes with a state row, which the engine
    forgets after N minutes without data, so the series stay as few as the states."""
    rows = list_states(db, org_ids=None)
    for rule, state in rows:
        metrics.ALARM_STATE.labels(rule.key, state.scope_key or GLOBAL).set(1 if state.state == ALARM else 0)
    return len(rows)


def list_states(db: Session, *, org_ids: list[uuid.UUID] | None) -> list[tuple[AlarmRule, AlarmState]]:
    """Every rule's states (only those of `org_ids` when given: a partner's view)."""
    query = select(AlarmRule, AlarmState).join(AlarmState, AlarmState.rule_id == AlarmRule.id)
    if org_ids is not None:
        query = query.where(AlarmState.org_id.in_(org_ids))
    rows = db.execute(query.order_by(AlarmState.state, AlarmRule.key, AlarmState.scope_key))
    return [(rule, state) for rule, state in rows]
