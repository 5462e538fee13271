"""Analytics housekeeping: drop raw events past the retention, and page views past their beacons' life."""

from __future__ import annotations

from datetime import timedelta

from studyshelf.analytics.beacons import MAX_AGE_MS, prune_views
from studyshelf.core.db import unit_of_work
from studyshelf.services import Services


def apply_retention(services: Services, _memo: str) -> str:
    """Delete events older than STUDYSHELF_EVENT_RETENTION_DAYS (whole month partitions on PostgreSQL), and
    the beacon counts of page views older than a day."""
    cutoff = services.clock.now() - timedelta(days=services.settings.event_retention_days)
    deleted = services.warehouse.delete_before(cutoff)
    # A beacon is refused a day after its page anyway (and its token expires sooner): forget those views.
    with unit_of_work(services.write_sessions) as db:
        forgotten = prune_views(db, before=services.clock.now() - timedelta(milliseconds=MAX_AGE_MS))
    return f"deleted {deleted} events before {cutoff:%Y-%m-%d}; forgot {forgotten} page views' beacon counts"
