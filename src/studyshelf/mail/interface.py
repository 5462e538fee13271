"""Sending e-mail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    content_type: str = "application/octet-stream"


@dataclass(frozen=True)
class Message:
    to: str  # one address, or several separated by commas
    subject: str
    text: str
    attachments: tuple[Attachment, ...] = ()


class Mailer(Protocol):
    @property
    def enabled(self) -> bool: ...

    def send(self, message: Message) -> None:
        """Deliver the message or raise MailError."""
        ...


class MailError(Exception):
    """The message could not be handed to the mail server."""
