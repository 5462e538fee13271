"""Share links, their per-organisation policy, refusals, and the sightings that reveal illegal sharing."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import Boolean, Enum, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from studyshelf.core.clock import utcnow
from studyshelf.core.db import Base
from studyshelf.core.ids import new_id
from studyshelf.library.access_epoch import guard_access


class LinkMode(enum.StrEnum):
    EMBED = "embed"  # only inside an allowed origin's iframe
    DIRECT = "direct"  # also opened on its own


class Link(Base):
    __tablename__ = "links"
    __table_args__ = (Index("ix_links_target", "target_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # 128 random bits, base64url
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    owner_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    target_type: Mapped[str] = mapped_column(String(16))
    target_id: Mapped[uuid.UUID] = mapped_column()
    label: Mapped[str] = mapped_column(String(200), default="")
    mode: Mapped[LinkMode] = mapped_column(
        Enum(LinkMode, name="link_mode", native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])
    )
    allowed_origins: Mapped[str] = mapped_column(Text, default="")  # one normalised origin per line
    expires_at: Mapped[datetime] = mapped_column()
    max_views: Mapped[int | None] = mapped_column(Integer, default=None)
    view_count: Mapped[int] = mapped_column(Integer, default=0)
    allow_download: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    suspended_at: Mapped[datetime | None] = mapped_column(default=None)
    suspended_reason: Mapped[str] = mapped_column(String(300), default="")

    @property
    def origins(self) -> list[str]:
        return [o for o in self.allowed_origins.split("\n") if o]


guard_access(Link)  # a revoked, suspended or edited link ends its remembered visits (delivery/admission.py)


class LinkPolicy(Base):
    """Per organisation: link lifetimes, default embed origins, and the thresholds of illegal sharing."""

    __tablename__ = "link_policies"

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)
    default_ttl_days: Mapped[int] = mapped_column(Integer, default=120)
    max_ttl_days: Mapped[int] = mapped_column(Integer, default=400)
    default_origins: Mapped[str] = mapped_column(Text, default="")
    max_networks_per_hour: Mapped[int] = mapped_column(Integer, default=60)
    max_countries_per_hour: Mapped[int] = mapped_column(Integer, default=4)
    max_refusals_per_hour: Mapped[int] = mapped_column(Integer, default=30)
    notify_webhook_url: Mapped[str] = mapped_column(String(500), default="")


class Refusal(Base):
    """A refused attempt to use a link or a media URL (the `blocked` event, kept for analytics)."""

    __tablename__ = "link_refusals"
    __table_args__ = (Index("ix_link_refusals_link_at", "link_id", "at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    link_id: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(32))
    origin: Mapped[str] = mapped_column(String(300), default="")
    network: Mapped[str] = mapped_column(String(64), default="")
    country: Mapped[str] = mapped_column(String(2), default="")


class Sighting(Base):
    """A link seen from a network in an hour: distinct rows per hour measure how far a link has spread."""

    __tablename__ = "link_sightings"
    __table_args__ = (UniqueConstraint("link_id", "hour", "network", name="uq_link_sightings_link_hour_network"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    link_id: Mapped[str] = mapped_column(ForeignKey("links.id", ondelete="CASCADE"))
    hour: Mapped[datetime] = mapped_column()
    network: Mapped[str] = mapped_column(String(64))
    country: Mapped[str] = mapped_column(String(2), default="")


class CountedView(Base):
    """A view event already added to its link's `view_count`: the counters' record of what they hold.

    Views of a link with a view limit are counted by the request (a conditional UPDATE) and get their row in
    the same transaction, with the event's JSON line in `pending` until the event is seen in the buffer;
    other views get their row when the drain adds them to the counter. Either way an event counts once.
    """

    __tablename__ = "counted_views"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    link_id: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(index=True)
    pending: Mapped[str | None] = mapped_column(Text, default=None)  # the event line, until it is in the buffer
