"""The live panel: the last 30 minutes by minute (views, failed loads, viewers) and the files viewed most now.

Read from raw events (service.live_summary: one bounded scan), refreshed by the page every LIVE_REFRESH_SECONDS.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from studyshelf.analytics import service
from studyshelf.analytics.dashboard import DashboardQuery
from studyshelf.analytics.names import Names
from studyshelf.analytics.reports.org_settings import zone
from studyshelf.partners.principal import Principal
from studyshelf.warehouse import Metrics, Warehouse

LIVE_REFRESH_SECONDS: Final = 10
LIVE_TOP_FILES: Final = 5
CHART_HEIGHT: Final = 48


@dataclass(frozen=True)
class Minute:
    label: str  # HH:MM in the organisation's time zone
    views: int
    fails: int
    viewers: int
    height: float  # of the views bar, 0..CHART_HEIGHT
    fail_height: float


@dataclass(frozen=True)
class LiveFile:
    key: str
    name: str | None
    href: str | None
    views: int
    fails: int
    drill: str


@dataclass(frozen=True)
class LivePanel:
    minutes: list[Minute]
    totals: Metrics
    last_minute: Metrics  # the minute before the current one (the current one is still filling)
    files: list[LiveFile]
    updated: str  # HH:MM:SS in the organisation's time zone
    url: str  # what the page polls
    chart_height: int = CHART_HEIGHT
    refresh_seconds: int = LIVE_REFRESH_SECONDS


def live_url(query: DashboardQuery) -> str:
    """The panel's own address: the page's filters (the period does not apply to the last half hour)."""
    params = DashboardQuery(start=query.start, end=query.end, filters=query.filters).params()
    params.pop("days", None)
    return f"/analytics/live?{urlencode(sorted(params.items()))}" if params else "/analytics/live"


def _minutes(series: list[tuple[datetime, Metrics]], now: datetime, tz: ZoneInfo) -> list[Minute]:
    start, end = service.live_window(now)
    found = {t.astimezone(UTC).replace(tzinfo=None): m for t, m in series}
    rows = []
    moment = start
    while moment < end:
        rows.append((moment, found.get(moment.astimezone(UTC).replace(tzinfo=None), Metrics())))
        moment += timedelta(minutes=1)
    most = max((m.views for _, m in rows), default=0) or 1
    return [
        Minute(
            label=t.astimezone(tz).strftime("%H:%M"),
            views=m.views,
            fails=m.fails,
            viewers=m.viewers,
            height=round(m.views * CHART_HEIGHT / most, 1),
            fail_height=round(min(m.fails, m.views or m.fails) * CHART_HEIGHT / most, 1),
        )
        for t, m in rows
    ]


def build_live(
    db: Session,
    warehouse: Warehouse,
    *,
    principal: Principal,
    org_id: uuid.UUID,
    query: DashboardQuery,
    now: datetime,
) -> LivePanel:
    """The live panel of one organisation under the page's filters."""
    summary = service.live_summary(warehouse, principal=principal, org_id=org_id, filters=query.filters, now=now)
    tz = zone(query.tz)
    minutes = _minutes(summary.series, now, tz)
    names = Names(db, principal, org_id, now=now)
    top = summary.top_files[:LIVE_TOP_FILES]
    names.learn(files=[key for key, _ in top], folders=[])
    files = []
    for key, m in top:
        found = names.file(key)
        files.append(
            LiveFile(
                key=key,
                name=found[0] if found else None,
                href=f"/files/{key}" if found else None,
                views=m.views,
                fails=m.fails,
                drill=query.url(file=key),
            )
        )
    by_minute = {t.astimezone(UTC).replace(tzinfo=None): m for t, m in summary.series}
    previous = now.astimezone(UTC).replace(second=0, microsecond=0, tzinfo=None) - timedelta(minutes=1)
    return LivePanel(
        minutes=minutes,
        totals=summary.totals,
        last_minute=by_minute.get(previous, Metrics()),
        files=files,
        updated=now.astimezone(tz).strftime("%H:%M:%S"),
        url=live_url(query),
    )
