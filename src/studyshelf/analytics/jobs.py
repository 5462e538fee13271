"""Analytics housekeeping: drop raw events past the retention."""

from __future__ import annotations

from datetime import timedelta

from studyshelf.core.clock import utcnow
from studyshelf.services import Services


def apply_retention(services: Services, _memo: str) -> str:
    """Delete events older than STUDYSHELF_EVENT_RETENTION_DAYS (whole month partitions on PostgreSQL)."""
    cutoff = utcnow() - timedelta(days=services.settings.event_retention_days)
    deleted = services.warehouse.delete_before(cutoff)
    return f"deleted {deleted} events before {cutoff:%Y-%m-%d}"
