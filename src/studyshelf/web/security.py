"""Security headers, client addresses behind trusted proxies, request ids, cross-site form posts."""

from __future__ import annotations

import ipaddress
import re
import time
import uuid
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from studyshelf.web.assets import script_src


def ui_csp() -> str:
    """The policy of every page that does not set its own (the viewer and the LTI pages do)."""
    return (
        f"default-src 'self'; {script_src()}; style-src 'self'; img-src 'self' data: blob:; "
        "media-src 'self' blob:; worker-src 'self' blob:; connect-src 'self'; font-src 'self'; "
        "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'"
    )


def _is_trusted(host: str | None, trusted: list[str]) -> bool:
    if not host or not trusted:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in trusted)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers") or []:
        if key == name:
            return bytes(value).decode("latin-1")
    return ""


def client_ip(scope: Scope, trusted: list[str]) -> str:
    """The client's address; X-Forwarded-For counts only when the peer is a trusted proxy."""
    peer = scope.get("client")
    host: str | None = str(peer[0]) if peer else None
    if _is_trusted(host, trusted):
        forwarded = _header(scope, b"x-forwarded-for")
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        # Walk from the nearest hop back; the first untrusted address is the client.
        for hop in reversed(hops):
            if not _is_trusted(hop, trusted):
                return hop
    return host or "unknown"


_PROXY_REQUEST_ID = re.compile(r"[A-Za-z0-9-]{16,64}")
_PROXY_START = re.compile(r"t=(\d{9,11}(?:\.\d{1,6})?)")
PROXY_START_SKEW_SECONDS = 300  # a start time further from ours than this is not believed


def proxied_request(scope: Scope, trusted: list[str], *, now: float | None = None) -> tuple[str, int] | None:
    """(request id, start in unix ms) that a trusted proxy gave this request (`X-Request-ID`, `X-Request-Start:
    t=<seconds>`, as deploy/nginx sets them), or None. A retry of the request on another instance carries the
    same two, so whatever is derived from them is the same there; from anyone else they are ignored."""
    peer = scope.get("client")
    if not _is_trusted(str(peer[0]) if peer else None, trusted):
        return None
    request_id, start = _header(scope, b"x-request-id"), _PROXY_START.fullmatch(_header(scope, b"x-request-start"))
    if not _PROXY_REQUEST_ID.fullmatch(request_id) or start is None:
        return None
    started = float(start.group(1))
    if abs(started - (time.time() if now is None else now)) > PROXY_START_SKEW_SECONDS:
        return None
    return request_id, round(started * 1000)


def is_https(scope: Scope, trusted: list[str]) -> bool:
    if str(scope.get("scheme")) == "https":
        return True
    peer = scope.get("client")
    if peer and _is_trusted(str(peer[0]), trusted):
        return _header(scope, b"x-forwarded-proto").lower() == "https"
    return False


def _origin(url: str) -> str:
    """scheme://host[:port] of a URL, lowercased, without a default port; "" when it has none."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return ""
    if not parts.scheme or not parts.hostname:
        return ""
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    suffix = f":{port}" if port is not None and port != default else ""
    return f"{parts.scheme.lower()}://{host.lower()}{suffix}"


def is_cross_site(scope: Scope, *, base_url: str) -> bool:
    """Whether a browser sent this request from a page of another site (the login-CSRF check).

    Sec-Fetch-Site decides when the browser sends it (every current one does): only `same-origin` and
    `none` (typed, bookmarked) pass. Otherwise Origin, else the Referer's origin, must be the base URL's.
    A request with none of the three is not a current browser's cross-site form post (every current browser
    sends Origin on a cross-origin POST), so scripts and API clients pass; a browser that sends neither
    Origin nor Referer on a cross-site POST (Firefox before 70, with the attacker's no-referrer) is the
    one gap. Over plain HTTP to a host other than localhost, browsers omit Sec-Fetch-Site and Origin
    decides: STUDYSHELF_BASE_URL must then be the address browsers use.
    """
    fetch_site = _header(scope, b"sec-fetch-site").strip().lower()
    if fetch_site:
        return fetch_site not in ("same-origin", "none")
    own = _origin(base_url)
    origin = _header(scope, b"origin").strip()
    if origin:
        return _origin(origin) != own  # "null" (sandboxed frames, data: pages) has no origin
    referer = _header(scope, b"referer").strip()
    if referer:
        return _origin(referer) != own
    return False


class SecurityHeadersMiddleware:
    """Adds the baseline headers to every response, and a request id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.csp = ui_csp()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # ops/observe.py (outermost) gave the request its id; an app without it gets one here
        request_id = scope.setdefault("state", {}).setdefault("request_id", uuid.uuid4().hex)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("x-content-type-options", "nosniff")
                headers.setdefault("referrer-policy", "strict-origin-when-cross-origin")
                headers.setdefault("x-request-id", request_id)
                if "content-security-policy" not in headers:
                    headers["content-security-policy"] = self.csp
            await send(message)

        await self.app(scope, receive, send_with_headers)
