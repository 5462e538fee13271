"""The operator's Analytics data page: erase one partner's analytics data, after a confirmation step."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from studyshelf.analytics import erasure
from studyshelf.core.errors import Invalid
from studyshelf.partners import service as partners
from studyshelf.partners.deps import DbSession, Now, ServicesDep
from studyshelf.partners.models import OrgKind
from studyshelf.partners.pages import PagePrincipal
from studyshelf.partners.permissions import require_operator_admin
from studyshelf.partners.principal import Principal
from studyshelf.web.i18n import N_
from studyshelf.web.render import render, translated

router = APIRouter(include_in_schema=False)
PATH = "/settings/analytics-data"

# The refusals of analytics.erasure that this page (or the error page in its place) shows, for extraction
# (`make messages`); both show them with `| translate`.
REFUSALS = (
    N_("Only a partner organisation's analytics data can be erased, not the operator's."),
    N_("The analytics warehouse cannot be reached; nothing was erased. Try again shortly."),
)


def _page(
    request: Request, db: Session, principal: Principal, *, chosen: uuid.UUID | None, status: int = 200, **extra: Any
) -> Response:
    orgs = [o for o in partners.list_organizations(db, principal=principal) if o.kind is OrgKind.PARTNER]
    target = erasure.erasable(db, principal=principal, org_id=chosen) if chosen else None
    context = {"title": "Analytics data", "nav": "analytics-data", "orgs": orgs, "target": target, **extra}
    return render(request, "analytics/erasure.html", context, status=status)


@router.get(PATH, response_class=HTMLResponse)
def erasure_page(
    request: Request,
    principal: PagePrincipal,
    db: DbSession,
    org_id: uuid.UUID | None = None,
    erased: uuid.UUID | None = None,
) -> Response:
    """Choose a partner; with `org_id`, the confirmation step (what goes, and the slug to type)."""
    require_operator_admin(principal, what=erasure.WHAT)
    erased_name = partners.get_organization(db, erased).name if erased else None
    return _page(request, db, principal, chosen=org_id, erased_name=erased_name)


@router.post(PATH + "/erase", response_class=HTMLResponse)
def erase(
    request: Request,
    principal: PagePrincipal,
    db: DbSession,
    services: ServicesDep,
    now: Now,
    background: BackgroundTasks,
    org_id: Annotated[uuid.UUID, Form()],
    confirm: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    require_operator_admin(principal, what=erasure.WHAT)
    try:
        done = erasure.erase(db, services.warehouse, principal=principal, org_id=org_id, confirm=confirm)
    except Invalid as exc:
        db.rollback()
        error = exc.detail
        if exc.extra.get("field") == "confirm":
            slug = erasure.erasable(db, principal=principal, org_id=org_id).slug
            error = translated(
                request, N_("Type the organisation's slug (%(slug)s) to confirm the erasure."), slug=slug
            )
        return _page(request, db, principal, chosen=org_id, status=422, error=error)
    background.add_task(erasure.rebuild, services, done.stale_days, now=now)
    return RedirectResponse(f"{PATH}?erased={done.org_id}", status_code=303)
