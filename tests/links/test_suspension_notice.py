"""A suspended link's creator is e-mailed (local SMTP server) and the organisation's webhook is called."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from studyshelf.core.db import unit_of_work
from studyshelf.delivery import links
from studyshelf.services import Services, build_services
from tests.conftest import World
from tests.library.support import uploaded
from tests.links.support import create_link


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(envelope.content)
        return "250 OK"


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()


def test_suspension_emails_the_creator_and_calls_the_webhook(
    services: Services, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = webhook
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    mailing = build_services(services.settings.model_copy(update={"smtp_url": f"smtp://127.0.0.1:{controller.port}"}))
    try:
        world = World(mailing)
        owner = world.member(world.org())
        file = uploaded(owner, owner.root_folder_id, "notes.txt", b"notes")
        link = create_link(owner, file["id"], label="Biology 101").json()
        policy = owner.client.patch(
            f"/api/v1/orgs/{owner.org_id}/link-policy",
            json={"max_networks_per_hour": 1, "notify_webhook_url": url},
            headers=owner.headers(),
        )
        assert policy.status_code == 200, policy.text
        for network in ("203.0.113.9", "198.51.100.9"):
            fact = links.VisitFacts(
                visitor=links.Visitor(ip=network, salt="s"), own_origin="http://testserver", user_agent="Mozilla/5.0"
            )
            with unit_of_work(mailing.write_sessions) as db:
                admission = links.admit_visit(db, link_id=link["id"], facts=fact)
                if admission.suspended_now:
                    links.notify_suspension(mailing, db, link=admission.link, reason=admission.suspended_now)  # type: ignore[arg-type]
        deadline = time.monotonic() + 5
        while not inbox.messages and time.monotonic() < deadline:
            time.sleep(0.05)
        assert inbox.messages, "the creator was not e-mailed"
        assert b"Biology 101" in inbox.messages[0]
        assert received == [
            {"event": "link.suspended", "link_id": link["id"], "label": "Biology 101", "reason": received[0]["reason"]}
        ]
        assert "networks" in received[0]["reason"]
    finally:
        controller.stop()
        mailing.engine.dispose()
