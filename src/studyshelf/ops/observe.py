"""The outermost middleware: a request id, the request metrics, the alarms' request signals and one access log line
per request, all from one timing of it.

The id comes from a well-formed incoming `X-Request-ID` (a proxy's) or is a new UUIDv7; it is bound into every
log line written while the request runs, stored in `scope["state"]` (audit entries carry it) and sent back as
`X-Request-ID`. Metrics are labelled by route template, never by raw path, so ids do not explode the series.
Bytes are counted from the body actually sent (a `pathsend` by its Content-Length).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import Counter, Histogram
from starlette.datastructures import Headers
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from studyshelf.core.clock import Clock
from studyshelf.core.ids import new_id
from studyshelf.core.logs import bind_request
from studyshelf.ops import metrics, signals
from studyshelf.web.security import client_ip

access_log = logging.getLogger("studyshelf.access")
VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{8,64}")
MEDIA_PREFIX = "/m/"
MEDIA_ROUTE = "/m/{media_url}"  # answered by delivery/media.py before the router
UNMATCHED = "unmatched"
UPLOAD_ROUTES = frozenset({("POST", "/api/v1/folders/{folder_id}/files"), ("POST", "/api/v1/files/{file_id}/versions")})
VIEWER_PREFIXES = ("/v/", "/lti/view/", "/lti/media/")
BYTE_FAMILIES = ("download", "media", "viewer", "other")
# Any other method counts as "other": label values a client can make up would grow the series without end.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def request_id_from(scope: Scope) -> str:
    """The caller's X-Request-ID when it is a sane token, else a new UUIDv7."""
    for key, value in scope["headers"]:
        if key == b"x-request-id":
            offered = bytes(value).decode("latin-1").strip()
            return offered if VALID_REQUEST_ID.fullmatch(offered) else str(new_id())
    return str(new_id())


def byte_family(route: str) -> str:
    """Which family a route's response bytes count under: download, media, viewer or other."""
    if route == MEDIA_ROUTE:
        return "media"
    if route.startswith("/api/v1/files/") and route.endswith("/content"):
        return "download"
    if route.startswith(VIEWER_PREFIXES):
        return "viewer"
    return "other"


@dataclass
class _Exchange:
    """What one request did, gathered as its messages pass."""

    request_id: str
    started: float
    status: int = 0
    body_bytes: int = 0
    received_bytes: int = 0
    declared_length: int = 0
    headers_sent: bool = False


