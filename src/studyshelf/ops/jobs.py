"""The scheduler's alarm job: evaluate the rules, open and follow incidents, send what that queued."""

from __future__ import annotations

from studyshelf.core.db import unit_of_work
from studyshelf.notify.service import drain
from studyshelf.ops import alarms, incidents, signals
from studyshelf.services import Services


def evaluate_alarms(services: Services, _memo: str) -> str:
    """Every minute, in one instance (the scheduler's lease): read the metrics with no write transaction open,
    then record datapoints, transitions, incidents, reminders and escalations in one transaction; the notices
    queued there are sent after its commit, and their outcomes written on the timelines."""
    now = services.clock.now()
    with unit_of_work(services.write_sessions) as db:
        alarms.ensure_default_rules(db)
    with unit_of_work(services.read_sessions) as db:
        readings = alarms.read(services, db, now=now)
    with unit_of_work(services.write_sessions) as db:
        transitions = alarms.apply(db, readings)
        for transition in transitions:
            incidents.record_transition(db, services, transition)
        notices = incidents.check_deadlines(db, services, now=now)
        signals.prune(db, now=now)
    with unit_of_work(services.read_sessions) as db:
        alarms.export_states(db)
    sent, failed = drain(services, now=now)
    with unit_of_work(services.write_sessions) as db:
        incidents.sync_notices(db, now=now)
    return (
        f"{len(readings)} readings, {len(transitions)} transitions, {notices} reminders or escalations, "
        f"{sent} sent, {failed} failed"
    )
