"""The dashboard's request: a period and filters read from the page's query string, and the URLs that change them."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Final
from urllib.parse import urlencode

from babel.dates import format_interval, format_skeleton

from studyshelf.analytics.service import MAX_RANGE_DAYS
from studyshelf.core.errors import Invalid
from studyshelf.events.schema import LMS_VALUES
from studyshelf.web.i18n import DEFAULT_LOCALE, N_, current_locale

PATH: Final = "/analytics"
# Periods by name (the `days` parameter): whole days of the organisation's time zone, ending today, or calendar
# months; "custom" takes `from` and `to`.
PRESETS: Final = {
    "today": N_("Today"),
    "7": N_("Last 7 days"),
    "30": N_("Last 30 days"),
    "90": N_("Last 90 days"),
    "month": N_("This month"),
    "last-month": N_("Last month"),
}
DEFAULT_PRESET: Final = "30"
DEVICES: Final = ("desktop", "mobile", "tablet", "unknown")
CATEGORIES: Final = ("pdf", "video", "audio", "image", "document", "text", "other")
ID_FILTERS: Final = ("partner", "folder", "file")
PERIOD_PARAMETERS: Final = ("days", "from", "to", "compare")
# Every filter the page understands, in the order chips show them, with the longest value it accepts.
FILTERS: Final = {
    "partner": 36,
    "folder": 36,
    "file": 36,
    "category": 20,
    "country": 2,
    "browser": 40,
    "os": 40,
    "device": 10,
    "lms": 10,
    "course": 255,
}


@dataclass(frozen=True)
class DashboardQuery:
    """What the dashboard shows: days `start`..`end` (inclusive, of the time zone `tz`), a preset or "custom",
    filters, and whether the series overlays the previous period (`compare`)."""

    start: date
    end: date
    preset: str = DEFAULT_PRESET
    filters: dict[str, str] = field(default_factory=dict)
    compare: bool = False
    tz: str = "UTC"

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def title(self) -> str:
        return PRESETS.get(self.preset, N_("Custom range"))

    @property
    def span(self) -> str:
        """The days in words: "26 Jul – 8 Aug 2026", or one day; in the locale being rendered ("26. Juli – 8. Aug.
        2026" in German)."""
        locale = current_locale()
        if locale != DEFAULT_LOCALE:
            if self.days == 1:
                return format_skeleton("yMMMd", self.start, locale=locale)
            return format_interval(self.start, self.end, "yMMMd", locale=locale)
        if self.days == 1:
            return f"{self.start:%-d %b %Y}"
        return f"{self.start:%-d %b} – {self.end:%-d %b %Y}"

    @property
    def range_text(self) -> str:
        """The first and last day, each with its year: "26 Jul 2026 – 8 Aug 2026" (the filters' summary line)."""
        locale = current_locale()
        if locale != DEFAULT_LOCALE:
            days = [format_skeleton("yMMMd", day, locale=locale) for day in (self.start, self.end)]
        else:
            days = [f"{day:%-d %b %Y}" for day in (self.start, self.end)]
        return days[0] if self.days == 1 else f"{days[0]} – {days[1]}"

    def previous(self) -> DashboardQuery:
        """The period of the same length just before this one, with the same filters."""
        end = self.start - timedelta(days=1)
        return replace(self, start=end - timedelta(days=self.days - 1), end=end, preset="custom")

    def params(self, **changes: str | None) -> dict[str, str]:
        """The query string of this view with some parameters changed (None removes one)."""
        values: dict[str, str | None] = {"days": None if self.preset == DEFAULT_PRESET else self.preset}
        if self.preset == "custom":
            values |= {"from": self.start.isoformat(), "to": self.end.isoformat()}
        values |= self.filters
        values["compare"] = "1" if self.compare else None
        values |= changes
        if values.get("days") in PRESETS:
            values |= {"from": None, "to": None}
        return {k: v for k, v in values.items() if v}

    def url(self, **changes: str | None) -> str:
        """This view's URL with some parameters changed: a drill-down adds a filter, a chip removes one."""
        query = urlencode(self.params(**changes))
        return f"{PATH}?{query}" if query else PATH


def _day(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise Invalid(f"`{name}` is not a date (YYYY-MM-DD).") from exc


def _filter(name: str, value: str) -> str:
    if name == "country":
        if len(value) != 2 or not value.isalpha():
            raise Invalid(N_("`country` is a two-letter country code."))
        return value.upper()
    if len(value) > FILTERS[name]:
        raise Invalid(f"`{name}` is too long.")
    if name in ID_FILTERS:
        try:
            return str(uuid.UUID(value))
        except ValueError as exc:
            raise Invalid(f"`{name}` must be an id.") from exc
    if name == "device" and value not in DEVICES:
        raise Invalid(f"`device` is one of: {', '.join(DEVICES)}.")
    if name == "lms" and value not in LMS_VALUES:
        raise Invalid(f"`lms` is one of: {', '.join(LMS_VALUES)}.")
    return value


def _preset_days(preset: str, today: date) -> tuple[date, date]:
    if preset == "today":
        return today, today
    if preset == "month":
        return today.replace(day=1), today
    if preset == "last-month":
        end = today.replace(day=1) - timedelta(days=1)
        return end.replace(day=1), end
    return today - timedelta(days=int(preset) - 1), today


def parse_query(params: Mapping[str, str], *, today: date, tz: str = "UTC") -> DashboardQuery:
    """Read the page's query string (`today` is the date in the organisation's time zone `tz`); anything
    malformed is Invalid with a message that says what to fix."""
    unknown = sorted(set(params) - {*PERIOD_PARAMETERS, *FILTERS})
    if unknown:
        raise Invalid(f"Unknown parameter `{unknown[0][:40]}`; the filters are: {', '.join(FILTERS)}.")
    preset = params.get("days") or ("custom" if params.get("from") or params.get("to") else DEFAULT_PRESET)
    if preset in PRESETS:
        start, end = _preset_days(preset, today)
    elif preset == "custom":
        end = _day(params["to"], "to") if params.get("to") else today
        start = _day(params["from"], "from") if params.get("from") else end - timedelta(days=29)
    else:
        raise Invalid(f"`days` is one of: {', '.join(PRESETS)}, custom.")
    if params.get("compare", "") not in {"", "1"}:
        raise Invalid(N_("`compare` is 1 (overlay the previous period) or absent."))
    if end < start:
        raise Invalid(N_("The first day is after the last day."))
    if (end - start).days > MAX_RANGE_DAYS:
        raise Invalid(f"Choose at most {MAX_RANGE_DAYS} days.")
    filters = {name: _filter(name, value.strip()) for name in FILTERS if (value := params.get(name, "")).strip()}
    compare = params.get("compare") == "1"
    return DashboardQuery(start=start, end=end, preset=preset, filters=filters, compare=compare, tz=tz)
