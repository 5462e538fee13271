"""HTML pages of one file's and one folder's performance, and the CSV of each of their tables."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from sqlalchemy.orm import Session

from studyshelf.analytics import insight, insight_playback, insight_tables, panels
from studyshelf.analytics.insight import Kind, Report, Target
from studyshelf.analytics.names import Names
from studyshelf.analytics.panels import Chip
from studyshelf.core.errors import NotFound, Unavailable
from studyshelf.partners import service as partners
from studyshelf.partners.deps import DbSession, Now, ServicesDep
from studyshelf.partners.pages import PagePrincipal, current_org_id
from studyshelf.partners.permissions import Permission, require
from studyshelf.partners.principal import Principal
from studyshelf.services import Services
from studyshelf.web import i18n
from studyshelf.web.i18n import N_
from studyshelf.web.render import is_htmx, render, request_locale

router = APIRouter(include_in_schema=False)
DETAILS_LOADER = "insight-loader"  # the shell's placeholder that fetches the tables once the page is shown
# A filter chip's value that is one of the dashboard's labels (panels.label, marked N_ there) rather than a name:
# those the page translates; names of files, folders, organisations and courses it shows as they are.
_LABELLED_FILTERS: Final = frozenset({"category", "lms", "device"})
_FALLBACK_LABELS: Final = {
    "file": "Unavailable file",
    "folder": "Unavailable folder",
    "course": "No course",
    "country": "Unknown",
    "browser": "Unknown",
    "os": "Unknown",
}
# What insight.js shows (chart series and the first column's title per bucket), translated for it.
_CHART_MESSAGES: Final = {
    "hour": insight_tables.BUCKET_TITLES["hour"],
    "day": insight_tables.BUCKET_TITLES["day"],
    "week": insight_tables.BUCKET_TITLES["week"],
    "month": insight_tables.BUCKET_TITLES["month"],
    "views": N_("Views"),
    "viewers": N_("Unique viewers"),
    "fails": N_("Failed loads"),
    "rate": N_("Fail rate"),
}


def _org(principal: Principal) -> uuid.UUID:
    org_id = current_org_id(principal)
    if org_id is None:
        raise NotFound("You are not a member of any organisation.")
    require(principal, Permission.ANALYTICS_READ, org_id, what="organisation")
    return org_id


def _target(db: Session, principal: Principal, kind: Kind, target_id: uuid.UUID, now: datetime) -> Target:
    if kind == "file":
        return insight.file_target(db, principal=principal, file_id=target_id, now=now)
    return insight.folder_target(db, principal=principal, folder_id=target_id, now=now)


def _chip_label(chip: Chip) -> str:
    """A filter chip's value as the page shows it, in the locale of the rendering."""
    if chip.said is not None:  # words of ours around a value ("Northwind (you)"), as the dashboard shows them
        message = i18n.gettext(chip.said.message)
        return message % chip.said.args if chip.said.args else message
    if chip.name in _LABELLED_FILTERS or chip.label == _FALLBACK_LABELS.get(chip.name):
        return i18n.gettext(chip.label) if chip.label else chip.label
    return chip.label


def chart_messages() -> str:
    """insight.js's words as a JSON data attribute, in the locale of the rendering (the script keeps English)."""
    return json.dumps({key: i18n.gettext(text) for key, text in _CHART_MESSAGES.items()}, ensure_ascii=False)


