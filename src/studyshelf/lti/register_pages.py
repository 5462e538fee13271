"""GET /lti/register: LTI Dynamic Registration, started by the LMS admin pasting a registration URL."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.background import BackgroundTask

from studyshelf.core.db import unit_of_work
from studyshelf.core.errors import PermissionDenied, StudyShelfError
from studyshelf.lti import dynamic, invites
from studyshelf.lti.web import error_page, headers
from studyshelf.notify import service as notify
from studyshelf.partners.deps import Now, ServicesDep
from studyshelf.services import Services
from studyshelf.web.i18n import N_
from studyshelf.web.render import render

router = APIRouter(include_in_schema=False)


@router.get("/lti/register")
def register(
    request: Request,
    services: ServicesDep,
    now: Now,
    openid_configuration: str = "",
    registration_token: str | None = None,
    invite: str = "",
) -> Response:
    """Use the registration URL once: register with the platform for its organisation, then ask the LMS to close us."""
    try:
        if not invite:
            raise PermissionDenied(invites.UNKNOWN)
        if not openid_configuration:  # opened in a browser: say so, without using the URL up
            with unit_of_work(services.read_sessions) as db:
                invites.check_invite(db, token=invite, now=now)
            raise StudyShelfError(
                N_("Open this URL from the LMS's dynamic registration (it adds openid_configuration).")
            )
        name, deployments = _register(services, invite, openid_configuration, registration_token, now=now)
    except StudyShelfError as exc:
        return error_page(
            request, status=exc.status, headline=N_("StudyShelf could not be registered"), message=exc.detail
        )
    context = {"title": N_("StudyShelf is registered"), "name": name, "deployments": deployments}
    response = render(request, "lti/registered.html", context, headers=headers(frames=None))
    response.background = BackgroundTask(notify.drain, services)  # the admins' notices leave after commit
    return response


def _register(
    services: Services, token: str, openid_configuration: str, registration_token: str | None, now: datetime
) -> tuple[str, list[str]]:
    with unit_of_work(services.write_sessions) as db:  # committed before the platform is contacted
        claimed = invites.claim_invite(db, token=token, now=now)
        invite_id, org_id = claimed.id, claimed.org_id
    try:
        with unit_of_work(services.write_sessions) as db:
            created = dynamic.register(
                db,
                settings=services.settings,
                client=services.outbound,
                org_id=org_id,
                openid_configuration=openid_configuration,
                registration_token=registration_token,
            )
            invites.complete_invite(db, invite_id=invite_id, registration=created, now=now)
            return created.name, created.deployments
    except Exception:
        with unit_of_work(services.write_sessions) as db:
            invites.release_invite(db, invite_id=invite_id)
        raise
