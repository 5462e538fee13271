"""The partner admins' page: connect an LMS (dynamic registration URL, manual values, Canvas JSON), manage platforms."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from studyshelf.core.errors import NotFound, StudyShelfError
from studyshelf.lti import invites, registrations
from studyshelf.lti.tool_config import canvas_developer_key, manual_values
from studyshelf.partners.deps import DbSession, Now, ServicesDep
from studyshelf.partners.pages import PagePrincipal, current_org_id
from studyshelf.partners.permissions import Permission, require
from studyshelf.partners.principal import Principal
from studyshelf.services import Services
from studyshelf.web.render import render

router = APIRouter(include_in_schema=False)
FormStr = Annotated[str, Form()]
PAGE = "/settings/lms"


def _org(principal: Principal) -> uuid.UUID:
    org_id = current_org_id(principal)
    if org_id is None:
        raise NotFound("You belong to no organisation.")
    require(principal, Permission.MEMBERS_MANAGE, org_id, what="organisation")
    return org_id


def _page(
    request: Request,
    db: DbSession,
    services: Services,
    principal: Principal,
    *,
    now: datetime,
    status: int = 200,
    **extra: Any,
) -> Response:
    org_id = _org(principal)
    settings = services.settings
    context = {
        "title": "LMS connections",
        "nav": "organization",
        "registrations": registrations.list_registrations(db, principal=principal, org_id=org_id),
        "invites": invites.list_invites(db, principal=principal, org_id=org_id, now=now),
        "manual": manual_values(settings),
        "canvas_json": json.dumps(canvas_developer_key(settings), indent=2),
        "link_hours": int(settings.lti_registration_link_lifetime.total_seconds() // 3600),
        **extra,
    }
    return render(request, "lti/admin.html", context, status=status)


@router.get(PAGE, response_class=HTMLResponse)
def lms_page(request: Request, principal: PagePrincipal, db: DbSession, services: ServicesDep, now: Now) -> Response:
    return _page(request, db, services, principal, now=now)


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.replace(",", "\n").splitlines() if line.strip()]


@router.post(PAGE, response_class=HTMLResponse)
def add_platform(
    request: Request,
    principal: PagePrincipal,
    db: DbSession,
    services: ServicesDep,
    issuer: FormStr,
    client_id: FormStr,
    auth_url: FormStr,
    jwks_url: FormStr,
    now: Now,
    deployment_ids: FormStr = "",
    token_url: FormStr = "",
    name: FormStr = "",
) -> Response:
    """Register a platform by hand."""
    spec = registrations.RegistrationSpec(
        issuer=issuer,
        client_id=client_id,
        auth_url=auth_url,
        jwks_url=jwks_url,
        token_url=token_url,
        deployment_ids=_lines(deployment_ids),
        name=name,
    )
    try:
        registrations.create_registration(
            db,
            principal=principal,
            org_id=_org(principal),
            spec=spec,
            allow_loopback_http=services.settings.environment != "production",
        )
    except StudyShelfError as exc:
        db.rollback()
        return _page(request, db, services, principal, status=exc.status, error=exc.detail, form=spec, now=now)
    return RedirectResponse(PAGE, status_code=303)


@router.post(PAGE + "/{registration_id}/deployments", response_class=HTMLResponse)
def change_deployments(
    registration_id: uuid.UUID, principal: PagePrincipal, db: DbSession, deployment_ids: FormStr = ""
) -> Response:
    registrations.set_deployments(
        db, principal=principal, registration_id=registration_id, deployment_ids=_lines(deployment_ids)
    )
    return RedirectResponse(PAGE, status_code=303)


@router.post(PAGE + "/{registration_id}/delete", response_class=HTMLResponse)
def remove_platform(registration_id: uuid.UUID, principal: PagePrincipal, db: DbSession) -> Response:
    registrations.delete_registration(db, principal=principal, registration_id=registration_id)
    return RedirectResponse(PAGE, status_code=303)


@router.post(PAGE + "/invites", response_class=HTMLResponse)
def create_invite(
    request: Request, principal: PagePrincipal, db: DbSession, services: ServicesDep, now: Now
) -> Response:
    """A new single-use registration URL, shown once (only its hash is kept)."""
    invite, token = invites.create_invite(
        db, principal=principal, org_id=_org(principal), settings=services.settings, now=now
    )
    url = invites.invite_url(services.settings, token)
    page = _page(request, db, services, principal, status=201, new_url=url, new_expires=invite.expires_at, now=now)
    page.headers["cache-control"] = "no-store"  # the page carries a bearer URL
    return page


@router.post(PAGE + "/invites/{invite_id}/revoke", response_class=HTMLResponse)
def revoke_invite(invite_id: uuid.UUID, principal: PagePrincipal, db: DbSession, now: Now) -> Response:
    invites.revoke_invite(db, principal=principal, invite_id=invite_id, now=now)
    return RedirectResponse(PAGE, status_code=303)
