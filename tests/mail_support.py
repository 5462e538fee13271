"""One local SMTP server for the tests where the SMTP wire is the point (aiosmtpd on a free loopback port)."""

from __future__ import annotations

import asyncio
import email
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

from aiosmtpd.controller import Controller


class SmtpInbox:
    """Keeps every message the server receives, parsed; `on_message` (if set) runs at each receipt, in a
    thread of its own, and its answers are kept in `noted` — e.g. what another connection saw then."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[EmailMessage] = []
        self.on_message: Callable[[], object] | None = None
        self.noted: list[object] = []

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        if self.on_message is not None:
            self.noted.append(await asyncio.to_thread(self.on_message))
        message = email.message_from_bytes(envelope.content, policy=default_policy)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"

    def wait_for(self, count: int, *, timeout: float = 5.0) -> list[EmailMessage]:
        """The messages once `count` have arrived (sent from a background task), or what came by the timeout."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.messages)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def running_smtp_inbox() -> Iterator[SmtpInbox]:
    inbox = SmtpInbox(free_port())
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()
