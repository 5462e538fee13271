"""Map errors to RFC 9457 problem+json (API) or a friendly page (browser), in one place."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from studyshelf.core.errors import NotAuthenticated, StudyShelfError
from studyshelf.web.i18n import N_

PROBLEM_BASE = "https://studyshelf.dev/problems/"
log = logging.getLogger("studyshelf.errors")

# The titles and details of core.errors that a browser's error page shows, for extraction (`make messages`);
# the page translates whatever it is given (`| translate`), and these are the ones a catalogue should hold.
ERROR_PAGE_MESSAGES = (
    N_("Authentication required"),
    N_("Stored file failed its integrity check"),
    N_("Service unavailable"),
    N_("Some fields are missing or malformed."),
    N_("Something went wrong on our side. It has been logged."),
    N_("Internal error"),
    N_("Not Found"),
    N_("The e-mail address or password is not correct."),  # the sign-in page's refusal (partners/service.py)
)
# core.outbound.check_url's refusals of a webhook URL (its default `what`), which the alarm contacts, the report
# settings and the link settings show with `| translate`; core cannot mark them itself (it sits below web).
WEBHOOK_URL_REFUSALS = (
    N_("The webhook URL is not a valid URL."),
    N_("The webhook URL needs a host, and no user name, password or spaces."),
    N_("The webhook URL must use https:// (plain http:// only to an IP address on an allowed network)."),
)

_HTTP_SLUGS = {
    400: ("bad-request", N_("Bad request")),
    401: ("not-authenticated", N_("Authentication required")),
    403: ("permission-denied", N_("Not allowed")),
    404: ("not-found", N_("Not found")),
    405: ("method-not-allowed", N_("Method not allowed")),
    409: ("conflict", N_("Conflict")),
    413: ("too-large", N_("Content too large")),
    415: ("unsupported-media-type", N_("Unsupported media type")),
    416: ("range-not-satisfiable", N_("Range not satisfiable")),
    422: ("invalid", N_("The request is not valid")),
    429: ("too-many-requests", N_("Too many requests")),
}


def loggable_path(request: Request) -> str:
    """The path to name in a log line: the matched route's template (`/invitations/{secret}`), never the raw path,
    which can carry a secret (an invitation, a registration token, a signed /m/ URL, a link id). A path no route
    matched keeps only its first segment when that is short (`/m/…`)."""
    template = getattr(request.scope.get("route"), "path_format", None)
    if isinstance(template, str):
        return template
    first = request.url.path.strip("/").split("/", 1)[0]
    return f"/{first}/…" if 0 < len(first) <= _LOGGED_SEGMENT else "/…"


_LOGGED_SEGMENT = 16


def wants_html(request: Request) -> bool:
    path = request.url.path
    if path.startswith(("/api/", "/m/", "/lti/")) or request.headers.get("hx-request"):
        return False
    return "text/html" in request.headers.get("accept", "")


def sign_in_redirect(request: Request) -> Response | None:
    """Send a browser that is not signed in to the sign-in page (HTMX gets HX-Redirect); None for API clients."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    login = "/login?" + urlencode({"next": target}) if request.method == "GET" and target != "/" else "/login"
    if request.headers.get("hx-request") and not request.url.path.startswith("/api/"):
        return Response(status_code=401, headers={"HX-Redirect": login})
    if wants_html(request):
        return RedirectResponse(login, status_code=303)
    return None


def problem(
    request: Request,
    *,
    status: int,
    slug: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    if wants_html(request):
        from studyshelf.web.render import render_error_page

        return render_error_page(request, status=status, title=title, detail=detail, headers=headers)
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StudyShelfError)
    async def _domain(request: Request, exc: StudyShelfError) -> Response:
        if isinstance(exc, NotAuthenticated) and (redirect := sign_in_redirect(request)) is not None:
            return redirect
        headers = {"Content-Range": str(exc.extra["content_range"])} if "content_range" in exc.extra else None
        if exc.status == 401:
            headers = {**(headers or {}), "WWW-Authenticate": 'Bearer realm="studyshelf"'}
        if "retry_after" in exc.extra:  # 429 and 503: seconds, also in the body as `retry_after`
            headers = {**(headers or {}), "Retry-After": str(exc.extra["retry_after"])}
        extra = {k: v for k, v in exc.extra.items() if k != "content_range"}
        if exc.status >= 500:  # our fault, not the caller's (a blob failing its integrity check, …): keep a trace
            log.error("%s on %s %s: %s", exc.type_slug, request.method, loggable_path(request), exc.detail)
        return problem(
            request, status=exc.status, slug=exc.type_slug, title=exc.title, detail=exc.detail, headers=headers, **extra
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()
        ]
        return problem(
            request,
            status=422,
            slug="invalid",
            title="The request is not valid",
            detail="Some fields are missing or malformed.",
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        slug, title = _HTTP_SLUGS.get(exc.status_code, ("error", "Error"))
        detail = exc.detail if isinstance(exc.detail, str) else title
        return problem(
            request, status=exc.status_code, slug=slug, title=title, detail=detail, headers=dict(exc.headers or {})
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, loggable_path(request))
        return problem(
            request,
            status=500,
            slug="internal",
            title="Internal error",
            detail="Something went wrong on our side. It has been logged.",
        )
