"""A media file's playback on its performance page and in its JSON: watch time, completion, renditions, captions.

The viewer page of a video or audio reports what it played (`playback` beacons, analytics/beacons.py); one
Warehouse.playback statement over the page's period and filters gives the figures (warehouse/playback.py).
Kept apart from insight.py: a page asks for these only for a media file.
"""

from __future__ import annotations

import uuid
from typing import Final

from studyshelf.analytics import service
from studyshelf.analytics.insight import Report
from studyshelf.analytics.insight_schemas import PlaybackRead, PlaybackUse
from studyshelf.analytics.insight_tables import Column, Table
from studyshelf.analytics.panels import Kpi, percent, watch_time
from studyshelf.core.errors import Unavailable
from studyshelf.partners.permissions import Permission, require
from studyshelf.partners.principal import Principal
from studyshelf.warehouse import Playback, PlaybackRow, Warehouse, WarehouseError
from studyshelf.warehouse.interface import COMPLETE_PCT

MEDIA_KINDS: Final = frozenset({"video", "audio"})


def figures(warehouse: Warehouse, *, principal: Principal, org_id: uuid.UUID, report: Report) -> Playback | None:
    """The playback of the report's file in its period and filters; None unless the file is a video or audio."""
    target = report.target
    if target.kind != "file" or target.file_kind not in MEDIA_KINDS:
        return None
    require(principal, Permission.ANALYTICS_READ, org_id, what="organisation")
    query = service.build_query(
        org_id=org_id,
        start=report.query.start,
        end=report.query.end,
        filters=report.query.filters | {"file": str(target.id)},
        breakdown=None,
        bucket=None,
        parts=frozenset({"totals"}),
    )
    try:
        return warehouse.playback(query)
    except WarehouseError as exc:
        raise Unavailable("Usage figures are not available right now; try again shortly.") from exc


def kpis(found: Playback) -> list[Kpi]:
    return [
        Kpi("watch-time", "Watch time", watch_time(found.watch_ms), hint="media time played, all views"),
        Kpi("played-views", "Views that played", f"{found.views:,}"),
        Kpi(
            "median-reached",
            "Median reached",
            "—" if found.median_reached_pct is None else f"{found.median_reached_pct:.0f}%",
            hint="furthest position, share of the duration",
        ),
        Kpi("completed", "Completed", percent(found.completion_rate), hint=f"views that reached {COMPLETE_PCT}%"),
    ]


def rendition_label(key: str) -> str:
    return {"": "Unknown", "mp4": "MP4 (no adaptive streaming)", "auto": "Adaptive (chosen by the browser)"}.get(
        key, key
    )


def tables(found: Playback | None) -> dict[str, Table]:
    """The page's playback tables by key (their CSVs: renditions.csv, captions-use.csv); none for other files."""
    if found is None:
        return {}

    def rows(items: list[PlaybackRow], label: dict[str, str] | None = None) -> list[list[object]]:
        total = sum(r.watch_ms for r in items)
        return [
            [
                (label or {}).get(r.key, r.key) if label is not None else rendition_label(r.key),
                r.views,
                r.watch_ms,
                r.watch_ms / total if total else None,
            ]
            for r in items
        ]

    columns = [Column("Views", "int"), Column("Watch time", "watch"), Column("Share", "rate")]
    return {
        "renditions": Table(
            "renditions",
            "Renditions played",
            [Column("Rendition"), *columns],
            rows(found.renditions),
            hint="A view that switched rendition counts in each it played; its watch time is split between them.",
        ),
        "captions-use": Table(
            "captions-use",
            "Captions in use",
            [Column("Captions"), *columns],
            rows(found.captions, {"": "Off"}),
            hint="The captions language shown while playing (BCP 47), or off.",
        ),
    }


def as_read(found: Playback) -> PlaybackRead:
    """The playback as the API's JSON."""

    def use(rows: list[PlaybackRow]) -> list[PlaybackUse]:
        return [PlaybackUse(key=r.key, views=r.views, watch_ms=r.watch_ms) for r in rows]

    return PlaybackRead(
        views=found.views,
        watch_ms=found.watch_ms,
        median_reached_pct=found.median_reached_pct,
        completed=found.completed,
        completion_rate=found.completion_rate,
        renditions=use(found.renditions),
        captions=use(found.captions),
    )
