"""Jinja rendering for pages and HTMX fragments."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from studyshelf.web.assets import static_assets

TEMPLATE_DIR = Path(__file__).parent / "templates"

_env = Environment(
    loader=FileSystemLoader(TEMPLATE_DIR),
    autoescape=select_autoescape(["html", "xml"]),
    trim_blocks=True,
    lstrip_blocks=True,
    # Templates ship with the release: compiled once per process, never stat()ed again on each render.
    auto_reload=False,
)


def environment() -> Environment:
    return _env


def human_size(size: int | None) -> str:
    if size is None:
        return "—"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything is stored in UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def short_datetime(value: datetime | None) -> str:
    """`26 Nov 2025, 14:05` (UTC), the format every table in the UI uses."""
    return "—" if value is None else _utc(value).strftime("%d %b %Y, %H:%M").lstrip("0")


def iso_datetime(value: datetime | None) -> str:
    return "" if value is None else _utc(value).isoformat(timespec="seconds")


_env.filters["human_size"] = human_size
_env.filters["short_datetime"] = short_datetime
_env.filters["iso_datetime"] = iso_datetime


def static_url(path: str) -> str:
    """The versioned URL of a file under static/, e.g. `static_url("js/app.js")`."""
    return static_assets().url(path)


def import_map() -> Markup:
    return static_assets().import_map_tag()


_env.globals["static_url"] = static_url
_env.globals["import_map"] = import_map


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true" and request.headers.get("hx-history-restore-request") != "true"


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
    block: str | None = None,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render a page, or only one named block of it (an HTMX fragment) when block is given."""
    ctx = {"request": request, **getattr(request.state, "template_context", {}), **(context or {})}
    tmpl = _env.get_template(template)
    html = "".join(tmpl.blocks[block](tmpl.new_context(ctx))) if block is not None else tmpl.render(ctx)
    return HTMLResponse(html, status_code=status, headers=headers)


def render_error_page(
    request: Request, *, status: int, title: str, detail: str, headers: dict[str, str] | None = None
) -> HTMLResponse:
    context = {"status": status, "title": title, "detail": detail}
    return render(request, "error.html", context, status=status, headers=headers)
