"""One behaviour suite for every mailer: the memory mailer and SMTP (through the local test server)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage

import pytest

from studyshelf.mail import Attachment, Mailer, MailError, Message, build_mailer
from studyshelf.mail.memory import MemoryMailer
from studyshelf.mail.null import NullMailer
from studyshelf.mail.smtp import SmtpMailer
from tests.mail_support import free_port, running_smtp_inbox


@dataclass(frozen=True)
class Received:
    to: str
    subject: str
    text: str
    attachments: tuple[Attachment, ...]


@dataclass(frozen=True)
class Backend:
    mailer: Mailer
    received: Callable[[], list[Received]]  # what reached the other end, oldest first


def _payload(part: EmailMessage) -> bytes:
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload


def _memory() -> Iterator[Backend]:
    mailer = MemoryMailer()
    yield Backend(mailer, lambda: [Received(m.to, m.subject, m.text, m.attachments) for m in mailer.sent])


def _smtp() -> Iterator[Backend]:
    with running_smtp_inbox() as inbox:

        def received() -> list[Received]:
            found = []
            for message in inbox.messages:
                body = message.get_body(("plain",))
                assert body is not None
                attachments = tuple(
                    Attachment(part.get_filename() or "", _payload(part), part.get_content_type())
                    for part in message.iter_attachments()
                )
                text = body.get_content().replace("\r\n", "\n")  # lines travel with CRLF on the wire
                found.append(Received(str(message["To"]), str(message["Subject"]), text, attachments))
            return found

        yield Backend(SmtpMailer(f"{inbox.url}?from=shelf@example.test"), received)


@pytest.fixture(params=["memory", "smtp"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    yield from (_memory if request.param == "memory" else _smtp)()


def test_is_enabled(backend: Backend) -> None:
    assert backend.mailer.enabled


def test_a_message_arrives_as_sent(backend: Backend) -> None:
    backend.mailer.send(Message(to="dean@example.edu", subject="Grüße, März", text="Zeile eins\nZeile zwei — ✓\n"))
    (got,) = backend.received()
    assert (got.to, got.subject, got.text, got.attachments) == (
        "dean@example.edu",
        "Grüße, März",
        "Zeile eins\nZeile zwei — ✓\n",
        (),
    )


def test_several_recipients_and_messages_keep_their_order(backend: Backend) -> None:
    backend.mailer.send(Message(to="a@example.edu, b@example.edu", subject="first", text="1\n"))
    backend.mailer.send(Message(to="c@example.edu", subject="second", text="2\n"))
    assert [(m.to, m.subject) for m in backend.received()] == [
        ("a@example.edu, b@example.edu", "first"),
        ("c@example.edu", "second"),
    ]


def test_attachments_arrive_byte_for_byte(backend: Backend) -> None:
    csv = Attachment("report 2026-03-01.csv", "\ufeffname,views\nBiologie,3\n".encode(), "text/csv")
    blob = Attachment("data.bin", bytes(range(256)), "application/octet-stream")
    backend.mailer.send(Message(to="dean@example.edu", subject="report", text="attached\n", attachments=(csv, blob)))
    (got,) = backend.received()
    assert [(a.filename, a.content_type) for a in got.attachments] == [
        ("report 2026-03-01.csv", "text/csv"),
        ("data.bin", "application/octet-stream"),
    ]
    assert [a.content for a in got.attachments] == [csv.content, blob.content]


def test_an_unreachable_smtp_server_is_a_mail_error() -> None:
    mailer = SmtpMailer(f"smtp://127.0.0.1:{free_port()}")  # nobody listens there
    with pytest.raises(MailError, match="could not send"):
        mailer.send(Message(to="dean@example.edu", subject="lost", text="\n"))


def test_build_mailer_picks_from_the_url() -> None:
    assert isinstance(build_mailer(None), NullMailer)
    assert not build_mailer("").enabled
    assert isinstance(build_mailer("memory://"), MemoryMailer)
    assert isinstance(build_mailer("smtp://127.0.0.1:2525"), SmtpMailer)
