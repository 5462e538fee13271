"""Shared bits of the LTI pages: their CSP (framed by LMSs), the error page, our own URLs."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from studyshelf.delivery.embed import frame_ancestors
from studyshelf.settings import Settings
from studyshelf.web.assets import script_src
from studyshelf.web.render import render

# Login, launch checks and error pages carry nothing worth clickjacking and must load inside any
# customer's LMS host (Canvas customers' hosts are only learned from their first signed launch).
ANY_FRAME = "frame-ancestors *"


def lti_csp(*, frames: list[str] | None, form_targets: list[str] | None = None) -> str:
    ancestors = ANY_FRAME if frames is None else frame_ancestors(frames)
    forms = " ".join(["'self'", *(form_targets or [])])
    return (
        f"default-src 'self'; {script_src()}; style-src 'self'; img-src 'self' data: blob:; "
        "media-src 'self' blob:; worker-src 'self' blob:; connect-src 'self'; font-src 'self'; "
        f"object-src 'none'; base-uri 'none'; form-action {forms}; {ancestors}"
    )


def headers(*, frames: list[str] | None, form_targets: list[str] | None = None) -> dict[str, str]:
    return {"content-security-policy": lti_csp(frames=frames, form_targets=form_targets), "cache-control": "no-store"}


def error_page(request: Request, *, status: int, headline: str, message: str) -> HTMLResponse:
    context = {"headline": headline, "message": message, "title": headline}
    return render(request, "delivery/blocked.html", context, status=status, headers=headers(frames=None))


def base_url(settings: Settings) -> str:
    return settings.base_url.rstrip("/")


def launch_url(settings: Settings) -> str:
    return base_url(settings) + "/lti/launch"


def login_url(settings: Settings) -> str:
    return base_url(settings) + "/lti/login"


def jwks_url(settings: Settings) -> str:
    return base_url(settings) + "/lti/jwks"
