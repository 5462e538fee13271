"""The dashboard's tables as CSV downloads (/analytics/table.csv?table=…&the page's own parameters)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from studyshelf.analytics import service, table_csv
from studyshelf.analytics.dashboard import parse_query
from studyshelf.analytics.reports.rollup import zone
from studyshelf.core.errors import NotFound
from studyshelf.partners import service as partners
from studyshelf.partners.deps import DbSession, Now, ServicesDep
from studyshelf.partners.pages import PagePrincipal, current_org_id
from studyshelf.partners.permissions import Permission, require
from studyshelf.web.i18n import N_

router = APIRouter(include_in_schema=False)


@router.get(table_csv.PATH)
def table(request: Request, principal: PagePrincipal, db: DbSession, services: ServicesDep, now: Now) -> Response:
    """One table of the current organisation's dashboard, for the same period and filters, as CSV."""
    org_id = current_org_id(principal)
    if org_id is None:
        raise NotFound(N_("You are not a member of any organisation."))
    require(principal, Permission.ANALYTICS_READ, org_id, what="organisation")
    params = dict(request.query_params)
    name = params.pop("table", "")
    tz = service.time_zone(db, org_id=org_id)
    query = parse_query(params, today=now.astimezone(zone(tz)).date(), tz=tz)
    text = table_csv.build(db, services.warehouse, principal=principal, org_id=org_id, query=query, table=name, now=now)
    slug = partners.get_organization(db, org_id).slug
    filename = f"studyshelf-{slug}-{name}-{query.start.isoformat()}-{query.end.isoformat()}.csv"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"}
    return Response(text, media_type="text/csv; charset=utf-8", headers=headers)
