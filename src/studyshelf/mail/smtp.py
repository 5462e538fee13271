"""E-mail through an SMTP server named by STUDYSHELF_SMTP_URL: smtp://[user:pass@]host[:port][?starttls=1&from=…]."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlparse

from studyshelf.mail.interface import MailError, Message


class SmtpMailer:
    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in {"smtp", "smtps"}:
            raise ValueError("STUDYSHELF_SMTP_URL must start with smtp:// or smtps://")
        query = parse_qs(parsed.query)
        self.host = parsed.hostname or "localhost"
        self.port = parsed.port or (465 if parsed.scheme == "smtps" else 25)
        self.ssl = parsed.scheme == "smtps"
        self.starttls = query.get("starttls", ["0"])[0] in {"1", "true", "yes"}
        self.username = unquote(parsed.username) if parsed.username else None
        self.password = unquote(parsed.password) if parsed.password else None
        self.sender = query.get("from", ["StudyShelf <no-reply@studyshelf.local>"])[0]

    @property
    def enabled(self) -> bool:
        return True

    def send(self, message: Message) -> None:
        email = EmailMessage()
        email["From"] = self.sender
        email["To"] = message.to
        email["Subject"] = message.subject
        email.set_content(message.text)
        for attachment in message.attachments:
            maintype, _, subtype = attachment.content_type.partition("/")
            email.add_attachment(
                attachment.content, maintype=maintype, subtype=subtype or "octet-stream", filename=attachment.filename
            )
        client_class = smtplib.SMTP_SSL if self.ssl else smtplib.SMTP
        try:
            with client_class(self.host, self.port, timeout=10) as client:
                if self.starttls:
                    client.starttls()
                if self.username and self.password:
                    client.login(self.username, self.password)
                client.send_message(email)
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(f"could not send e-mail through {self.host}:{self.port}: {exc}") from exc
