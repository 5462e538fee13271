"""Page views whose beacons may be stored (one row per viewer page the server counted); course names for figures."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from studyshelf.core.db import Base


class BeaconView(Base):
    """A counted page view (keyed by the session its beacon token names) and the beacons it has sent.

    The row is made when the server counts the view, so a token whose view has no row is refused. One
    conditional UPDATE per beacon raises `events`, adds the beacon's seq to `seqs` (a replay is refused) and
    counts it in the unix `minute` it arrived in (`minute_events`, the per-minute rate): every limit of a
    page view holds across every web process, with or without Redis.
    """

    __tablename__ = "beacon_views"

    session: Mapped[str] = mapped_column(String(32), primary_key=True)
    events: Mapped[int] = mapped_column(Integer, default=0)
    counted_at: Mapped[datetime] = mapped_column(index=True)
    seqs: Mapped[str] = mapped_column(Text, default=",")  # ",3,7,": the seqs stored (at most `events` of them)
    minute: Mapped[int] = mapped_column(Integer, default=0)  # unix minute of the latest beacon (never goes back)
    minute_events: Mapped[int] = mapped_column(Integer, default=0)  # beacons stored in that minute
    # playback reports stored (apart from `events`, the page's load outcome): a page sends one per pause
    playbacks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class CourseName(Base):
    """A course's or resource link's title as an LTI launch of a partner's platform told it.

    Keyed as the events are (`kind` "course": the event's `course`, the LTI context id; "resource_link": its
    `resource_link`), per partner organisation, so figures show titles instead of opaque ids. Learners are not
    named: a launch's title claims name the course and the activity, never a person.
    """

    __tablename__ = "analytics_course_names"

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # course | resource_link
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    title: Mapped[str] = mapped_column(String(300), default="")
    label: Mapped[str] = mapped_column(String(100), default="")  # the course's short code (context label)
    platform: Mapped[str] = mapped_column(String(200), default="")  # the LMS registration's name
    learned_at: Mapped[datetime] = mapped_column()
