"""The embed policy: which origins may frame a link, what a request tells us about its parent, and bots.

The browser enforces `frame-ancestors`; the server adds what it can see (Sec-Fetch-*, Referer when
present). Referer is a hint only: a missing one never blocks (privacy settings strip it).
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from urllib.parse import urlsplit

from studyshelf.core.bots import is_bot
from studyshelf.core.errors import Invalid

_LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "[::1]"}
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def normalise_origin(raw: str) -> str:
    """Return `scheme://host[:port]` in canonical form (IDN hosts as punycode), or raise Invalid with why."""
    value = raw.strip()
    if not value:
        raise Invalid("An origin cannot be empty.")
    if "*" in value:
        raise Invalid(f"{value!r}: wildcards are not allowed; list each LMS origin, e.g. https://moodle.example.edu.")
    parts = urlsplit(value)
    if parts.scheme not in {"https", "http"} or not parts.netloc:
        raise Invalid(f"{value!r}: an origin looks like https://lms.example.edu (scheme and host).")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise Invalid(f"{value!r}: an origin cannot contain a user name or password.")
    if parts.path not in {"", "/"} or parts.query or parts.fragment:
        raise Invalid(f"{value!r}: an origin has no path, query or fragment; use only scheme://host[:port].")
    try:
        port = parts.port
    except ValueError as exc:
        raise Invalid(f"{value!r}: the port is not valid.") from exc
    host = _normalise_host(parts.hostname or "", value)
    if parts.scheme == "http" and host not in _LOOPBACK_HOSTS:
        raise Invalid(f"{value!r}: use https:// (plain http is accepted only for localhost).")
    default_port = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default_port else "")


def _normalise_host(host: str, raw: str) -> str:
    if not host:
        raise Invalid(f"{raw!r}: the host is missing.")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return f"[{address}]" if address.version == 6 else str(address)
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise Invalid(f"{raw!r}: the host is not a valid domain name.") from exc
    labels = ascii_host.rstrip(".").split(".")
    if not all(_HOST_LABEL.match(label) for label in labels):
        raise Invalid(f"{raw!r}: the host is not a valid domain name.")
    return ".".join(labels)


def normalise_origins(raw: list[str]) -> list[str]:
    """Normalise a list of origins, dropping duplicates, keeping order; at most 20."""
    if len(raw) > 20:
        raise Invalid("At most 20 origins per link.")
    result: list[str] = []
    for value in raw:
        origin = normalise_origin(value)
        if origin not in result:
            result.append(origin)
    return result


@lru_cache(maxsize=4096)  # a class's visits share a few referrers; IDNA encoding is the costly part
def origin_of(url: str) -> str | None:
    """The canonical origin of any http(s) URL (a Referer, our own address), or None when it has none."""
    try:
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            return None
        host = _normalise_host(parts.hostname, url)
        port = parts.port
    except (Invalid, ValueError):
        return None
    default_port = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default_port else "")


def frame_ancestors(origins: list[str]) -> str:
    """The CSP directive: our own origin always, plus the allowed ones."""
    return " ".join(["frame-ancestors", "'self'", *origins])


def embed_refusal(
    *,
    embed_only: bool,
    allowed: list[str],
    own_origin: str,
    sec_fetch_dest: str | None,
    sec_fetch_site: str | None,
    referer: str | None,
) -> str | None:
    """Why the request must be refused ('top-level' or 'origin'), or None when it may go on."""
    dest = (sec_fetch_dest or "").lower()
    if embed_only and dest == "document":
        return "top-level"
    if dest not in {"iframe", "frame", "embed", "object"} or (sec_fetch_site or "").lower() == "same-origin":
        return None
    parent = origin_of(referer) if referer else None
    if parent is not None and parent != own_origin and parent not in allowed:
        return "origin"
    return None


def is_link_previewer(user_agent: str | None) -> bool:
    """Chat unfurlers, crawlers and scripted clients: shown a preview card, never counted as a view."""
    return is_bot(user_agent)
