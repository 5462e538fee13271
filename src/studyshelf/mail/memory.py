"""A mailer that keeps what it sends (STUDYSHELF_SMTP_URL=memory://): for tests and trying the app out."""

from __future__ import annotations

import threading

from studyshelf.mail.interface import Message


class MemoryMailer:
    def __init__(self) -> None:
        self._lock = threading.Lock()  # requests, background tasks and the scheduler send from several threads
        self._sent: list[Message] = []

    @property
    def enabled(self) -> bool:
        return True

    def send(self, message: Message) -> None:
        with self._lock:
            self._sent.append(message)

    @property
    def sent(self) -> list[Message]:
        """Every message sent so far, oldest first (a copy)."""
        with self._lock:
            return list(self._sent)
