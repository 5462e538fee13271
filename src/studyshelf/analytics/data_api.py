"""A partner's analytics data: its raw events as CSV or Parquet (streamed), and erasing it (operator admins)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Query
from fastapi.responses import StreamingResponse

from studyshelf.analytics import erasure, export
from studyshelf.analytics.schemas import ErasureRead, ErasureRequest
from studyshelf.partners.deps import CurrentPrincipal, DbSession, Now, ServicesDep

router = APIRouter(prefix="/api/v1", tags=["analytics"])
EXPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The events, one row each, columns as events/schema.py names them (streamed)",
        "content": {"text/csv": {}, "application/vnd.apache.parquet": {}},
    },
    403: {"description": "The caller's role may not read this organisation's analytics"},
    404: {"description": "No such organisation (or not one the caller may see)"},
    422: {"description": "Bad dates: inverted, longer than 92 days, in the future or beyond the retention"},
}


@router.get("/analytics/events", response_class=StreamingResponse, responses=EXPORT_RESPONSES)
def export_events(
    principal: CurrentPrincipal,
    services: ServicesDep,
    db: DbSession,
    now: Now,
    org_id: uuid.UUID,
    from_: Annotated[date | None, Query(alias="from", description="first day (the organisation's time zone)")] = None,
    to: Annotated[date | None, Query(description="last day, inclusive; default today")] = None,
    fmt: Annotated[Literal["csv", "parquet"], Query(alias="format")] = "csv",
) -> StreamingResponse:
    """The organisation's raw analytics events of a range of days (at most 92), pseudonymous as stored: usage of
    its content and its own usage of others'. Members who may read its analytics; operator admins for any."""
    rng = export.plan(
        db,
        principal=principal,
        org_id=org_id,
        first=from_,
        last=to,
        retention_days=services.settings.event_retention_days,
        now=now,
    )
    pages = export.first_page(services.warehouse, rng)
    headers = {"Content-Disposition": f'attachment; filename="{rng.filename(fmt)}"', "Cache-Control": "no-store"}
    return StreamingResponse(export.chunks(fmt, pages), media_type=export.MEDIA_TYPES[fmt], headers=headers)


@router.post(
    "/analytics/erasures",
    response_model=ErasureRead,
    responses={
        403: {"description": "Only operator admins may erase analytics data"},
        404: {"description": "No such organisation"},
        422: {"description": "The confirmation is not the organisation's slug, or it is the operator"},
    },
)
def erase_analytics(
    body: ErasureRequest,
    principal: CurrentPrincipal,
    services: ServicesDep,
    db: DbSession,
    now: Now,
    background: BackgroundTasks,
) -> ErasureRead:
    """Erase one partner's analytics data (its raw events, its rollups, its course titles), audited; the
    operator's and the platform's rollups of the days involved are rebuilt without it after the answer."""
    done = erasure.erase(db, services.warehouse, principal=principal, org_id=body.org_id, confirm=body.confirm)
    background.add_task(erasure.rebuild, services, done.stale_days, now=now)
    return ErasureRead(
        org_id=done.org_id,
        org_name=done.org_name,
        event_days=done.event_days,
        rollup_rows=done.rollup_rows,
        course_titles=done.course_titles,
        days_to_rebuild=len(done.stale_days),
    )
