"""Page views whose beacons may be stored: one row per viewer page the server counted."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from studyshelf.core.db import Base


class BeaconView(Base):
    """A counted page view (keyed by the session its beacon token names) and the beacons it has sent.

    The row is made when the server counts the view, so a token whose view has no row is refused; `events`
    is raised by one conditional UPDATE per beacon, so the limit holds across every web process.
    """

    __tablename__ = "beacon_views"

    session: Mapped[str] = mapped_column(String(32), primary_key=True)
    events: Mapped[int] = mapped_column(Integer, default=0)
    counted_at: Mapped[datetime] = mapped_column(index=True)
