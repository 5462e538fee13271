"""Daily reports: the days of an organisation, one day's report as JSON or CSV, and the report settings."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Response

from studyshelf.analytics.reports import daily, org_settings
from studyshelf.analytics.reports.models import ReportSettings
from studyshelf.analytics.reports.schemas import (
    DailyReport,
    DeliveryRead,
    ReportDayList,
    ReportDayRead,
    ReportLinks,
    ReportSettingsRead,
    ReportSettingsUpdate,
)
from studyshelf.partners.deps import CurrentPrincipal, DbSession, Now, ServicesDep
from studyshelf.services import Services

router = APIRouter(prefix="/api/v1", tags=["analytics"])
REPORT_PATH = "/api/v1/analytics/reports"
NOT_READY = {"description": "No such organisation, or the day is not rolled up yet (type …/report-not-ready)"}


def report_links(org_id: uuid.UUID, day: date) -> ReportLinks:
    def url(kind: str) -> str:
        return f"{REPORT_PATH}/{day.isoformat()}?{urlencode({'org_id': str(org_id), 'format': kind})}"

    return ReportLinks(json_=url("json"), csv=url("csv"))


@router.get("/analytics/reports", response_model=ReportDayList, response_model_by_alias=True)
def list_reports(
    principal: CurrentPrincipal,
    db: DbSession,
    now: Now,
    org_id: uuid.UUID,
    from_: Annotated[date | None, Query(alias="from", description="first day, default 29 days before `to`")] = None,
    to: Annotated[date | None, Query(description="last day, inclusive; default and latest: today")] = None,
) -> ReportDayList:
    """The organisation's days (in its time zone), newest first: whether each report is ready, and its links."""
    time_zone, start, end, days = daily.list_days(db, principal=principal, org_id=org_id, start=from_, end=to, now=now)
    return ReportDayList(
        org_id=org_id,
        time_zone=time_zone,
        from_=start,
        to=end,
        days=[
            ReportDayRead(
                day=d.day,
                status=d.status,
                views=(d.totals.views if d.totals else 0) if d.status == "ready" else None,
                fails=(d.totals.fails if d.totals else 0) if d.status == "ready" else None,
                delivery=DeliveryRead.model_validate(d.delivery) if d.delivery else None,
                links=report_links(org_id, d.day) if d.status == "ready" else None,
            )
            for d in days
        ],
    )


@router.get(
    "/analytics/reports/{day}",
    response_model=DailyReport,
    responses={200: {"content": {"text/csv": {}}}, 404: NOT_READY},
)
def get_report(
    day: date,
    principal: CurrentPrincipal,
    db: DbSession,
    org_id: uuid.UUID,
    now: Now,
    fmt: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
) -> Response:
    """One day's report: totals and tables by file, folder, country, browser and file type, as a download."""
    report = daily.get_report(db, principal=principal, org_id=org_id, day=day, now=now)
    if fmt == "csv":
        content, media_type = daily.to_csv(report), "text/csv; charset=utf-8"
    else:
        content, media_type = report.model_dump_json(), "application/json"
    disposition = f'attachment; filename="{daily.filename(report, fmt)}"'
    return Response(content, media_type=media_type, headers={"Content-Disposition": disposition})


def _settings_read(services: Services, row: ReportSettings, *, can_edit: bool) -> ReportSettingsRead:
    to = org_settings.destinations(row)
    return ReportSettingsRead(
        org_id=row.org_id,
        time_zone=row.time_zone,
        emails=list(to.emails),
        webhook_url=org_settings.shown_webhook(row, can_edit=can_edit),
        webhook_secret=org_settings.webhook_secret(services.keys, row.org_id) if can_edit else None,
        can_edit=can_edit,
    )


@router.get("/orgs/{org_id}/report-settings", response_model=ReportSettingsRead)
def read_report_settings(
    org_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession, services: ServicesDep
) -> ReportSettingsRead:
    """The time zone of the organisation's days, and where its daily report goes."""
    row, can_edit = org_settings.read_settings(db, principal=principal, org_id=org_id)
    return _settings_read(services, row, can_edit=can_edit)


@router.put("/orgs/{org_id}/report-settings", response_model=ReportSettingsRead)
def update_report_settings(
    org_id: uuid.UUID, body: ReportSettingsUpdate, principal: CurrentPrincipal, db: DbSession, services: ServicesDep
) -> ReportSettingsRead:
    """Set the time zone, the e-mail addresses and the https webhook of the daily report (admins)."""
    row = org_settings.update_settings(
        db,
        principal=principal,
        org_id=org_id,
        time_zone=body.time_zone,
        emails=body.emails,
        webhook_url=body.webhook_url,
    )
    return _settings_read(services, row, can_edit=True)
