"""Scheduler state: one row per job, holding its lease and when it last ran."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from studyshelf.core.db import Base


class JobState(Base):
    __tablename__ = "job_states"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    lease_holder: Mapped[str | None] = mapped_column(String(100), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    last_run_at: Mapped[datetime | None] = mapped_column(default=None)
    memo: Mapped[str] = mapped_column(Text, default="")
