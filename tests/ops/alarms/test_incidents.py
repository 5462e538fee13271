"""Incidents: opened by a firing alarm, notified by signed webhook and SMTP (each notice linking the incident),
reminded at 50 % and 90 % of the 14 h deadline, escalated and breached when it passes, kept across a restart,
hidden from other organisations (404), and a receiver that is down retried with back-off, every failure on the
timeline, without ever holding up a request."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from studyshelf.core.clock import MovableClock
from studyshelf.core.db import unit_of_work
from studyshelf.ops import alarm_notices
from studyshelf.ops.models import IncidentEvent
from studyshelf.partners.models import OrgKind, Role
from studyshelf.services import Services
from studyshelf.settings import Settings
from tests.conftest import Member, World, make_settings
from tests.mail_support import SmtpInbox, running_smtp_inbox
from tests.ops.alarms.support import (
    ALARM_JOB,
    file_events,
    fire_5xx,
    fresh_services,
    incidents_of,
    requests_then_run,
    run_minutes,
    timeline_kinds,
    verify_signature,
)
from tests.webhook_support import Receiver

HOUR = 3600


@pytest.fixture(scope="module")
def inbox() -> Iterator[SmtpInbox]:
    """One local SMTP server for the module; each test mails its own addresses."""
    with running_smtp_inbox() as server:
        yield server


@pytest.fixture
def settings(tmp_path: Path, db_url: str, inbox: SmtpInbox) -> Settings:
    return make_settings(
        tmp_path,
        db_url,
        smtp_url=inbox.url,
        outbound_allowed_networks=["127.0.0.10/32"],
        base_url="http://shelf.example.org",
    )


def _address(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}@example.org"


def _contact(services: Services, org_id: uuid.UUID | None, kind: str, target: str, *, escalation: bool = False) -> None:
    with unit_of_work(services.write_sessions) as db:
        alarm_notices.add_contact(db, services, org_id=org_id, kind=kind, target=target, escalation=escalation)


def _mail_to(inbox: SmtpInbox, address: str) -> list[str]:
    return [str(m["Subject"]) for m in inbox.messages if str(m["To"]) == address]


def test_a_firing_alarm_opens_an_incident_and_notifies_by_signed_webhook_and_smtp(
    clocked: Services, clock: MovableClock, receiver: Receiver, inbox: SmtpInbox
) -> None:
    oncall = _address("oncall")
    _contact(clocked, None, "email", oncall)
    _contact(clocked, None, "webhook", receiver.url)

    fire_5xx(clocked, clock)

    (incident,) = incidents_of(clocked, "error_5xx")
    assert incident.deadline_at - incident.opened_at == timedelta(hours=14)
    link = f"http://shelf.example.org/settings/incidents/{incident.id}"
    (call,) = receiver.calls
    assert verify_signature(clocked, call)
    assert call.headers["x-studyshelf-event"] == "incident.fired"
    body = json.loads(call.body)
    assert body["text"].startswith("Alarm: 5xx answers above 2 % for 5 min")
    assert link in body["text"]  # Slack and Teams both show `text`
    assert body["blocks"][1]["elements"][0]["url"] == link  # Slack's button
    assert body["sections"][0]["facts"][0] == {"name": "Severity", "value": "critical"}  # Teams' MessageCard
    assert {k: body["incident"][k] for k in ("id", "url", "purpose")} == {
        "id": str(incident.id),
        "url": link,
        "purpose": "fired",
    }
    (mail,) = [m for m in inbox.messages if str(m["To"]) == oncall]  # SMTP took it before the job returned
    assert mail["Subject"] == "Alarm: 5xx answers above 2 % for 5 min"
    assert link in mail.get_content()
    assert timeline_kinds(clocked, incident.id) == ["fired", "notified", "notified"]


def test_a_tampered_body_fails_the_signature(clocked: Services, clock: MovableClock, receiver: Receiver) -> None:
    _contact(clocked, None, "webhook", receiver.url)
    fire_5xx(clocked, clock)
    (call,) = receiver.calls
    call.body = call.body.replace(b"critical", b"harmless")
    assert not verify_signature(clocked, call)


def test_reminders_at_half_and_ninety_percent_then_breach_and_escalation(
    clocked: Services, clock: MovableClock, inbox: SmtpInbox
) -> None:
    oncall, boss = _address("oncall"), _address("boss")
    _contact(clocked, None, "email", oncall)
    _contact(clocked, None, "email", boss, escalation=True)
    fire_5xx(clocked, clock)
    (incident,) = incidents_of(clocked, "error_5xx")

    def at(hours: float) -> None:
        """Move to `hours` after the incident opened (plus a few seconds) and run the job there."""
        clock.advance((incident.opened_at + timedelta(hours=hours) - clock.now()).total_seconds() + 5)
        ALARM_JOB.run(clocked, "")

    at(6.9)
    assert "reminder" not in timeline_kinds(clocked, incident.id)
    at(7)
    assert timeline_kinds(clocked, incident.id).count("reminder") == 1
    at(12.5)
    assert timeline_kinds(clocked, incident.id).count("reminder") == 1
    at(12.6)
    assert timeline_kinds(clocked, incident.id).count("reminder") == 2
    at(13.99)
    assert "breached" not in timeline_kinds(clocked, incident.id)
    at(14)
    assert {"breached", "escalated"} <= set(timeline_kinds(clocked, incident.id))
    (breached,) = incidents_of(clocked, "error_5xx")
    assert breached.breached_at is not None
    at(20)
    assert timeline_kinds(clocked, incident.id).count("breached") == 1  # recorded once
    assert _mail_to(inbox, oncall) == [
        "Alarm: 5xx answers above 2 % for 5 min",
        "Cleared: 5xx answers above 2 % for 5 min",  # no more requests: the alarm cleared, the incident stays open
        "Reminder: 5xx answers above 2 % for 5 min is not mitigated yet",
        "Reminder: 5xx answers above 2 % for 5 min is not mitigated yet",
    ]
    assert _mail_to(inbox, boss) == ["Deadline passed: 5xx answers above 2 % for 5 min"]


def test_the_deadline_follows_the_severity_setting(
    services: Services, tmp_path: Path, db_url: str, clock: MovableClock
) -> None:
    settings = make_settings(tmp_path, db_url, incident_deadline_hours_by_severity={"critical": 4})
    four_hours = fresh_services(settings, clock)
    try:
        fire_5xx(four_hours, clock)
        (incident,) = incidents_of(four_hours, "error_5xx")
        assert incident.deadline_at - incident.opened_at == timedelta(hours=4)
    finally:
        _close(four_hours)


def _close(services: Services) -> None:
    services.warehouse.close()
    services.events.close()
    services.engine.dispose()


def test_incidents_and_their_deadlines_survive_a_restart(
    services: Services, settings: Settings, clock: MovableClock
) -> None:
    first = fresh_services(settings, clock)
    try:
        fire_5xx(first, clock)
        (incident,) = incidents_of(first, "error_5xx")
    finally:
        _close(first)

    second = fresh_services(settings, clock)  # a new process over the same database
    try:
        clock.advance((incident.deadline_at - clock.now()).total_seconds() + 1)
        ALARM_JOB.run(second, "")
        (again,) = incidents_of(second, "error_5xx")
        assert again.id == incident.id
        assert again.breached_at is not None
        assert timeline_kinds(second, incident.id)[0] == "fired"
        assert timeline_kinds(second, incident.id).count("reminder") == 2
    finally:
        _close(second)


def _org_incident(services: Services, clock: MovableClock, member: Member, file_id: str) -> uuid.UUID:
    services.warehouse.insert(file_events(str(member.org_id), file_id, clock.now(), views=30, ok=5, fails=5))
    run_minutes(services, clock, 3)
    found = [i for i in incidents_of(services, "load_fail_org") if i.org_id == member.org_id]
    return found[0].id


def test_a_partner_sees_and_acts_on_its_own_incidents_only(
    clocked: Services, clock: MovableClock, inbox: SmtpInbox
) -> None:
    world = World(clocked)
    operator = world.member(world.org())
    uni = world.member(world.org("uni", OrgKind.PARTNER), Role.OWNER)
    college = world.member(world.org("college", OrgKind.PARTNER), Role.OWNER)
    uni_mail = _address("uni")
    _contact(clocked, uni.org_id, "email", uni_mail)
    file_a, file_b = str(uuid.UUID(int=0xA1)), str(uuid.UUID(int=0xB1))
    uni_incident = _org_incident(clocked, clock, uni, file_a)
    college_incident = _org_incident(clocked, clock, college, file_b)

    answer = uni.client.get("/api/v1/incidents")
    assert answer.status_code == 200, answer.text
    listed = {i["id"] for i in answer.json()}
    assert str(uni_incident) in listed
    assert str(college_incident) not in listed
    assert all(i["org_id"] == str(uni.org_id) for i in uni.client.get("/api/v1/incidents").json())
    for path in (f"/api/v1/incidents/{college_incident}", f"/api/v1/incidents/{uuid.uuid4()}"):
        assert uni.client.get(path).status_code == 404
    refused = uni.client.post(f"/api/v1/incidents/{college_incident}/acknowledge", headers=uni.headers())
    assert refused.status_code == 404
    assert refused.json()["type"] == "https://studyshelf.dev/problems/not-found"
    assert uni.client.post(f"/api/v1/incidents/{college_incident}/resolve", headers=uni.headers()).status_code == 404
    assert "acknowledged" not in timeline_kinds(clocked, college_incident)  # nothing happened to it

    acked = uni.client.post(f"/api/v1/incidents/{uni_incident}/acknowledge", headers=uni.headers())
    assert acked.status_code == 200, acked.text
    assert acked.json()["owner_id"] == str(uni.user_id)
    assert {str(uni_incident), str(college_incident)} <= {
        i["id"] for i in operator.client.get("/api/v1/incidents").json()
    }
    assert "Alarm: load_fail above 5 % over 15 min (organisation)" in {
        s.split(" — ")[0] for s in _mail_to(inbox, uni_mail)
    }


def test_the_timeline_records_acknowledge_note_mitigate_resolve_and_owner(
    clocked: Services, clock: MovableClock
) -> None:
    world = World(clocked)
    operator_org = world.org()
    operator = world.member(operator_org)
    colleague = world.member(operator_org, Role.ADMIN)
    fire_5xx(clocked, clock)
    (incident,) = incidents_of(clocked, "error_5xx")
    base = f"/api/v1/incidents/{incident.id}"
    steps = [
        ("acknowledge", {}),
        ("note", {"text": "rolling back the deploy"}),
        ("assign", {"owner_id": str(colleague.user_id)}),
        ("mitigate", {"text": "rolled back"}),
        ("resolve", {}),
    ]
    for action, body in steps:
        clock.advance(600)
        answer = operator.client.post(f"{base}/{action}", json=body, headers=operator.headers())
        assert answer.status_code == 200, answer.text
    read = operator.client.get(base).json()
    kinds = [e["kind"] for e in read["timeline"]]
    assert kinds[-5:] == ["acknowledged", "note", "assigned", "mitigated", "resolved"]
    assert read["timeline"][-4]["text"] == "rolling back the deploy"
    assert read["resolved_at"] is not None
    assert read["seconds_left"] is None
    empty = operator.client.post(f"{base}/note", json={"text": "  "}, headers=operator.headers())
    assert empty.status_code == 422
    again = operator.client.post(f"{base}/acknowledge", headers=operator.headers())
    assert again.status_code == 409


def test_monthly_time_to_acknowledge_and_mitigate_and_share_within_deadline(
    clocked: Services, clock: MovableClock
) -> None:
    world = World(clocked)
    operator_org = world.org()
    operator = world.member(operator_org)
    fire_5xx(clocked, clock, seconds=2.0)  # slow and failing: two rules, two incidents at once
    by_rule = {key: incidents_of(clocked, key)[0] for key in ("error_5xx", "latency_p95")}
    quick, slow = by_rule["error_5xx"], by_rule["latency_p95"]
    opened = quick.opened_at
    assert slow.opened_at == opened

    def act(incident_id: uuid.UUID, action: str, hours: float) -> None:
        clock.advance((opened + timedelta(hours=hours) - clock.now()).total_seconds())
        who = operator if hours < 12 else world.member(operator_org, Role.ADMIN)  # sessions last 12 h: next shift
        answer = who.client.post(f"/api/v1/incidents/{incident_id}/{action}", headers=who.headers())
        assert answer.status_code == 200, answer.text

    act(quick.id, "acknowledge", 1)
    act(quick.id, "mitigate", 2)
    act(slow.id, "acknowledge", 3)
    act(slow.id, "mitigate", 16)  # past the 14 h
    figures = world.member(operator_org, Role.ADMIN).client.get("/api/v1/incidents/figures")
    assert figures.status_code == 200, figures.text
    (month,) = figures.json()
    assert month == {
        "month": f"{opened:%Y-%m}",
        "incidents": 2,
        "mean_seconds_to_acknowledge": 2 * HOUR,
        "mean_seconds_to_mitigate": 9 * HOUR,
        "mitigated_within_deadline": 0.5,
    }
    partner = world.member(world.org("uni", OrgKind.PARTNER), Role.OWNER)
    assert partner.client.get("/api/v1/incidents/figures").status_code == 403


def test_a_receiver_that_is_down_is_retried_with_back_off_and_each_failure_goes_on_the_timeline(
    clocked: Services, clock: MovableClock, receiver: Receiver
) -> None:
    _contact(clocked, None, "webhook", receiver.url)
    receiver.answers = [503, 503, 500]
    fire_5xx(clocked, clock)
    (incident,) = incidents_of(clocked, "error_5xx")
    assert timeline_kinds(clocked, incident.id) == ["fired", "notify_failed"]

    def still_failing(minutes: int) -> None:  # the alarm stays on, so only the retries reach the receiver
        for _ in range(minutes):
            requests_then_run(clocked, clock, requests=100, errors=10)

    still_failing(1)  # one minute of back-off has passed: the second attempt
    assert timeline_kinds(clocked, incident.id).count("notify_failed") == 2
    still_failing(1)  # two minutes of back-off now: not yet
    assert len(receiver.calls) == 2
    still_failing(1)
    assert len(receiver.calls) == 3
    still_failing(4)  # four minutes later the receiver is back
    kinds = timeline_kinds(clocked, incident.id)
    assert kinds[:5] == ["fired", "notify_failed", "notify_failed", "notify_failed", "notified"]
    with unit_of_work(clocked.read_sessions) as db:
        failed = select(IncidentEvent.text).where(IncidentEvent.kind == "notify_failed").order_by(IncidentEvent.at)
        texts = list(db.scalars(failed))
    assert [t.split(": ")[1] for t in texts] == ["attempt 1 failed", "attempt 2 failed", "attempt 3 failed"]
    assert "HTTP 503" in texts[0]
    assert len({c.headers["x-studyshelf-delivery"] for c in receiver.calls}) == 1  # receivers can drop repeats


def test_a_slow_receiver_holds_no_request(clocked: Services, clock: MovableClock, receiver: Receiver) -> None:
    world = World(clocked)
    operator = world.member(world.org())
    _contact(clocked, None, "webhook", receiver.url)
    fire_5xx(clocked, clock)  # the first notice went out
    (incident,) = incidents_of(clocked, "error_5xx")
    receiver.hold = threading.Event()
    receiver.arrived.clear()
    clock.advance(7 * HOUR)  # the 50 % reminder is due
    job = threading.Thread(target=ALARM_JOB.run, args=(clocked, ""))
    job.start()
    try:
        assert receiver.arrived.wait(10)  # a notice is being delivered, and held
        answer = operator.client.post(
            f"/api/v1/incidents/{incident.id}/note", json={"text": "looking"}, headers=operator.headers()
        )
        assert answer.status_code == 200  # a write, answered while the job waits on the receiver
    finally:
        receiver.hold.set()
        job.join(20)
    assert "reminder" in timeline_kinds(clocked, incident.id)
