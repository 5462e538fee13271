"""E-mail backends; build_mailer() is the one place that chooses."""

from __future__ import annotations

from studyshelf.mail.interface import Attachment, Mailer, MailError, Message

__all__ = ["Attachment", "MailError", "Mailer", "Message", "build_mailer"]


def build_mailer(url: str | None) -> Mailer:
    """An SMTP mailer when STUDYSHELF_SMTP_URL is set, one that keeps what it sends for `memory://`,
    otherwise one that sends nothing."""
    if not url:
        from studyshelf.mail.null import NullMailer

        return NullMailer()
    if url == "memory://":
        from studyshelf.mail.memory import MemoryMailer

        return MemoryMailer()
    from studyshelf.mail.smtp import SmtpMailer

    return SmtpMailer(url)
