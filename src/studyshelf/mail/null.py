"""No mail server configured: nothing is sent, and callers show links in the UI instead."""

from __future__ import annotations

from studyshelf.mail.interface import Message


class NullMailer:
    @property
    def enabled(self) -> bool:
        return False

    def send(self, message: Message) -> None:
        return None
