"""Comparison with the previous period: the change of each headline figure, and the files rising and falling.

The previous period is the one of the same length just before (DashboardQuery.previous); its figures come from
the same service call as the current ones, so both read rollups or both raw events under the same rules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from studyshelf.analytics.dashboard import DashboardQuery
from studyshelf.analytics.names import Names
from studyshelf.warehouse import Metrics
from studyshelf.web.i18n import N_, format_number

MOVERS: Final = 5  # rising and falling files shown, each
RANKED_FILES: Final = 500  # files of each period compared: the most viewed, so a mover is among them

Tone = Literal["good", "bad", "flat", ""]


@dataclass(frozen=True)
class Phrase:
    """Words for the page: an English message marked with N_ and the values of its `%(name)s` placeholders. The
    page translates the message and fills it in (the `said` macro of analytics/_macros.html); `str()` is English."""

    message: str
    args: Mapping[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message % self.args if self.args else self.message


@dataclass(frozen=True)
class Change:
    """How a figure moved: `phrase` for the tile ("+12 (+25%)"), `tone` for its colour, `arrow` up, down or ""."""

    phrase: Phrase
    tone: Tone
    arrow: Literal["up", "down", ""]

    @property
    def text(self) -> str:
        return str(self.phrase)


@dataclass(frozen=True)
class Mover:
    key: str
    views: int
    before: int

    @property
    def change(self) -> int:
        return self.views - self.before

    @property
    def phrase(self) -> Phrase:
        amount = ("+" if self.change > 0 else "-") + format_number(abs(self.change))
        if not self.before:
            return Phrase(N_("%(amount)s (new)"), {"amount": amount})
        return Phrase(f"{amount} ({self.change * 100 / self.before:+.0f}%)")

    @property
    def text(self) -> str:
        return str(self.phrase)


def change(
    current: float | None,
    before: float | None,
    *,
    higher_is_good: bool = True,
    shown: Callable[[float], str] = format_number,
) -> Change:
    """The change of one figure, absolute and relative; neutral words when there is nothing to compare with.
    Figures are formatted in the locale being rendered; words are marked for the page to translate."""
    if current is None or before is None:
        return Change(Phrase(N_("none before") if before is None else N_("none now")), "", "")
    delta = current - before
    if not delta:
        return Change(Phrase(N_("no change")), "flat", "")
    arrow: Literal["up", "down"] = "up" if delta > 0 else "down"
    tone: Tone = "good" if (delta > 0) == higher_is_good else "bad"
    amount = ("+" if delta > 0 else "-") + shown(abs(delta))
    if not before:
        return Change(Phrase(N_("%(amount)s (none before)"), {"amount": amount}), tone, arrow)
    return Change(Phrase(f"{amount} ({delta * 100 / before:+.0f}%)"), tone, arrow)


def kpi_changes(
    now: Metrics, before: Metrics, *, before_empty: bool, size: Callable[[float], str], duration: Callable[[float], str]
) -> dict[str, Change]:
    """The change of each KPI tile's figure, keyed like panels.kpis; empty when the previous period had no usage."""
    if before_empty:
        return {}
    return {
        "views": change(now.views, before.views),
        "viewers": change(now.viewers, before.viewers),
        "fails": change(now.fails, before.fails, higher_is_good=False),
        "downloads": change(now.downloads, before.downloads),
        "bytes": change(now.bytes, before.bytes, shown=size),
        "load": change(now.load_p50_ms, before.load_p50_ms, higher_is_good=False, shown=duration),
    }


def movers(now: list[tuple[str, Metrics]], before: list[tuple[str, Metrics]]) -> tuple[list[Mover], list[Mover]]:
    """Files whose views rose most, and fell most, between the two periods (among each period's most viewed)."""
    views_now = {key: m.views for key, m in now if key}
    views_before = {key: m.views for key, m in before if key}
    every = [Mover(key, views_now.get(key, 0), views_before.get(key, 0)) for key in views_now.keys() | views_before]
    rising = sorted((m for m in every if m.change > 0), key=lambda m: (-m.change, m.key))[:MOVERS]
    falling = sorted((m for m in every if m.change < 0), key=lambda m: (m.change, m.key))[:MOVERS]
    return rising, falling


@dataclass(frozen=True)
class MoverRow:
    key: str
    name: str | None
    href: str | None
    views: int
    before: int
    text: Phrase
    drill: str


def mover_rows(found: list[Mover], query: DashboardQuery, names: Names) -> list[MoverRow]:
    """The movers as the page lists them: names and links where the reader may see the file."""
    rows = []
    for m in found:
        file = names.file(m.key)
        rows.append(
            MoverRow(
                key=m.key,
                name=file[0] if file else None,
                href=f"/files/{m.key}" if file else None,
                views=m.views,
                before=m.before,
                text=m.phrase,
                drill=query.url(file=m.key),
            )
        )
    return rows