class RequestObserver:
    """Request id, metrics, request signals and the access log line for every HTTP request (mounted outermost by
    create_app); with `signals`, it also writes the signals' minutes while the app's lifespan runs."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Iterable[BaseRoute],
        trusted_proxies: list[str],
        clock: Clock,
        flusher: signals.RequestFlusher | None = None,
        personal_data: bool = False,
    ) -> None:
        self.app = app
        self.clock = clock
        self.flusher = flusher
        # Requests answered before the router (the member fast path) carry no matched route, nor do mounts: their
        # template is found here. Routes carry their router's prefix, so `path_format` is the whole template.
        self.routes = [
            (route.path_regex, route.path_format, getattr(route, "methods", None) or set())
            for route in routes
            if isinstance(route, Route | Mount)
        ]
        self.trusted_proxies = trusted_proxies
        self.personal_data = personal_data
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._bytes = {family: metrics.BYTES_SERVED.labels(family) for family in BYTE_FAMILIES}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" and self.flusher is not None:
            await self.app(scope, self._lifespan(receive, self.flusher), send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        exchange = _Exchange(request_id_from(scope), time.perf_counter())
        scope.setdefault("state", {})["request_id"] = exchange.request_id
        unbind = bind_request(request_id=exchange.request_id)
        metrics.HTTP_IN_FLIGHT.inc()

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                exchange.received_bytes += len(message.get("body", b""))
            return message

        async def observing_send(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                exchange.status = int(message["status"])
                exchange.headers_sent = True
                headers = []
                for key, value in message.get("headers", ()):
                    if key == b"content-length":
                        exchange.declared_length = int(value)
                    if key != b"x-request-id":  # one id per request, also where a middleware set its own
                        headers.append((key, value))
                headers.append((b"x-request-id", exchange.request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            elif kind == "http.response.body":
                exchange.body_bytes += len(message.get("body", b""))
            elif kind == "http.response.pathsend":
                exchange.body_bytes += exchange.declared_length
            await send(message)

        try:
            await self.app(scope, counting_receive, observing_send)
        except BaseException:
            if not exchange.headers_sent:
                exchange.status = 500
            raise
        finally:
            metrics.HTTP_IN_FLIGHT.dec()
            self._record(scope, exchange)
            unbind()

    def _record(self, scope: Scope, exchange: _Exchange) -> None:
        method = str(scope["method"]) if scope["method"] in METHODS else "other"
        route = self.route_template(scope)
        status = exchange.status or 500
        elapsed = time.perf_counter() - exchange.started
        counted, timed = self._series(route, method, status)
        counted.inc()
        timed.observe(elapsed)
        signals.record_request(elapsed, status, self.clock.time())
        if exchange.body_bytes:
            self._bytes[byte_family(route)].inc(exchange.body_bytes)
        if (method, route) in UPLOAD_ROUTES:
            ok = status < 400
            metrics.UPLOADS.labels("ok" if ok else "failed").inc()
            if ok:
                metrics.UPLOAD_BYTES.inc(exchange.received_bytes)
        fields: dict[str, object] = {
            "route": route,
            "method": method,
            "status": status,
            "duration_ms": round(elapsed * 1000, 2),
            "bytes": exchange.body_bytes,
        }
        if (org_id := _org_id(scope)) is not None:
            fields["org_id"] = org_id
        if self.personal_data:
            fields["client_ip"] = client_ip(scope, self.trusted_proxies)
            fields["user_agent"] = Headers(scope=scope).get("user-agent", "")
        access_log.info("%s %s %d", method, route, status, extra=fields)

    @staticmethod
    def _lifespan(receive: Receive, flusher: signals.RequestFlusher) -> Receive:
        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                flusher.start()
            elif message["type"] == "lifespan.shutdown":
                flusher.stop()
            return message

        return wrapped

    def _series(self, route: str, method: str, status: int) -> tuple[Counter, Histogram]:
        """The request counter and latency histogram of these labels (found once: `labels()` costs a lock and a
        dict build on every call)."""
        key = (route, method, status // 100)
        found = self._children.get(key)
        if found is None:
            status_class = f"{min(status // 100, 5)}xx"
            found = (
                metrics.HTTP_REQUESTS.labels(route, method, status_class),
                metrics.HTTP_DURATION.labels(route, method),
            )
            self._children[key] = found
        return found

    def route_template(self, scope: Scope) -> str:
        """The matched route's template (`/api/v1/files/{file_id}/content`), or `unmatched`."""
        route = scope.get("route")
        if isinstance(route, Route | Mount):
            return route.path_format
        path = str(scope["path"])
        if path.startswith(MEDIA_PREFIX):
            return MEDIA_ROUTE
        method = str(scope["method"])
        for regex, template, methods in self.routes:
            if regex.match(path) and (not methods or method in methods):
                return template
        return UNMATCHED


def _org_id(scope: Scope) -> str | None:
    """The organisation a request acted in, when it says: a path parameter, or the principal's token or session."""
    org_id = (scope.get("path_params") or {}).get("org_id")
    if org_id:
        return str(org_id)
    principal = (scope.get("state") or {}).get("principal")
    # Only what is loaded already: after a rollback the rows are expired and a read would query a closed session.
    token = _loaded(getattr(principal, "token", None), "org_id")
    session = _loaded(getattr(principal, "session", None), "current_org_id")
    scoped = token or session
    return str(scoped) if scoped else None


def _loaded(row: object, name: str) -> object:
    return vars(row).get(name) if row is not None else None
