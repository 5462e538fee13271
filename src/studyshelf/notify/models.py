"""The outbox: one row per e-mail or webhook call, written in the transaction of the change it reports."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from studyshelf.core.db import Base
from studyshelf.core.ids import new_id


class OutboxMessage(Base):
    """`kind` is "email" (target: an address, subject, body: text) or "webhook" (target: a URL, body: JSON).

    Due while `sent_at` is null, `attempts` below the maximum and `next_attempt_at` reached; a sender holds
    it until `lease_until`, so two drains (an instance's after-commit drain and the scheduler) never send
    one message twice at once.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "sent_at", "next_attempt_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16))
    event: Mapped[str] = mapped_column(String(64))  # e.g. link.suspended; sent as X-StudyShelf-Event
    target: Mapped[str] = mapped_column(String(1000))
    subject: Mapped[str] = mapped_column(String(300), default="")
    body: Mapped[str] = mapped_column(Text)
    signed: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )  # a webhook carrying X-StudyShelf-Signature
    created_at: Mapped[datetime] = mapped_column()  # the enqueuer's Services.clock, never the wall clock
    next_attempt_at: Mapped[datetime] = mapped_column()
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str] = mapped_column(String(500), default="")
