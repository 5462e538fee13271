"""Structured logs: one JSON access line per request with its id, and no personal data unless asked for."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from studyshelf.app import create_app
from studyshelf.core.logs import configure_logging, drop_personal_data
from studyshelf.web.errors import loggable_path
from tests.conftest import PASSWORD, World
from tests.html import parse_html
from tests.links.support import EMBEDDED, create_link, link_path

TEACHER_IP = "203.0.113.7"
LEARNER_IP = "2001:db8::42"
INVITEE = "new.colleague@example.edu"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/133.0 StudyShelfTestAgent"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The process's log lines as JSON, for the length of a test (the root logger is restored after)."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    stream = io.StringIO()
    configure_logging(log_format="json", stream=stream)
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def access_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [line for line in lines(stream) if line["logger"] == "studyshelf.access"]


def test_a_session_is_logged_by_request_id_without_addresses_agents_emails_or_secrets(
    world: World, captured: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = world.org()
    teacher = world.member(org)
    captured.truncate(0)
    captured.seek(0)
    browser = TestClient(world.app, base_url="http://testserver", client=(TEACHER_IP, 4000))
    browser.headers["user-agent"] = BROWSER
    answers: list[httpx.Response] = []
    wrong = browser.post("/api/v1/auth/login", json={"email": teacher.email, "password": "not it"})
    signed_in = browser.post("/api/v1/auth/login", json={"email": teacher.email, "password": PASSWORD})
    csrf = {"X-CSRF-Token": signed_in.json()["csrf_token"]}
    upload = browser.post(
        f"/api/v1/folders/{teacher.root_folder_id}/files",
        files={"file": ("notes.txt", b"lecture notes", "text/plain")},
        headers=csrf,
    )
    link = create_link(teacher, upload.json()["id"])
    learner = TestClient(world.app, base_url="http://testserver", client=(LEARNER_IP, 5000))
    page = learner.get(link_path(link), headers={**EMBEDDED, "user-agent": BROWSER})
    token = parse_html(page).attr("[data-beacon-token]", "data-beacon-token")
    beacon = {"token": token, "type": "load_ok", "seq": 0, "t": int(time.time() * 1000), "load_ms": 300}
    sent = learner.post("/api/v1/events", json=beacon, headers={"user-agent": BROWSER})
    answers = [wrong, signed_in, upload, link, page, sent]
    assert [a.status_code for a in answers] == [401, 200, 201, 201, 200, 204]

    logged = access_lines(captured)
    assert [line["request_id"] for line in logged] == [a.headers["x-request-id"] for a in answers]
    assert [line["route"] for line in logged] == [
        "/api/v1/auth/login",
        "/api/v1/auth/login",
        "/api/v1/folders/{folder_id}/files",
        "/api/v1/links",
        "/v/{link_id}",
        "/api/v1/events",
    ]
    assert all({"method", "status", "duration_ms", "bytes", "timestamp", "level"} <= line.keys() for line in logged)
    assert logged[2]["org_id"] == str(org.id)  # the session acts in its organisation
    assert logged[4]["bytes"] == len(page.content)

    # Secrets in paths and answers: an API token, an invitation's link, failing pages on secret paths.
    made = browser.post("/api/v1/auth/tokens", json={"name": "ci"}, headers=csrf)
    assert made.status_code == 201, made.text
    api_token = made.json()["token"]
    invited = TestClient(world.app, base_url="http://testserver", client=(TEACHER_IP, 4000)).post(
        f"/api/v1/orgs/{org.id}/invitations",
        json={"email": INVITEE, "role": "editor"},
        headers={"Authorization": f"Bearer {api_token}"},
    )
    assert invited.status_code == 201, invited.text
    secret = invited.json()["url"].rsplit("/", 1)[-1]

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the invitation page broke")

    monkeypatch.setattr("studyshelf.partners.pages._invitation_page", broken)
    failing = TestClient(world.app, base_url="http://testserver", raise_server_exceptions=False)
    assert failing.get(f"/invitations/{secret}", headers={"accept": "text/html"}).status_code == 500
    media = failing.get(f"/m/{api_token}/{secret}")  # a made-up signed media URL: refused, nothing logged raw
    assert media.status_code in {403, 404}
    errors = [line for line in lines(captured) if line["logger"] == "studyshelf.errors"]
    assert [line["event"] for line in errors] == ["unhandled error on GET /invitations/{secret}"]
    text = captured.getvalue()
    for personal in (TEACHER_IP, LEARNER_IP, teacher.email, INVITEE, BROWSER, "testclient", api_token, secret):
        assert personal not in text
    assert link.json()["id"] not in text  # a link's id is its capability: routes are logged by template


def test_an_error_on_a_path_no_route_matched_logs_only_its_first_segment() -> None:
    from starlette.requests import Request

    def request(path: str) -> Request:
        return Request({"type": "http", "method": "GET", "path": path, "headers": [], "query_string": b""})

    assert loggable_path(request("/m/k1.c2lnbmF0dXJl/file.pdf")) == "/m/…"
    assert loggable_path(request("/a-very-long-secret-token-in-front/x")) == "/…"
    assert loggable_path(request("/")) == "/…"


def test_every_line_written_during_a_request_carries_its_id(world: World, captured: io.StringIO) -> None:
    def noisy() -> dict[str, str]:
        logging.getLogger("studyshelf.test").warning("mail to someone@example.org from 198.51.100.4 bounced")
        return {"ok": "yes"}

    world.app.add_api_route("/test-noisy", noisy)
    answer = TestClient(world.app).get("/test-noisy", headers={"X-Request-ID": "proxy-given-id-123"})
    assert answer.headers["x-request-id"] == "proxy-given-id-123"
    (inside,) = [line for line in lines(captured) if line["logger"] == "studyshelf.test"]
    assert inside["request_id"] == "proxy-given-id-123"
    assert inside["event"] == "mail to [email] from [ip] bounced"


def test_a_malformed_incoming_request_id_is_replaced(world: World, captured: io.StringIO) -> None:
    answer = TestClient(world.app).get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    generated = answer.headers["x-request-id"]
    assert generated != "bad id\twith spaces"
    assert generated[14] == "7"  # a UUIDv7 (core/ids.py)
    assert access_lines(captured)[-1]["request_id"] == generated


def test_personal_data_is_logged_only_when_the_setting_asks(world: World, captured: io.StringIO) -> None:
    settings = world.services.settings.model_copy(update={"log_personal_data": True})
    configure_logging(log_format="json", personal_data=True, stream=captured)
    app = create_app(services=replace(world.services, settings=settings))
    TestClient(app, client=(TEACHER_IP, 4000)).get("/healthz", headers={"user-agent": BROWSER})
    line = access_lines(captured)[-1]
    assert (line["client_ip"], line["user_agent"]) == (TEACHER_IP, BROWSER)


def test_redaction_keeps_times_and_versions_but_not_addresses() -> None:
    event = {
        "event": "at 12:30:05 v1.2.3 from 10.1.2.3 and [fe80::1] for a.b+c@mail.example.com",
        "client_ip": "10.1.2.3",
        "user_agent": "curl/8",
        "email": "x@example.com",
        "hops": ["192.0.2.1", "ok"],
        "count": 3,
    }
    cleaned = drop_personal_data(None, "info", event)
    assert cleaned == {
        "event": "at 12:30:05 v1.2.3 from [ip] and [[ip]] for [email]",
        "hops": ["[ip]", "ok"],
        "count": 3,
    }


def test_a_terminal_gets_readable_lines_and_a_pipe_json() -> None:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        readable, piped = io.StringIO(), io.StringIO()
        configure_logging(log_format="console", stream=readable)
        logging.getLogger("studyshelf.test").info("hello %s", "there")
        configure_logging(log_format="auto", stream=piped)  # replaces the handler it installed before
        logging.getLogger("studyshelf.test").info("hello %s", "there")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert "hello there" in readable.getvalue()
    with pytest.raises(json.JSONDecodeError):
        json.loads(readable.getvalue())
    assert json.loads(piped.getvalue())["event"] == "hello there"
