"""The learner's language: gettext catalogues (Babel), the locale of a request, localised dates and numbers.

Catalogues live as `locale/<lang>/LC_MESSAGES/messages.po` beside the package and are compiled into memory
on first use (Babel's pofile + mofile), so no compiled `.mo` file is committed or can drift from its `.po`.
The locale of one rendering is a context variable set by `web.render.render`: templates call `_()` and the
`format_*` filters, which read it; each request renders in its own context, so requests never share it.
"""

from __future__ import annotations

import gettext as stdlib_gettext
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import cache
from io import BytesIO
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.core import negotiate_locale
from babel.dates import format_datetime as babel_format_datetime
from babel.dates import format_skeleton
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

LOCALE_DIR = Path(__file__).parent.parent / "locale"
DEFAULT_LOCALE = "en"
# English is the source language (the msgids); every other shipped language has a catalogue.
LOCALES = ("en", "de", "es")
MAX_HEADER_ENTRIES = 20

_current: ContextVar[str] = ContextVar("studyshelf_locale", default=DEFAULT_LOCALE)


def N_(message: str) -> str:  # noqa: N802 (the gettext convention extraction looks for)
    """Mark a string for extraction whose translation happens later, where it is shown (`_(value)` in a template)."""
    return message


@cache
def translations(locale: str) -> stdlib_gettext.NullTranslations:
    """The compiled catalogue of a shipped language (English and unknown languages: the msgids themselves)."""
    po_path = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if locale == DEFAULT_LOCALE or not po_path.is_file():
        return stdlib_gettext.NullTranslations()
    with po_path.open("rb") as po_file:
        catalog = read_po(po_file, locale=locale)
    compiled = BytesIO()
    write_mo(compiled, catalog)  # fuzzy entries are left out, as msgfmt does
    compiled.seek(0)
    return Translations(compiled)


def normalise(tag: str | None) -> str | None:
    """A shipped locale for a language tag (`de-DE`, `de_AT`, `ES`), or None."""
    if not tag:
        return None
    return negotiate_locale([tag.strip().replace("_", "-").lower()], list(LOCALES), sep="-")


def preferred_languages(accept_language: str | None) -> list[str]:
    """The tags of an Accept-Language header, most wanted first (`q=0` drops a tag; bad entries are ignored)."""
    if not accept_language:
        return []
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept_language.split(",")[:MAX_HEADER_ENTRIES]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and tag != "*" and quality > 0:
            weighted.append((-quality, index, tag.strip()))
    return [tag for _q, _i, tag in sorted(weighted)]


def negotiate(accept_language: str | None) -> str:
    """The shipped locale that best fits an Accept-Language header; English when none fits."""
    for tag in preferred_languages(accept_language):
        found = normalise(tag)
        if found is not None:
            return found
    return DEFAULT_LOCALE


def choose_locale(*, launch_locale: str | None, accept_language: str | None) -> str:
    """An LTI launch's locale when we ship it, else the browser's Accept-Language, else English."""
    return normalise(launch_locale) or negotiate(accept_language)


@contextmanager
def use_locale(locale: str) -> Iterator[None]:
    """Render (translate and format) in `locale` inside the block."""
    token = _current.set(locale if locale in LOCALES else DEFAULT_LOCALE)
    try:
        yield
    finally:
        _current.reset(token)


def current_locale() -> str:
    return _current.get()


def gettext(message: str) -> str:
    return translations(_current.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_current.get()).ngettext(singular, plural, n)


def _babel_locale() -> Locale:
    try:
        return Locale.parse(_current.get())
    except (ValueError, UnknownLocaleError):
        return Locale.parse(DEFAULT_LOCALE)


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything is stored in UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def format_short_datetime(value: datetime | None) -> str:
    """`26 Nov 2025, 14:05` in English, `26. Nov. 2025, 14:05` in German (UTC)."""
    if value is None:
        return "—"
    locale = _babel_locale()
    if locale.language == "en":  # the day-first form every table has always shown
        return babel_format_datetime(_utc(value), "d MMM y, HH:mm", tzinfo=UTC, locale=locale)
    at = _utc(value)
    return f"{format_skeleton('yMMMd', at, tzinfo=UTC, locale=locale)}, {at:%H:%M}"


def format_number(value: float | int | None, digits: int = 0) -> str:
    """A number with the locale's grouping and decimal sign: 12,345.6 · 12.345,6."""
    if value is None:
        return "—"
    pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "")
    return format_decimal(value, format=pattern, locale=_babel_locale())


def format_size(size: int | None) -> str:
    """A byte count for people: `830 B`, `1.5 MB` (`1,5 MB` in German)."""
    if size is None:
        return "—"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{format_number(value, 0 if unit == 'B' else 1)} {unit}"
        value /= 1024
    return f"{size} B"
