"""Rollups of finished days, per organisation and time zone, and the daily reports made from them.

One row of `analytics_rollups` holds the metrics of one (time zone, scope, day, dimension, value):
`scope` is the organisation whose view it is (events of its own content or of its own usage of others'
content), or "*" for the whole platform (UTC only). `dim` is "" for the day's totals, else one of
ROLLUP_DIMENSIONS with `value` that dimension's value ("" where the event had none). `subtree` rows
count an event once for every folder above its file (a folder's numbers include its subfolders);
`folder` rows count it for the folder the file is directly in.

Unique viewers add up across days because the pseudonymous viewer id rotates daily. Load times are kept
as a histogram (LOAD_BUCKETS_MS upper bounds, the last bucket open) so percentiles can be estimated
over any set of rows. `analytics_rollups_monthly` is the same, summed per calendar month (in the same
time zone), so that ranges of many days read few rows.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Final

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from studyshelf.core.clock import utcnow
from studyshelf.core.db import Base
from studyshelf.core.ids import new_id
from studyshelf.warehouse import LOAD_BUCKETS_MS, PLATFORM_SCOPE, ROLLUP_DIMENSIONS

__all__ = [
    "HISTOGRAM_COLUMNS",
    "LOAD_BUCKETS_MS",
    "METRIC_COLUMNS",
    "PLATFORM_SCOPE",
    "ROLLUP_DIMENSIONS",
    "AudienceRollup",
    "DailyRollup",
    "MonthlyRollup",
    "ReportDelivery",
    "ReportSettings",
    "RolledDay",
]

HISTOGRAM_COLUMNS: Final = tuple(f"h{i}" for i in range(len(LOAD_BUCKETS_MS) + 1))
METRIC_COLUMNS: Final = ("views", "viewers", "load_ok", "fails", "downloads", "blocked", "bytes", "load_ms_sum")


class _Metrics:
    views: Mapped[int] = mapped_column(BigInteger, default=0)
    viewers: Mapped[int] = mapped_column(BigInteger, default=0)
    load_ok: Mapped[int] = mapped_column(BigInteger, default=0)
    fails: Mapped[int] = mapped_column(BigInteger, default=0)
    downloads: Mapped[int] = mapped_column(BigInteger, default=0)
    blocked: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    load_ms_sum: Mapped[int] = mapped_column(BigInteger, default=0)
    h0: Mapped[int] = mapped_column(Integer, default=0)
    h1: Mapped[int] = mapped_column(Integer, default=0)
    h2: Mapped[int] = mapped_column(Integer, default=0)
    h3: Mapped[int] = mapped_column(Integer, default=0)
    h4: Mapped[int] = mapped_column(Integer, default=0)
    h5: Mapped[int] = mapped_column(Integer, default=0)
    h6: Mapped[int] = mapped_column(Integer, default=0)
    h7: Mapped[int] = mapped_column(Integer, default=0)
    h8: Mapped[int] = mapped_column(Integer, default=0)
    h9: Mapped[int] = mapped_column(Integer, default=0)
    h10: Mapped[int] = mapped_column(Integer, default=0)
    h11: Mapped[int] = mapped_column(Integer, default=0)
    h12: Mapped[int] = mapped_column(Integer, default=0)
    h13: Mapped[int] = mapped_column(Integer, default=0)
    h14: Mapped[int] = mapped_column(Integer, default=0)
    h15: Mapped[int] = mapped_column(Integer, default=0)


class _RollupColumns(_Metrics):
    tz: Mapped[str] = mapped_column(String(64), primary_key=True)
    scope: Mapped[str] = mapped_column(String(36), primary_key=True)
    dim: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[str] = mapped_column(String(255), primary_key=True)


class DailyRollup(_RollupColumns, Base):
    __tablename__ = "analytics_rollups"
    __table_args__ = (
        # views and bytes in the index: ranking top values over a range reads the index only (reports/read.py).
        Index("ix_analytics_rollups_lookup", "scope", "tz", "dim", "day", "value", "views", "bytes"),
        # then the leaders' rows: a few values over many days, found without walking every value of each day.
        Index("ix_analytics_rollups_values", "scope", "tz", "dim", "value", "day"),
        Index("ix_analytics_rollups_day", "tz", "day"),  # rolling a day again replaces its rows
    )

    day: Mapped[date] = mapped_column(Date, primary_key=True)


class MonthlyRollup(_RollupColumns, Base):
    __tablename__ = "analytics_rollups_monthly"
    __table_args__ = (
        Index("ix_analytics_rollups_monthly_lookup", "scope", "tz", "dim", "month", "value", "views", "bytes"),
        Index("ix_analytics_rollups_monthly_month", "tz", "month"),
    )

    month: Mapped[date] = mapped_column(Date, primary_key=True)  # the first day of the month


class AudienceRollup(_Metrics, Base):
    """One day's metrics per cell of (country, browser, OS, device): the dimensions a viewer pseudonym fixes
    for its day, so filters on any of them add cells up with unique viewers exact (reports/read.py)."""

    __tablename__ = "analytics_audience_rollups"
    __table_args__ = (Index("ix_analytics_audience_rollups_lookup", "scope", "tz", "day"),)

    tz: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)  # (tz, day) first: a day is replaced whole
    scope: Mapped[str] = mapped_column(String(36), primary_key=True)
    country: Mapped[str] = mapped_column(String(8), primary_key=True)
    browser: Mapped[str] = mapped_column(String(255), primary_key=True)
    os: Mapped[str] = mapped_column(String(255), primary_key=True)
    device: Mapped[str] = mapped_column(String(16), primary_key=True)


class RolledDay(Base):
    """A (time zone, day) whose rollups are complete: the job's progress, and what it must catch up."""

    __tablename__ = "analytics_rolled_days"

    tz: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    events: Mapped[int] = mapped_column(BigInteger, default=0)
    rolled_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReportSettings(Base):
    """Per organisation: the time zone of its days and where its daily report is sent."""

    __tablename__ = "analytics_report_settings"

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    emails: Mapped[str] = mapped_column(Text, default="")  # comma-separated addresses
    webhook_url: Mapped[str] = mapped_column(String(500), default="")


class ReportDelivery(Base):
    """A daily report sent (or failed to send) to an organisation: makes sending idempotent."""

    __tablename__ = "analytics_report_deliveries"
    __table_args__ = (Index("ix_analytics_report_deliveries_org_day", "org_id", "day", unique=True),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
