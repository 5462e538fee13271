"""Jinja rendering for pages and HTMX fragments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

TEMPLATE_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

_env = Environment(
    loader=FileSystemLoader(TEMPLATE_DIR),
    autoescape=select_autoescape(["html", "xml"]),
    trim_blocks=True,
    lstrip_blocks=True,
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


_env.filters["human_size"] = human_size


def render(request: Request, template: str, context: dict[str, Any] | None = None, *, status: int = 200, block: str | None = None, headers: dict[str, str] | None = None) -> HTMLResponse:
    """Render a page, or only one named block of it (an HTMX fragment) when block is given."""
    ctx = {"request": request, **getattr(request.state, "template_context", {}), **(context or {})}
    tmpl = _env.get_template(template)
    if block is not None:
        html = "".join(tmpl.blocks[block](tmpl.new_context(ctx)))
    else:
        html = tmpl.render(ctx)
    return HTMLResponse(html, status_code=status, headers=headers)


def render_error_page(request: Request, *, status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> HTMLResponse:
    return render(request, "error.html", {"status": status, "title": title, "detail": detail}, status=status, headers=headers)
