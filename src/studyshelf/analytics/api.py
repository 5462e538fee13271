"""Analytics routes: the members' usage summary, and the viewer's beacon."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from studyshelf.analytics import beacons, service
from studyshelf.analytics.collect import Collector
from studyshelf.analytics.names import Names
from studyshelf.analytics.schemas import BreakdownRow, MetricsRead, SeriesPoint, SummaryRead
from studyshelf.core.errors import TooLarge, Unavailable
from studyshelf.events.schema import ClientFacts
from studyshelf.partners.deps import ClientIp, CurrentPrincipal, DbSession, ServicesDep
from studyshelf.warehouse import Metrics

router = APIRouter(prefix="/api/v1", tags=["analytics"])
Breakdown = Literal[
    "partner", "owner", "file", "folder", "country", "browser", "os", "device", "category", "extension", "lms", "course"
]


@router.get("/analytics/summary", response_model=SummaryRead, response_model_by_alias=True)
def summary(
    principal: CurrentPrincipal,
    services: ServicesDep,
    db: DbSession,
    org_id: uuid.UUID,
    from_: Annotated[
        date | None, Query(alias="from", description="first day (the organisation's time zone), default 30 days ago")
    ] = None,
    to: Annotated[
        date | None, Query(description="last day (the organisation's time zone), inclusive, default today")
    ] = None,
    partner: uuid.UUID | None = None,
    owner: uuid.UUID | None = None,
    folder: Annotated[uuid.UUID | None, Query(description="the folder and everything below it")] = None,
    file: uuid.UUID | None = None,
    country: Annotated[str | None, Query(max_length=2)] = None,
    browser: Annotated[str | None, Query(max_length=40)] = None,
    os: Annotated[str | None, Query(max_length=40)] = None,
    device: Literal["desktop", "mobile", "tablet", "bot", "unknown"] | None = None,
    category: Annotated[str | None, Query(max_length=20)] = None,
    extension: Annotated[str | None, Query(max_length=10)] = None,
    lms: Literal["moodle", "canvas", "other", "none"] | None = None,
    course: Annotated[str | None, Query(max_length=255)] = None,
    breakdown: Breakdown | None = None,
    bucket: Literal["hour", "day", "week", "month"] | None = None,
) -> SummaryRead:
    """Views, unique viewers, failures, bytes and load times of an organisation's usage: its own content
    (by anyone it shared with) and its own use of content shared with it; never another partner's."""
    tz = service.time_zone(db, org_id=org_id)
    now = services.clock.now()
    end = to or now.astimezone(ZoneInfo(tz)).date()
    start = from_ or end - timedelta(days=29)
    given = {
        "partner": partner,
        "owner": owner,
        "folder": folder,
        "file": file,
        "country": country.upper() if country else None,
        "browser": browser,
        "os": os,
        "device": device,
        "category": category,
        "extension": extension,
        "lms": lms,
        "course": course,
    }
    filters = {k: str(v) for k, v in given.items() if v is not None}
    query = service.build_query(
        org_id=org_id, start=start, end=end, filters=filters, breakdown=breakdown, bucket=bucket, tz=tz
    )
    result = service.summarise(services.warehouse, principal=principal, org_id=org_id, query=query, db=db, now=now)
    names = Names(db, principal, org_id, now=now)
    names.learn(files=[k for k, _m in result.top_files], folders=[k for k, _m in result.top_folders])
    if breakdown == "course":
        names.learn_titles("course", [k for k, _m in result.breakdown])

    def row(dim: str | None, key: str, m: Metrics) -> BreakdownRow:
        return BreakdownRow(key=key, name=names.of(dim, key) if dim else None, **MetricsRead.of(m).model_dump())

    return SummaryRead(
        org_id=org_id,
        from_=start,
        to=end,
        bucket=query.bucket,
        filters=filters,
        totals=MetricsRead.of(result.totals),
        series=[SeriesPoint(t=t, **MetricsRead.of(m).model_dump()) for t, m in result.series],
        breakdown=breakdown,
        rows=[row(breakdown, k, m) for k, m in result.breakdown],
        top_files=[row("file", k, m) for k, m in result.top_files],
        top_folders=[row("folder", k, m) for k, m in result.top_folders],
        time_zone=tz,
        source=result.source,
    )


BEACON_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BeaconIn"}}},
    }
}


@router.post("/events", status_code=204, openapi_extra=BEACON_BODY, response_class=Response)
async def beacon(request: Request, services: ServicesDep, client: ClientIp) -> Response:
    """The viewer's beacon (navigator.sendBeacon): media loaded, failed, time to first frame or page."""
    collector = services.hits
    if not isinstance(collector, Collector):
        raise Unavailable("This process does not collect events.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > beacons.MAX_BODY:
        raise TooLarge("The event is too large.")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > beacons.MAX_BODY:
            raise TooLarge("The event is too large.")
    facts: ClientFacts = {
        "client_ip": client,
        "user_agent": request.headers.get("user-agent", ""),
        "referer": request.headers.get("referer", ""),
    }
    await run_in_threadpool(
        beacons.accept,
        body,
        keys=services.keys,
        limits=collector.beacons,
        enricher=collector.enricher,
        events=collector.events,
        client=facts,
        now=services.clock.time(),
    )
    return Response(status_code=204)
