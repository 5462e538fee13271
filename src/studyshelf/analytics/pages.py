"""HTML pages of analytics: the usage dashboard of the current organisation (/analytics)."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from studyshelf.analytics import panels
from studyshelf.analytics import service as analytics
from studyshelf.analytics.dashboard import PRESETS, DashboardQuery, parse_query
from studyshelf.analytics.live import build_live, live_url
from studyshelf.analytics.names import Names
from studyshelf.analytics.reports.org_settings import zone
from studyshelf.core.errors import NotFound, Unavailable
from studyshelf.partners import service as partners
from studyshelf.partners.deps import DbSession, Now, ServicesDep
from studyshelf.partners.pages import PagePrincipal, current_org_id
from studyshelf.partners.permissions import Permission, require
from studyshelf.web import i18n
from studyshelf.web.i18n import N_
from studyshelf.web.render import is_htmx, render, request_locale

router = APIRouter(include_in_schema=False)
LOADER_ID = "dashboard-loader"  # the shell's placeholder that fetches the figures once the page is shown
NO_ORGANISATION = N_("You are not a member of any organisation.")
# What the service says when the warehouse cannot answer (analytics/service.py): shown translated on the page.
UNAVAILABLE_MESSAGES = (
    N_("Usage figures are not available right now; try again shortly."),
    N_("Live figures are not available right now; try again shortly."),
)


@router.get("/analytics", response_class=HTMLResponse)
def dashboard(request: Request, principal: PagePrincipal, db: DbSession, services: ServicesDep, now: Now) -> Response:
    """The page shell at once (filters and a loading state); its figures as an HTMX fragment."""
    org_id = current_org_id(principal)
    if org_id is None:
        raise NotFound(NO_ORGANISATION)
    require(principal, Permission.ANALYTICS_READ, org_id, what="organisation")
    query = _query(request, db, org_id, now)
    names = Names(db, principal, org_id, now=now)
    locale = request_locale(request)  # figures and dates are formatted in the page's language as they are built
    context = {
        "query": query,
        "org_name": partners.get_organization(db, org_id).name,
        "chips": panels.chips(query, names),
        "options": panels.options(None, query, names),
        "board": None,
        "error": None,
        "live_url": live_url(query),
        "live": None,
        "live_error": None,
        "presets": PRESETS,
    }
    if not is_htmx(request):
        return render(request, "analytics/dashboard.html", context)
    try:
        with i18n.use_locale(locale):
            board = panels.build(db, services.warehouse, principal=principal, org_id=org_id, query=query, now=now)
    except Unavailable as exc:
        context["error"] = exc.detail
    else:
        context |= {"board": board, "chips": board.chips, "options": board.options}
    # Filters and drill-downs push the canonical URL (no empty parameters); the first load keeps the address.
    headers = {} if request.headers.get("hx-trigger") == LOADER_ID else {"HX-Push-Url": query.url()}
    return render(request, "analytics/dashboard.html", context, block="dashboard", headers=headers)


def _query(request: Request, db: Session, org_id: uuid.UUID, now: datetime) -> DashboardQuery:
    """The page's query: days of the organisation's time zone (its report settings), today being its date there."""
    tz = analytics.time_zone(db, org_id=org_id)
    return parse_query(request.query_params, today=now.astimezone(zone(tz)).date(), tz=tz)


@router.get("/analytics/live", response_class=HTMLResponse)
def live(request: Request, principal: PagePrincipal, db: DbSession, services: ServicesDep, now: Now) -> Response:
    """The live panel (the last 30 minutes under the page's filters), which the dashboard polls."""
    org_id = current_org_id(principal)
    if org_id is None:
        raise NotFound(NO_ORGANISATION)
    require(principal, Permission.ANALYTICS_READ, org_id, what="organisation")
    query = _query(request, db, org_id, now)
    context: dict[str, object] = {"query": query, "live_url": live_url(query), "live": None, "live_error": None}
    try:
        with i18n.use_locale(request_locale(request)):
            live_panel = build_live(db, services.warehouse, principal=principal, org_id=org_id, query=query, now=now)
        context["live"] = live_panel
    except Unavailable as exc:
        context["live_error"] = exc.detail
    return render(request, "analytics/dashboard.html", context, block="live")
