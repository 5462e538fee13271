"""Comparison with the previous period: the change of each headline figure, and the files rising and falling.

The previous period is the one of the same length just before (DashboardQuery.previous); its figures come from
the same service call as the current ones, so both read rollups or both raw events under the same rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from studyshelf.analytics.dashboard import DashboardQuery
from studyshelf.analytics.names import Names
from studyshelf.warehouse import Metrics

MOVERS: Final = 5  # rising and falling files shown, each
RANKED_FILES: Final = 500  # files of each period compared: the most viewed, so a mover is among them

Tone = Literal["good", "bad", "flat", ""]


@dataclass(frozen=True)
class Change:
    """How a figure moved: `text` for the tile ("+12 (+25%)"), `tone` for its colour, `arrow` up, down or ""."""

    text: str
    tone: Tone
    arrow: Literal["up", "down", ""]


@dataclass(frozen=True)
class Mover:
    key: str
    views: int
    before: int

    @property
    def change(self) -> int:
        return self.views - self.before

    @property
    def text(self) -> str:
        if not self.before:
            return f"+{self.change:,} (new)"
        return f"{self.change:+,} ({self.change * 100 / self.before:+.0f}%)"


def change(
    current: float | None,
    before: float | None,
    *,
    higher_is_good: bool = True,
    shown: Callable[[float], str] = lambda value: f"{value:,.0f}",
) -> Change:
    """The change of one figure, absolute and relative; neutral words when there is nothing to compare with."""
    if current is None or before is None:
        return Change("none before" if before is None else "none now", "", "")
    delta = current - before
    if not delta:
        return Change("no change", "flat", "")
    arrow: Literal["up", "down"] = "up" if delta > 0 else "down"
    tone: Tone = "good" if (delta > 0) == higher_is_good else "bad"
    amount = ("+" if delta > 0 else "-") + shown(abs(delta))
    if not before:
        return Change(f"{amount} (none before)", tone, arrow)
    return Change(f"{amount} ({delta * 100 / before:+.0f}%)", tone, arrow)


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
    text: str
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
                text=m.text,
                drill=query.url(file=m.key),
            )
        )
    return rows
