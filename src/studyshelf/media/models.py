"""A processing job per file version, and the files it produced (each a blob like any other)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from studyshelf.core.clock import utcnow
from studyshelf.core.db import Base


class MediaJob(Base):
    """What processing one version is at: queued → running → done | failed (with a reason a person can act on)."""

    __tablename__ = "media_jobs"
    __table_args__ = (Index("ix_media_jobs_state_due", "state", "next_attempt_at"),)

    version_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("file_versions.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # video | audio | pdf | image
    state: Mapped[str] = mapped_column(String(16), default="queued")  # queued | running | done | failed
    percent: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None] = mapped_column()
    generation: Mapped[int] = mapped_column(Integer, default=0)  # bumped by each successful run: names URLs
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    page_count: Mapped[int | None] = mapped_column(Integer)
    renditions: Mapped[str] = mapped_column(String(200), default="")  # space-separated names, best last
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class MediaOutput(Base):
    """One produced file of a version, by its relative path (`master.m3u8`, `720p/seg-00001.ts`, `poster.jpg`)."""

    __tablename__ = "media_outputs"

    version_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("file_versions.id", ondelete="CASCADE"), primary_key=True)
    path: Mapped[str] = mapped_column(String(120), primary_key=True)
    blob_sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(100))
