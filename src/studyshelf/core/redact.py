"""Secret-bearing URLs as people without the right to see them are shown them.

A webhook URL often carries its receiver's token in the path or the query, so anyone but an
organisation's admins sees only where it points: `https://hooks.example.com/…`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

HIDDEN = "…"


def mask_url(url: str) -> str:
    """The scheme, host and port of a URL; its user, path, query and fragment hidden ('' stays '')."""
    if not url:
        return ""
    try:
        parts = urlsplit(url.strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        return HIDDEN
    if not parts.scheme or not host:
        return HIDDEN
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    return f"{parts.scheme}://{netloc}/{HIDDEN}"


def unless_masked(submitted: str, stored: str) -> str:
    """The value to save from a form: the stored secret when what came back is its masked form."""
    return stored if stored and submitted.strip() == mask_url(stored) else submitted
