"""GET endpoints of a file's and a folder's performance: the figures of their pages, as JSON."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from sqlalchemy.orm import Session

from studyshelf.analytics import insight, insight_playback, insight_tables
from studyshelf.analytics.insight import Kind, Report
from studyshelf.analytics.insight_schemas import (
    AudienceRow,
    FailureRead,
    InsightRead,
    InsightTarget,
    LoadBucket,
    LoadTimes,
    PlacementFigures,
    RankedFileRead,
    VersionFigures,
)
from studyshelf.analytics.schemas import MetricsRead, SeriesPoint
from studyshelf.partners.deps import CurrentPrincipal, DbSession, Now, ServicesDep
from studyshelf.partners.permissions import Permission, require
from studyshelf.partners.principal import Principal
from studyshelf.services import Services
from studyshelf.warehouse import LOAD_BUCKETS_MS, VersionRow

router = APIRouter(prefix="/api/v1", tags=["analytics"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such file or folder, another organisation's, or not visible to the caller"}
}
Days = Annotated[
    Literal["today", "7", "30", "90", "month", "last-month", "custom"] | None,
    Query(description="a preset period in the organisation's time zone (month: this month so far), or custom"),
]
Day = Annotated[str | None, Query(description="YYYY-MM-DD in the organisation's time zone, with days=custom or alone")]
Text = Annotated[str | None, Query(max_length=255)]


def _report(
    request: Request,
    kind: Kind,
    target_id: uuid.UUID,
    *,
    principal: Principal,
    db: Session,
    services: Services,
    now: datetime,
    org_id: uuid.UUID,
) -> Report:
    require(principal, Permission.ANALYTICS_READ, org_id, what="organisation")
    query = insight.parse(
        request.query_params, kind=kind, db=db, org_id=org_id, now=services.clock.now(), extra=frozenset({"org_id"})
    )
    if kind == "file":
        target = insight.file_target(db, principal=principal, file_id=target_id, now=now)
    else:
        target = insight.folder_target(db, principal=principal, folder_id=target_id, now=now)
    return insight.report(
        db, services.warehouse, principal=principal, org_id=org_id, target=target, query=query, now=now
    )


def _audience(rows: list[tuple[str, int, int]]) -> list[AudienceRow]:
    return [AudienceRow(key=k, fails=f, attempts=a, fail_rate=f / a if a else None) for k, f, a in rows]


def as_read(report: Report, org_id: uuid.UUID) -> InsightRead:
    """The report as the API's JSON: the page's figures, unformatted."""
    target, found, totals = report.target, report.insight, report.totals
    above = target.path if target.kind == "file" else target.path[:-1]  # a folder's path ends with itself
    bounds = [0, *LOAD_BUCKETS_MS]
    loads = found.loads
    return InsightRead(
        org_id=org_id,
        target=InsightTarget(kind=target.kind, id=target.id, name=target.name, path=[name for _id, name in above]),
        from_=report.query.start,
        to=report.query.end,
        bucket=report.bucket,
        filters=report.query.filters,
        totals=MetricsRead.of(totals),
        series=[SeriesPoint(t=t, **MetricsRead.of(m).model_dump()) for t, m in report.series],
        failures=[
            FailureRead(
                browser=r.browser,
                browser_major=r.browser_major,
                os=r.os,
                device=r.device,
                country=r.country,
                error_class=r.error_class,
                fails=r.fails,
                attempts=r.attempts,
                fail_rate=r.fail_rate,
            )
            for r in found.failures
        ],
        by_error_class=_audience(insight_tables.error_classes(report)),
        by_browser=_audience(insight_tables.grouped(loads, insight_tables.AUDIENCE_PICKS["browsers"])),
        by_os=_audience(insight_tables.grouped(loads, insight_tables.AUDIENCE_PICKS["os"])),
        by_device=_audience(insight_tables.grouped(loads, insight_tables.AUDIENCE_PICKS["devices"])),
        by_country=_audience(insight_tables.grouped(loads, insight_tables.AUDIENCE_PICKS["countries"])),
        load_times=LoadTimes(
            p50_ms=totals.load_p50_ms,
            p95_ms=totals.load_p95_ms,
            histogram=[
                LoadBucket(from_ms=bounds[i], to_ms=LOAD_BUCKETS_MS[i] if i < len(LOAD_BUCKETS_MS) else None, loads=n)
                for i, n in enumerate(found.histogram)
            ],
        ),
        versions=[_version(report, v) for v in found.versions] if target.kind == "file" else [],
        placements=[
            PlacementFigures(
                link_id=p.link_id or None,
                lms=p.lms,
                course=p.course,
                resource_link=p.resource_link,
                name=insight_tables.placement_label(report, p.link_id, p.course, p.resource_link),
                **MetricsRead.of(p.metrics).model_dump(),
            )
            for p in found.placements
        ],
        files=[
            RankedFileRead(file_id=uuid.UUID(f.key), name=f.name, **MetricsRead.of(f.metrics).model_dump())
            for f in report.ranked_files
        ],
        min_views_to_rank=insight.MIN_VIEWS_TO_RANK,
    )


def _version(report: Report, v: VersionRow) -> VersionFigures:
    known = report.target.versions.get(v.version_id)
    return VersionFigures(
        version_id=uuid.UUID(v.version_id),
        number=known.number if known else None,
        current=bool(known and known.current),
        first_seen=v.first_seen,
        last_seen=v.last_seen,
        **MetricsRead.of(v.metrics).model_dump(),
    )


@router.get("/analytics/files/{file_id}", response_model=InsightRead, response_model_by_alias=True, responses=NOT_FOUND)
def file_insight(
    request: Request,
    file_id: uuid.UUID,
    principal: CurrentPrincipal,
    db: DbSession,
    services: ServicesDep,
    now: Now,
    org_id: uuid.UUID,
    days: Days = None,
    from_: Annotated[
        str | None, Query(alias="from", description="first day, YYYY-MM-DD in the organisation's time zone")
    ] = None,
    to: Day = None,
    partner: uuid.UUID | None = None,
    folder: uuid.UUID | None = None,
    category: Text = None,
    country: Annotated[str | None, Query(max_length=2)] = None,
    browser: Text = None,
    os: Text = None,
    device: Literal["desktop", "mobile", "tablet", "unknown"] | None = None,
    lms: Literal["moodle", "canvas", "other", "none"] | None = None,
    course: Text = None,
) -> InsightRead:
    """One file's performance in the organisation's scope (its own usage of the file, or everyone's usage of its
    own file): the series, failures by audience and error class, load times, versions and placements; for a video
    or audio its playback (watch time, completion, renditions and captions in use). The same
    period and filter parameters as the /analytics page; an unknown parameter is a 422."""
    found = _report(request, "file", file_id, principal=principal, db=db, services=services, now=now, org_id=org_id)
    read = as_read(found, org_id)
    playback = insight_playback.figures(services.warehouse, principal=principal, org_id=org_id, report=found)
    if playback is not None:
        read.playback = insight_playback.as_read(playback)
    return read


@router.get(
    "/analytics/folders/{folder_id}", response_model=InsightRead, response_model_by_alias=True, responses=NOT_FOUND
)
def folder_insight(
    request: Request,
    folder_id: uuid.UUID,
    principal: CurrentPrincipal,
    db: DbSession,
    services: ServicesDep,
    now: Now,
    org_id: uuid.UUID,
    days: Days = None,
    from_: Annotated[
        str | None, Query(alias="from", description="first day, YYYY-MM-DD in the organisation's time zone")
    ] = None,
    to: Day = None,
    partner: uuid.UUID | None = None,
    file: uuid.UUID | None = None,
    category: Text = None,
    country: Annotated[str | None, Query(max_length=2)] = None,
    browser: Text = None,
    os: Text = None,
    device: Literal["desktop", "mobile", "tablet", "unknown"] | None = None,
    lms: Literal["moodle", "canvas", "other", "none"] | None = None,
    course: Text = None,
) -> InsightRead:
    """A folder's performance over its whole subtree, and its files ranked by fail rate among files with at least
    `min_views_to_rank` views. Same parameters as the file's."""
    found = _report(request, "folder", folder_id, principal=principal, db=db, services=services, now=now, org_id=org_id)
    return as_read(found, org_id)
