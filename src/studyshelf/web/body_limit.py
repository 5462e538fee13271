"""A cap on request bodies, enforced while they stream in, so no JSON or form body is read whole unbounded.

FastAPI reads a JSON or form body into memory before it validates it (and before it resolves the route's
dependencies). This middleware refuses a declared Content-Length over the cap at once, before routing,
unless the body is multipart (an upload may be); otherwise it hands the application a `receive()` that
refuses such a body at its first read and counts the bytes of a chunked body as they arrive, so a body
past the cap costs at most one more chunk of memory. A route that streams its body to storage under its
own limit (uploads: settings.max_upload_bytes) calls `lift_body_limit` before it reads.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from studyshelf.web.errors import problem

_SCOPE_KEY = "studyshelf.body_limit"


class BodyTooLarge(HTTPException):
    """Raised from `receive()`; an HTTPException, so FastAPI's body parsing passes it on to the error handlers."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"The request body is larger than the limit of {limit} bytes.")


class _Limit:
    __slots__ = ("max_bytes",)

    def __init__(self, max_bytes: int | None) -> None:
        self.max_bytes = max_bytes


def lift_body_limit(request: Request) -> None:
    """Take this request's body out of the cap: the caller streams it and enforces a limit of its own."""
    limit = request.scope.get(_SCOPE_KEY)
    if isinstance(limit, _Limit):
        limit.max_bytes = None


class BodyLimitMiddleware:
    """Answer 413 (problem+json, or a page for a browser) to a request body larger than `max_bytes`."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes and not _may_be_upload(headers):
            await self._refuse(scope, receive, send, BodyTooLarge(self.max_bytes))  # before any routing
            return
        limit = scope[_SCOPE_KEY] = _Limit(self.max_bytes)
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            if limit.max_bytes is None:
                return await receive()
            if declared.isdigit() and int(declared) > limit.max_bytes:
                raise BodyTooLarge(limit.max_bytes)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit.max_bytes:
                    raise BodyTooLarge(limit.max_bytes)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge as exc:  # read outside FastAPI's error handlers (another middleware, say)
            if started:
                raise
            await self._refuse(scope, receive, send, exc)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, exc: BodyTooLarge) -> None:
        request = Request(scope, receive)
        response = problem(request, status=413, slug="too-large", title="Content too large", detail=exc.detail)
        await response(scope, receive, send)


def _may_be_upload(headers: Headers) -> bool:
    """Uploads are multipart; only a route can say it is one (lift_body_limit), so these wait for its first read."""
    return headers.get("content-type", "").lower().startswith("multipart/form-data")
