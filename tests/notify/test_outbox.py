"""Suspension notices go through the outbox: written with the suspension, sent after commit (by the request's
after-commit drain or the scheduler), retried with growing back-off, and never inside the viewer's transaction."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import select

from studyshelf.core.clock import MovableClock, as_utc, utcnow
from studyshelf.core.db import unit_of_work
from studyshelf.jobs.runner import JOBS, run_due_jobs
from studyshelf.mail.memory import MemoryMailer
from studyshelf.notify import service as notify
from studyshelf.notify.models import OutboxMessage
from studyshelf.services import Services, build_services
from tests.conftest import PASSWORD, Member, World
from tests.library.support import uploaded
from tests.links.support import EMBEDDED, create_link
from tests.mail_support import free_port
from tests.webhook_support import Receiver, running_receiver

NETWORKS = ("203.0.113.9", "198.51.100.9")  # two networks within the hour: over a limit of one


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as state:
        yield state


@dataclass
class Setup:
    services: Services
    world: World
    mailer: MemoryMailer
    owner: Member
    link_id: str


@pytest.fixture
def setup(services: Services, receiver: Receiver) -> Iterator[Setup]:
    local = {
        "smtp_url": "memory://",
        "outbound_allowed_networks": ["127.0.0.10/32"],
        "trusted_proxies": ["127.0.0.1/32"],  # the uvicorn test below forwards the visitors' addresses
    }
    built = build_services(services.settings.model_copy(update=local))
    try:
        world = World(built)
        owner = world.member(world.org())
        file = uploaded(owner, owner.root_folder_id, "notes.txt", b"notes")
        link = create_link(owner, file["id"], label="Biology 101").json()
        policy = owner.client.patch(
            f"/api/v1/orgs/{owner.org_id}/link-policy",
            json={"max_networks_per_hour": 1, "notify_webhook_url": receiver.url},
            headers=owner.headers(),
        )
        assert policy.status_code == 200, policy.text
        assert isinstance(built.mailer, MemoryMailer)
        yield Setup(built, world, built.mailer, owner, link["id"])
    finally:
        built.engine.dispose()


def _outbox(services: Services) -> list[OutboxMessage]:
    with unit_of_work(services.read_sessions) as db:
        return list(db.scalars(select(OutboxMessage).order_by(OutboxMessage.kind)))


def _visit(s: Setup, ip: str) -> httpx.Response:
    browser = TestClient(s.world.app, base_url="http://testserver", client=(ip, 4000))
    response: httpx.Response = browser.get(f"/v/{s.link_id}", headers=EMBEDDED)
    return response


def test_a_suspension_is_queued_with_it_and_sent_after_commit(setup: Setup, receiver: Receiver) -> None:
    receiver.answers = [503]  # the after-commit drain fails: the scheduler's drain retries
    for ip in NETWORKS:
        assert _visit(setup, ip).status_code in {200, 403}
    setup.world.app.state.sightings.flush()  # the leak radar's batch (its thread does this every second)
    email, webhook = _outbox(setup.services)
    assert (email.kind, email.target, email.event) == ("email", setup.owner.email, "link.suspended")
    assert (webhook.kind, webhook.target) == ("webhook", receiver.url)
    assert email.sent_at is not None  # the request's after-commit drain sent the e-mail …
    assert "Biology 101" in setup.mailer.sent[0].text
    assert (webhook.sent_at, webhook.attempts) == (None, 1)  # … and tried the webhook once
    assert webhook.last_error == "could not reach the webhook: HTTP 503"
    assert len(receiver.bodies) == 1
    assert "notify.outbox" in {job.name for job in JOBS}
    assert "notify.outbox" in run_due_jobs(setup.services, holder="t")
    assert len(receiver.bodies) == 1  # not due yet: back-off
    assert notify.drain(setup.services, now=utcnow() + timedelta(minutes=2)) == (1, 0)
    (_email, webhook) = _outbox(setup.services)
    assert webhook.sent_at is not None
    assert webhook.last_error == ""
    assert receiver.bodies[-1] == receiver.bodies[0]
    assert b'"event": "link.suspended"' in receiver.bodies[0]
    assert b'"reason": "used from 2 networks' in receiver.bodies[0]


def test_failures_back_off_more_each_time_and_stop_at_the_limit(setup: Setup, receiver: Receiver) -> None:
    receiver.answers = [500] * (notify.MAX_ATTEMPTS + 1)
    with unit_of_work(setup.services.write_sessions) as db:
        notify.enqueue_webhook(db, url=receiver.url, payload={"event": "test"}, event="test", now=utcnow())
    now = utcnow()
    waits = []
    for attempt in range(1, notify.MAX_ATTEMPTS + 1):
        assert notify.drain(setup.services, now=now) == (0, 1)
        (row,) = _outbox(setup.services)
        assert (row.attempts, row.last_error) == (attempt, "could not reach the webhook: HTTP 500")
        assert notify.drain(setup.services, now=row.next_attempt_at - timedelta(seconds=1)) == (0, 0)  # not yet
        waits.append(row.next_attempt_at - now)
        now = row.next_attempt_at
    assert waits == sorted(waits)
    assert waits[0] == notify.BACKOFF
    assert waits[-1] <= notify.MAX_BACKOFF
    assert waits[1] == 2 * waits[0]
    assert notify.drain(setup.services, now=now + timedelta(days=1)) == (0, 0)  # given up, the error kept
    assert len(receiver.bodies) == notify.MAX_ATTEMPTS


def test_messages_are_dated_and_due_by_the_services_clock(setup: Setup, receiver: Receiver) -> None:
    from studyshelf.delivery import radar
    from studyshelf.delivery.models import Link

    clock = MovableClock(utcnow() - timedelta(days=3))  # a clock far from the wall clock: the outbox follows it
    clocked = replace(setup.services, clock=clock)
    clock.advance(60)
    with unit_of_work(clocked.write_sessions) as db:
        link = db.get(Link, setup.link_id)
        assert link is not None
        radar.notify_suspension(clocked, db, link=link, reason="a test")
    rows = _outbox(setup.services)
    assert [(row.kind, as_utc(row.created_at), as_utc(row.next_attempt_at)) for row in rows] == [
        ("email", clock.now(), clock.now()),
        ("webhook", clock.now(), clock.now()),
    ]
    receiver.answers = [500]
    assert notify.drain(clocked, now=clock.now()) == (1, 1)  # due at the clock's time, not the wall clock's
    (_email, webhook) = _outbox(setup.services)
    assert as_utc(webhook.next_attempt_at) == clock.now() + notify.BACKOFF


def test_nothing_is_queued_when_the_suspending_transaction_rolls_back(setup: Setup) -> None:
    from studyshelf.delivery import radar
    from studyshelf.delivery.models import Link

    def suspend_then_fail() -> None:
        with unit_of_work(setup.services.write_sessions) as db:
            link = db.get(Link, setup.link_id)
            assert link is not None
            radar.notify_suspension(setup.services, db, link=link, reason="a test")
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        suspend_then_fail()
    assert _outbox(setup.services) == []


@pytest.fixture
def served(setup: Setup) -> Iterator[str]:
    """The app on a real port: background tasks run after the answer has gone, as in production."""
    port = free_port()
    config = uvicorn.Config(setup.world.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the app did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_a_receiver_that_hangs_neither_delays_the_viewer_nor_holds_the_write_lock(
    setup: Setup, receiver: Receiver, served: str
) -> None:
    receiver.hold = threading.Event()
    recorder = setup.world.app.state.sightings
    recorder.start()  # the leak radar's batch thread: it suspends the link and calls the webhook (no lifespan here)
    with contextlib.ExitStack() as stack, httpx.Client(base_url=served, timeout=30) as browser:
        stack.callback(recorder.close)
        stack.callback(receiver.hold.set)
        for ip in NETWORKS:
            started = time.monotonic()
            response = browser.get(f"/v/{setup.link_id}", headers={**EMBEDDED, "x-forwarded-for": ip})
            assert response.status_code in {200, 403}
            assert time.monotonic() - started < 3
        assert receiver.arrived.wait(timeout=10), "the webhook was not called after the answer"
        started = time.monotonic()  # the webhook call is hanging now: another user signs in meanwhile
        signed_in = browser.post("/api/v1/auth/login", json={"email": setup.owner.email, "password": PASSWORD})
        assert signed_in.status_code == 200, signed_in.text
        with unit_of_work(setup.services.write_sessions) as db:
            notify.enqueue_email(
                db, to="x@example.edu", subject="", text="a concurrent write", event="probe", now=utcnow()
            )
        assert time.monotonic() - started < 3
    receiver.hold.set()
    deadline = time.monotonic() + 15
    while not any(m.sent_at for m in _outbox(setup.services) if m.kind == "webhook"):
        assert time.monotonic() < deadline, "the held webhook call never completed"
        time.sleep(0.05)


def test_old_messages_are_forgotten_and_pending_ones_kept(setup: Setup, receiver: Receiver) -> None:
    receiver.answers = [500] * notify.MAX_ATTEMPTS
    with unit_of_work(setup.services.write_sessions) as db:
        notify.enqueue_webhook(db, url=receiver.url, payload={"n": 1}, event="test", now=utcnow())
    now = utcnow()
    assert notify.drain(setup.services, now=now) == (0, 1)
    assert notify.prune(setup.services, now=now + notify.KEEP * 2) == 0  # still to be retried
    for _ in range(notify.MAX_ATTEMPTS - 1):
        notify.drain(setup.services, now=now + timedelta(days=1))
        now += timedelta(days=1)
    (row,) = _outbox(setup.services)
    assert row.attempts == notify.MAX_ATTEMPTS
    assert notify.prune(setup.services, now=now + timedelta(days=1)) == 0  # the error is kept a while
    assert notify.prune(setup.services, now=now + notify.KEEP + timedelta(days=2)) == 1
    assert _outbox(setup.services) == []


def test_by_default_the_suspension_webhook_cannot_reach_an_internal_receiver(
    world: World, owner: Member, receiver: Receiver
) -> None:
    file = uploaded(owner, owner.root_folder_id, "notes.txt", b"notes")
    link = create_link(owner, file["id"], label="Biology 101").json()
    policy = owner.client.patch(
        f"/api/v1/orgs/{owner.org_id}/link-policy",
        json={"max_networks_per_hour": 1, "notify_webhook_url": receiver.url},  # http://127.0.0.10:…
        headers=owner.headers(),
    )
    assert policy.status_code == 200, policy.text
    for ip in NETWORKS:
        TestClient(world.app, base_url="http://testserver", client=(ip, 4000)).get(f"/v/{link['id']}", headers=EMBEDDED)
    world.app.state.sightings.flush()  # the leak radar's batch (its thread does this every second)
    (webhook,) = [m for m in _outbox(world.services) if m.kind == "webhook"]
    assert (webhook.sent_at, webhook.last_error) == (None, "could not reach the webhook: address not allowed")
    assert receiver.bodies == []


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.edu/x",
        "http://127.0.0.1.attacker.example/x",
        "ftp://hooks.example.edu/x",
        "https://u:p@h.example/x",
    ],
)
def test_a_webhook_url_is_checked_when_saved(owner: Member, url: str) -> None:
    response = owner.client.patch(
        f"/api/v1/orgs/{owner.org_id}/link-policy", json={"notify_webhook_url": url}, headers=owner.headers()
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "webhook URL" in response.json()["detail"]
