"""The Reports page: the organisation's days with their downloads, and where the daily report is sent."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from babel.dates import format_skeleton
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from studyshelf.analytics.reports import daily, org_settings
from studyshelf.analytics.reports.api import report_links
from studyshelf.core.errors import Invalid, NotFound
from studyshelf.partners.deps import DbSession, ServicesDep
from studyshelf.partners.pages import PagePrincipal, current_org_id
from studyshelf.partners.principal import Principal
from studyshelf.services import Services
from studyshelf.web import i18n
from studyshelf.web.i18n import N_
from studyshelf.web.render import render, translated

router = APIRouter(include_in_schema=False)
TEMPLATE = "analytics/reports.html"
PAGE = "/analytics/reports"


def day_label(day: date) -> str:
    """A day of the list in the page's language: `Mon 07 Dec` in English, `Mo., 7. Dez.`, `lun, 7 dic`."""
    if i18n.current_locale() == i18n.DEFAULT_LOCALE:
        return day.strftime("%a %d %b")
    return format_skeleton("MMMEd", day, locale=i18n.current_locale())


def _settings_refusal(request: Request, exc: Invalid) -> str:
    if exc.detail == f"At most {org_settings.MAX_EMAILS} e-mail addresses.":
        return translated(request, N_("At most %(count)s e-mail addresses."), count=org_settings.MAX_EMAILS)
    return exc.detail


def _org(principal: Principal) -> uuid.UUID:
    org_id = current_org_id(principal)
    if org_id is None:
        raise NotFound(N_("You are not a member of any organisation."))
    return org_id


def _page(
    request: Request,
    db: DbSession,
    services: Services,
    principal: Principal,
    *,
    days: int = 30,
    status: int = 200,
    form: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    org_id = _org(principal)
    time_zone, _, _, rows = daily.list_days(
        db, principal=principal, org_id=org_id, start=None, end=None, now=services.clock.now(), default_days=days
    )
    row, can_edit = org_settings.read_settings(db, principal=principal, org_id=org_id)
    to = org_settings.destinations(row)
    context = {
        "nav": "analytics",
        "time_zone": time_zone,
        "days": rows,
        "shown_days": days,
        "day_label": day_label,
        "links": {d.day: report_links(org_id, d.day) for d in rows if d.status == "ready"},
        "time_zones": org_settings.time_zones(),
        "can_edit": can_edit,
        "form": form
        or {
            "time_zone": row.time_zone,
            "emails": "\n".join(to.emails),
            "webhook_url": org_settings.shown_webhook(row, can_edit=can_edit),
        },
        "webhook_secret": org_settings.webhook_secret(services.keys, org_id) if can_edit else "",
        "mail_enabled": services.mailer.enabled,
        **extra,
    }
    return render(request, TEMPLATE, context, status=status)


@router.get("/analytics/reports", response_class=HTMLResponse)
def reports_page(
    request: Request,
    principal: PagePrincipal,
    db: DbSession,
    services: ServicesDep,
    days: Annotated[int, Query(ge=1, le=366)] = 30,
    saved: bool = False,
) -> Response:
    return _page(request, db, services, principal, days=days, saved=saved)


@router.post("/analytics/reports/settings", response_class=HTMLResponse)
def save_settings(
    request: Request,
    principal: PagePrincipal,
    db: DbSession,
    services: ServicesDep,
    time_zone: Annotated[str, Form(max_length=64)],
    emails: Annotated[str, Form(max_length=8000)] = "",
    webhook_url: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Save the report settings; the page comes back (303) so that a reload does not post again."""
    addresses = [a for a in emails.replace(",", "\n").splitlines() if a.strip()]
    try:
        org_settings.update_settings(
            db,
            principal=principal,
            org_id=_org(principal),
            time_zone=time_zone,
            emails=addresses,
            webhook_url=webhook_url,
        )
    except Invalid as exc:
        db.rollback()
        form = {"time_zone": time_zone, "emails": emails, "webhook_url": webhook_url}
        return _page(
            request, db, services, principal, status=422, form=form, settings_error=_settings_refusal(request, exc)
        )
    return RedirectResponse(f"{PAGE}?saved=true#report-settings", status_code=303)
