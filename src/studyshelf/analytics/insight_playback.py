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
from studyshelf.analytics.insight_tables import SHARE, UNKNOWN, Column, Label, Table, percent, watch_time
from studyshelf.analytics.panels import Kpi
from studyshelf.core.errors import Unavailable
from studyshelf.partners.permissions import Permission, require
from studyshelf.partners.principal import Principal
from studyshelf.warehouse import Playback, PlaybackRow, Warehouse, WarehouseError
from studyshelf.warehouse.interface import COMPLETE_PCT
from studyshelf.web import i18n
from studyshelf.web.i18n import N_

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
        raise Unavailable(N_("Usage figures are not available right now; try again shortly.")) from exc


def kpis(found: Playback) -> list[Kpi]:
    """The playback figures, in the locale of the rendering (call it inside `i18n.use_locale`): only ever shown."""
    _ = i18n.gettext
    reached = None if found.median_reached_pct is None else found.median_reached_pct / 100
    return [
        Kpi("watch-time", _(N_("Watch time")), watch_time(found.watch_ms), hint=_(N_("media time played, all views"))),
        Kpi("played-views", _(N_("Views that played")), i18n.format_number(found.views)),
        Kpi(
            "median-reached",
            _(N_("Median reached")),
            percent(reached, whole=True),
            hint=_(N_("furthest position, share of the duration")),
        ),
        Kpi(
            "completed",
            _(N_("Completed")),
            percent(found.completion_rate),
            hint=_(N_("views that reached %(percent)s")) % {"percent": percent(COMPLETE_PCT / 100)},
        ),
    ]


RENDITION_LABELS: Final = {
    "": UNKNOWN,
    "mp4": Label(N_("MP4 (no adaptive streaming)")),
    "auto": Label(N_("Adaptive (chosen by the browser)")),
}


def rendition_label(key: str) -> str:
    return RENDITION_LABELS.get(key, key)


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

    columns = [Column(N_("Views"), "int"), Column(N_("Watch time"), "watch"), Column(SHARE, "rate")]
    return {
        "renditions": Table(
            "renditions",
            N_("Renditions played"),
            [Column(N_("Rendition")), *columns],
            rows(found.renditions),
            hint=N_("A view that switched rendition counts in each it played; its watch time is split between them."),
        ),
        "captions-use": Table(
            "captions-use",
            N_("Captions in use"),
            [Column(N_("Captions")), *columns],
            rows(found.captions, {"": Label(N_("Off"))}),
            hint=N_("The captions language shown while playing (BCP 47), or off."),
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
