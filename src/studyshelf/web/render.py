"""Jinja rendering for pages and HTMX fragments."""

from __future__ import annotations

import re
import secrets
from collections.abc import Hashable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from studyshelf.web import i18n
from studyshelf.web.assets import static_assets

TEMPLATE_DIR = Path(__file__).parent / "templates"

_env = Environment(
    loader=FileSystemLoader(TEMPLATE_DIR),
    autoescape=select_autoescape(["html", "xml"]),
    trim_blocks=True,
    lstrip_blocks=True,
    extensions=["jinja2.ext.i18n"],
    # Templates ship with the release: compiled once per process, never stat()ed again on each render.
    auto_reload=False,
)
# newstyle: `_("%(n)s pages", n=3)` formats and escapes inside the call, so a translation cannot inject markup.
_env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]


def environment() -> Environment:
    return _env


def human_size(size: int | None) -> str:
    return i18n.format_size(size)


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything is stored in UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def short_datetime(value: datetime | None) -> str:
    """`26 Nov 2025, 14:05` (UTC) in English, localised otherwise: the format every table in the UI uses."""
    return i18n.format_short_datetime(value)


def iso_datetime(value: datetime | None) -> str:
    return "" if value is None else _utc(value).isoformat(timespec="seconds")


_env.filters["human_size"] = human_size
_env.filters["short_datetime"] = short_datetime
_env.filters["iso_datetime"] = iso_datetime
_env.filters["format_number"] = i18n.format_number
# `{{ headline | translate }}` for a message chosen in Python (marked with N_): unlike `_()`, its result is
# escaped like any value, so it is safe on text that may come from outside (an LMS's error description).
_env.filters["translate"] = i18n.gettext


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
    """Render a page, or only one named block of it (an HTMX fragment) when block is given, in the request's
    language (`request_locale`)."""
    locale = request_locale(request)
    ctx = {"request": request, "lang": locale, **getattr(request.state, "template_context", {}), **(context or {})}
    tmpl = _env.get_template(template)
    with i18n.use_locale(locale):
        html = "".join(tmpl.blocks[block](tmpl.new_context(ctx))) if block is not None else tmpl.render(ctx)
    return _page(html, locale, status=status, headers=headers)


def _page(html: str, locale: str, *, status: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    """A rendered page's answer: its language named, and caches told it varies with Accept-Language."""
    response = HTMLResponse(html, status_code=status, headers=headers)
    response.headers["content-language"] = locale
    response.headers.setdefault("vary", "Accept-Language")
    return response


class PageSkeletons:
    """Pages rendered once per key, with the strings that change on every request (signed URLs, tokens) left as
    slots and filled in by a join.

    The caller puts `slot(i)` into the context where its i-th per-request string goes and names, in the key,
    everything else the page depends on (the request's locale is added here). A slot must only be used as
    escaped text (an attribute or element text): it is filled with the string escaped exactly as Jinja's
    autoescape would have, so the page is byte for byte what `render` makes (tests/web/test_page_skeletons.py).
    """

    def __init__(self, max_entries: int = 1024) -> None:
        self.max_entries = max_entries
        self._mark = f"slot{secrets.token_hex(8)}x"  # per process: no file name or label can contain it
        self._split = re.compile(f"{self._mark}(\\d+){self._mark}")
        self._pages: dict[Hashable, list[str]] = {}

    def slot(self, index: int) -> str:
        return f"{self._mark}{index}{self._mark}"

    def render(
        self,
        request: Request,
        template: str,
        key: Hashable,
        context: dict[str, Any],
        fills: Sequence[str],
        *,
        headers: dict[str, str] | None = None,
    ) -> HTMLResponse:
        locale = request_locale(request)
        pieces = self._pages.get((template, locale, key))
        if pieces is None:
            if len(self._pages) >= self.max_entries:
                self._pages.clear()
            ctx = {"request": request, "lang": locale, **context}
            with i18n.use_locale(locale):
                html = _env.get_template(template).render(ctx)
            pieces = self._pages[(template, locale, key)] = self._split.split(html)
        # pieces alternate: text, slot index, text, … (re.split with one group)
        html = "".join(piece if i % 2 == 0 else str(escape(fills[int(piece)])) for i, piece in enumerate(pieces))
        return _page(html, locale, headers=headers)


def set_launch_locale(request: Request, launch_locale: str | None) -> None:
    """Render this request's pages in an LTI launch's locale (when we ship it) rather than the browser's."""
    request.state.locale = i18n.choose_locale(
        launch_locale=launch_locale, accept_language=request.headers.get("accept-language")
    )


def request_locale(request: Request) -> str:
    """The locale a launch chose for this request (`set_launch_locale`), else the browser's Accept-Language."""
    chosen = getattr(request.state, "locale", None)
    if isinstance(chosen, str):
        return chosen
    return i18n.negotiate(request.headers.get("accept-language"))


def translated(request: Request, message: str, **params: object) -> str:
    """A message marked with N_() in the request's language, its `%(name)s` placeholders filled (toasts: text only,
    never markup, so a name cannot inject any)."""
    with i18n.use_locale(request_locale(request)):
        text = i18n.gettext(message)
    return text % params if params else text


def render_error_page(
    request: Request, *, status: int, title: str, detail: str, headers: dict[str, str] | None = None
) -> HTMLResponse:
    context = {"status": status, "title": title, "detail": detail}
    return render(request, "error.html", context, status=status, headers=headers)
