"""Sending daily reports: e-mail through a local SMTP server, webhook to a local HTTP server, once, with retries."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from studyshelf.analytics.reports.daily import today_in
from studyshelf.analytics.reports.delivery import LOOKBACK_DAYS, MAX_ATTEMPTS, deliver_due
from studyshelf.analytics.reports.models import ReportDelivery
from studyshelf.analytics.reports.org_settings import webhook_secret
from studyshelf.core.db import unit_of_work
from studyshelf.jobs.runner import run_due_jobs
from studyshelf.services import Services, build_services
from tests.analytics.reports_support import Shelf, mark_rolled, shelf
from tests.conftest import Member, World
from tests.mail_support import SmtpInbox, free_port


@dataclass
class Hook:
    """A local webhook receiver that answers the statuses queued in `answers` (then 204)."""

    url: str
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)


@pytest.fixture
def hook() -> Iterator[Hook]:
    state = Hook(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(state.answers.pop(0) if state.answers else 204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/reports"
    yield state
    server.shutdown()
    server.server_close()


@dataclass
class Mailing:
    services: Services
    world: World
    inbox: SmtpInbox


@pytest.fixture
def mailing(services: Services, smtp_inbox: SmtpInbox) -> Iterator[Mailing]:
    local = {"smtp_url": smtp_inbox.url, "outbound_allowed_networks": ["127.0.0.0/8"]}
    built = build_services(services.settings.model_copy(update=local))
    try:
        yield Mailing(built, World(built), smtp_inbox)
    finally:
        built.engine.dispose()


def _configure(member: Member, *, emails: list[str] | None = None, webhook: str = "", tz: str = "UTC") -> None:
    body = {"time_zone": tz, "emails": emails or [], "webhook_url": webhook}
    response = member.client.put(f"/api/v1/orgs/{member.org_id}/report-settings", json=body, headers=member.headers())
    assert response.status_code == 200, response.text


def _deliveries(services: Services) -> list[ReportDelivery]:
    with unit_of_work(services.read_sessions) as db:
        return list(db.scalars(select(ReportDelivery).order_by(ReportDelivery.day)))


def _yesterday_shelf(world: World) -> Shelf:
    return shelf(world, day=today_in("UTC", world.services.clock.now()) - timedelta(days=1))


def test_a_ready_day_is_emailed_with_its_csv_and_posted_signed_to_the_webhook(mailing: Mailing, hook: Hook) -> None:
    s = _yesterday_shelf(mailing.world)
    _configure(s.p.publisher, emails=["dean@example.edu", "data@example.edu"], webhook=hook.url)
    assert deliver_due(mailing.services, "") == "1 reports delivered, 0 failed"

    (message,) = mailing.inbox.messages
    day = today_in("UTC", mailing.services.clock.now()) - timedelta(days=1)
    assert message["To"] == "dean@example.edu, data@example.edu"
    assert message["Subject"] == f"Publisher: StudyShelf report for {day:%d %b %Y}"
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "Views: 10" in text
    assert "Failed loads: 2 of 8 (25.0%)" in text
    assert "1 × =cmd.pdf" in text
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_filename() == f"studyshelf-report-publisher-{day.isoformat()}.csv"
    csv_text = attachment.get_payload(decode=True).decode("utf-8-sig")  # type: ignore[union-attr]  # a decoded leaf part is bytes
    assert csv_text.startswith("day,section,key,name,path,owner,views")
    assert "'=cmd.pdf" in csv_text

    ((headers, raw),) = hook.received
    assert headers["content-type"] == "application/json"
    assert headers["x-studyshelf-event"] == "report.daily"
    secret = webhook_secret(mailing.services.keys, s.p.operator.id)
    assert headers["x-studyshelf-signature"] == "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    report = json.loads(raw)
    assert (report["day"], report["totals"]["views"], len(report["files"])) == (day.isoformat(), 10, 2)

    (delivery,) = _deliveries(mailing.services)
    assert (delivery.org_id, delivery.day, delivery.attempts, delivery.last_error) == (s.p.operator.id, day, 1, "")
    assert delivery.sent_at is not None
    assert headers["x-studyshelf-delivery"] == str(delivery.id)


def test_running_twice_sends_once(mailing: Mailing, hook: Hook) -> None:
    s = _yesterday_shelf(mailing.world)
    _configure(s.p.publisher, emails=["dean@example.edu"], webhook=hook.url)
    assert deliver_due(mailing.services, "") == "1 reports delivered, 0 failed"
    assert deliver_due(mailing.services, "") == "0 reports delivered, 0 failed"
    assert (len(mailing.inbox.messages), len(hook.received), len(_deliveries(mailing.services))) == (1, 1, 1)


def test_a_failed_webhook_is_retried_without_e_mailing_again(mailing: Mailing, hook: Hook) -> None:
    s = _yesterday_shelf(mailing.world)
    _configure(s.p.publisher, emails=["dean@example.edu"], webhook=hook.url)
    hook.answers = [500]
    assert deliver_due(mailing.services, "") == "0 reports delivered, 1 failed"
    (delivery,) = _deliveries(mailing.services)
    assert (delivery.sent_at, delivery.attempts) == (None, 1)
    assert delivery.last_error == "email: sent\nwebhook: could not reach the webhook: HTTP 500"
    listing = s.p.publisher.client.get("/api/v1/analytics/reports", params={"org_id": str(s.p.operator.id)}).json()
    assert listing["days"][1]["delivery"] == {"sent_at": None, "attempts": 1, "last_error": delivery.last_error}

    assert deliver_due(mailing.services, "") == "1 reports delivered, 0 failed"
    (delivery,) = _deliveries(mailing.services)
    assert (delivery.attempts, delivery.last_error) == (2, "")
    assert delivery.sent_at is not None
    assert (len(mailing.inbox.messages), len(hook.received)) == (1, 2)
    assert hook.received[0][0]["x-studyshelf-delivery"] == hook.received[1][0]["x-studyshelf-delivery"]


def test_an_unreachable_webhook_is_an_error_not_a_crash(mailing: Mailing) -> None:
    s = _yesterday_shelf(mailing.world)
    _configure(s.p.publisher, webhook=f"http://127.0.0.1:{free_port()}/gone")
    assert deliver_due(mailing.services, "") == "0 reports delivered, 1 failed"
    (delivery,) = _deliveries(mailing.services)
    assert delivery.last_error.startswith("webhook: could not reach the webhook")


def test_attempts_stop_at_the_limit_and_saving_the_settings_starts_again(world: World) -> None:
    s = _yesterday_shelf(world)  # this app has no mail server
    _configure(s.p.publisher, emails=["dean@example.edu"])
    for _ in range(MAX_ATTEMPTS + 2):
        deliver_due(world.services, "")
    (delivery,) = _deliveries(world.services)
    assert (delivery.attempts, delivery.sent_at) == (MAX_ATTEMPTS, None)
    assert "no mail server is configured" in delivery.last_error
    assert deliver_due(world.services, "") == "0 reports delivered, 0 failed"
    _configure(s.p.publisher, emails=["registrar@example.edu"])
    assert deliver_due(world.services, "") == "0 reports delivered, 1 failed"
    assert _deliveries(world.services)[0].attempts == 1


def test_only_finished_recent_days_of_organisations_with_a_destination_are_due(mailing: Mailing, hook: Hook) -> None:
    today = today_in("UTC", mailing.services.clock.now())
    s = shelf(mailing.world, day=today - timedelta(days=LOOKBACK_DAYS + 2))  # too old to send now
    mark_rolled(mailing.services, day=today - timedelta(days=2))
    mark_rolled(mailing.services, day=today)  # cannot be complete: never sent
    assert deliver_due(mailing.services, "") == "0 reports delivered, 0 failed"  # nobody asked for reports
    _configure(s.p.publisher, webhook=hook.url)
    assert deliver_due(mailing.services, "") == "1 reports delivered, 0 failed"
    assert [json.loads(body)["day"] for _, body in hook.received] == [(today - timedelta(days=2)).isoformat()]


def test_days_follow_each_organisations_time_zone(mailing: Mailing, hook: Hook) -> None:
    s = _yesterday_shelf(mailing.world)
    tz = "Pacific/Kiritimati"  # UTC+14: its yesterday may be UTC's today
    _configure(s.p.publisher, webhook=hook.url, tz=tz)
    yesterday = today_in(tz, mailing.services.clock.now()) - timedelta(days=1)
    mark_rolled(mailing.services, tz=tz, day=yesterday)
    assert deliver_due(mailing.services, "") == "1 reports delivered, 0 failed"
    report = json.loads(hook.received[0][1])
    assert (report["time_zone"], report["day"], report["totals"]["views"]) == (tz, yesterday.isoformat(), 0)


def test_the_scheduler_runs_the_delivery_job(mailing: Mailing, hook: Hook) -> None:
    s = _yesterday_shelf(mailing.world)
    _configure(s.p.publisher, webhook=hook.url)
    assert "analytics.reports" in run_due_jobs(mailing.services)
    assert len(hook.received) == 1


def test_a_webhook_on_an_internal_address_is_not_called_by_default(world: World, hook: Hook) -> None:
    s = _yesterday_shelf(world)  # this app allows no internal network: the receiver on 127.0.0.1 is off limits
    _configure(s.p.publisher, webhook=hook.url)
    assert deliver_due(world.services, "") == "0 reports delivered, 1 failed"
    (delivery,) = _deliveries(world.services)
    assert delivery.last_error == "webhook: could not reach the webhook: address not allowed"
    assert hook.received == []