def _page(
    request: Request,
    kind: Kind,
    target_id: uuid.UUID,
    principal: Principal,
    db: Session,
    services: Services,
    now: datetime,
) -> Response:
    org_id = _org(principal)
    query = insight.parse(request.query_params, kind=kind, db=db, org_id=org_id, now=services.clock.now())
    target = _target(db, principal, kind, target_id, now)
    context: dict[str, Any] = {
        "target": target,
        "query": query,
        "report": None,
        "tables": {},
        "error": None,
        "playback": None,
    }
    context["org_name"] = partners.get_organization(db, org_id).name
    names = Names(db, principal, org_id, now=now)
    context["chips"] = [
        (chip, insight.page_url(kind, target.id, query, **{chip.name: None})) for chip in panels.chips(query, names)
    ]
    locale = request_locale(request)
    context["url"] = lambda **changes: insight.page_url(kind, target.id, query, **changes)
    # The shell shows the headline figures and the chart (rollups answer them quickly) and fetches the tables,
    # which read raw events, as a fragment; a request from that loader gets the fragment.
    details = is_htmx(request) and request.headers.get("hx-trigger") == DETAILS_LOADER
    try:
        found = insight.report(
            db,
            services.warehouse,
            principal=principal,
            org_id=org_id,
            target=target,
            query=query,
            now=now,
            details=details,
        )
    except Unavailable as exc:
        context["error"] = exc.detail
    else:
        with i18n.use_locale(locale):  # the headline tiles are built as they read
            kpis = insight_tables.kpis(found.totals)
        context |= {
            "report": found,
            "tables": insight_tables.tables(found),
            "kpis": kpis,
            "series_json": insight_tables.series_json(found),
            "histogram_max": max(found.insight.histogram, default=0),
        }
        if details:
            with i18n.use_locale(locale):
                context |= _playback_context(services, principal, org_id, found)
    context |= {
        "cell": insight_tables.cell,
        "shown": insight_tables.shown,
        "day": insight_tables.day,
        "chip_label": _chip_label,
        "chart_messages": chart_messages,
        "pending": not details,
    }
    template = "analytics/_insight_details.html" if details else f"analytics/{kind}.html"
    return render(request, template, context)


def _playback_context(services: Services, principal: Principal, org_id: uuid.UUID, found: Report) -> dict[str, Any]:
    """A media file's playback section (nothing for other files); its figures missing do not fail the page."""
    try:
        playback = insight_playback.figures(services.warehouse, principal=principal, org_id=org_id, report=found)
    except Unavailable as exc:
        return {"playback_error": exc.detail}
    if playback is None:
        return {}
    return {
        "playback": playback,
        "playback_kpis": insight_playback.kpis(playback),
        "tables": insight_tables.tables(found) | insight_playback.tables(playback),
    }


def _csv(
    request: Request,
    kind: Kind,
    target_id: uuid.UUID,
    table: str,
    principal: Principal,
    db: Session,
    services: Services,
    now: datetime,
) -> Response:
    org_id = _org(principal)
    query = insight.parse(request.query_params, kind=kind, db=db, org_id=org_id, now=services.clock.now())
    target = _target(db, principal, kind, target_id, now)
    found = insight.report(
        db, services.warehouse, principal=principal, org_id=org_id, target=target, query=query, now=now
    )
    playback = insight_playback.figures(services.warehouse, principal=principal, org_id=org_id, report=found)
    tables = insight_tables.tables(found) | insight_playback.tables(playback)
    if table not in tables:
        raise NotFound(f"This page has no table `{table}`; it has: {', '.join(tables)}.")
    filename = f"{kind}-{target.id}-{table}-{query.start.isoformat()}-{query.end.isoformat()}.csv"
    return StreamingResponse(
        insight_tables.csv_text(tables[table]),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/analytics/files/{file_id}", response_class=HTMLResponse)
def file_page(
    request: Request, file_id: uuid.UUID, principal: PagePrincipal, db: DbSession, services: ServicesDep, now: Now
) -> Response:
    """One file's performance: views and failures over time, who fails and how, load times, versions, placements."""
    return _page(request, "file", file_id, principal, db, services, now)


@router.get("/analytics/folders/{folder_id}", response_class=HTMLResponse)
def folder_page(
    request: Request, folder_id: uuid.UUID, principal: PagePrincipal, db: DbSession, services: ServicesDep, now: Now
) -> Response:
    """A folder's performance over its whole subtree, and its files that fail most."""
    return _page(request, "folder", folder_id, principal, db, services, now)


@router.get("/analytics/files/{file_id}/{table}.csv")
def file_csv(
    request: Request,
    file_id: uuid.UUID,
    table: str,
    principal: PagePrincipal,
    db: DbSession,
    services: ServicesDep,
    now: Now,
) -> Response:
    return _csv(request, "file", file_id, table, principal, db, services, now)


@router.get("/analytics/folders/{folder_id}/{table}.csv")
def folder_csv(
    request: Request,
    folder_id: uuid.UUID,
    table: str,
    principal: PagePrincipal,
    db: DbSession,
    services: ServicesDep,
    now: Now,
) -> Response:
    return _csv(request, "folder", folder_id, table, principal, db, services, now)
