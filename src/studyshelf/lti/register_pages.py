"""GET /lti/register: LTI Dynamic Registration, started by the LMS admin pasting our registration URL."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from studyshelf.core.db import unit_of_work
from studyshelf.core.errors import StudyShelfError
from studyshelf.lti import dynamic
from studyshelf.lti.tool_config import check_registration_url
from studyshelf.lti.web import error_page, headers
from studyshelf.partners.deps import ServicesDep
from studyshelf.web.render import render

router = APIRouter(include_in_schema=False)


@router.get("/lti/register")
def register(
    request: Request,
    services: ServicesDep,
    openid_configuration: str = "",
    registration_token: str | None = None,
    org: str = "",
    exp: str = "",
    sig: str = "",
) -> Response:
    """Register with the platform for the organisation the signed URL names, then ask the LMS to close us."""
    settings = services.settings
    try:
        org_id = check_registration_url(settings, org=org, expires=exp, sig=sig)
        if not openid_configuration:
            raise StudyShelfError("Open this URL from the LMS's dynamic registration (it adds openid_configuration).")
        with unit_of_work(services.write_sessions) as db:
            created = dynamic.register(
                db,
                settings=settings,
                client=services.outbound,
                org_id=org_id,
                openid_configuration=openid_configuration,
                registration_token=registration_token,
            )
            name, deployments = created.name, created.deployments
    except StudyShelfError as exc:
        return error_page(request, status=exc.status, headline="StudyShelf could not be registered", message=exc.detail)
    context = {"title": "StudyShelf is registered", "name": name, "deployments": deployments}
    return render(request, "lti/registered.html", context, headers=headers(frames=None))
