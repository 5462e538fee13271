"""The world map: views and fail rate by country as shading classes over the vendored map (static/img/world-map.svg).

The page draws each country that has usage with `<use href="world-map.svg#XX">`; countries the 1:110m map
cannot show (small islands, city states) are still in the table beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from studyshelf.analytics.dashboard import DashboardQuery
from studyshelf.analytics.map_regions import MAP_HEIGHT, MAP_REGIONS
from studyshelf.warehouse import Metrics

STEPS: Final = 5  # shading classes 1..5
FAIL_RATE_STEPS: Final = (0.01, 0.03, 0.1, 0.25)  # upper bounds of the fail-rate classes 1..4; 5 is above
TABLE_ROWS: Final = 12


@dataclass(frozen=True)
class Country:
    code: str
    views: int
    fails: int
    fail_rate: float | None
    views_step: int  # 1..STEPS, by views on a log scale against the most viewed country
    fails_step: int  # 0 without loads reported, else 1..STEPS by fail rate
    on_map: bool
    url: str | None  # the drill-down; None when the page already shows only this country


@dataclass(frozen=True)
class WorldMap:
    countries: list[Country]  # most viewed first
    height: float = MAP_HEIGHT

    @property
    def drawn(self) -> list[Country]:
        return [c for c in self.countries if c.on_map]

    @property
    def table(self) -> list[Country]:
        return self.countries[:TABLE_ROWS]

    @property
    def more(self) -> int:
        return max(0, len(self.countries) - TABLE_ROWS)


def views_step(views: int, most: int) -> int:
    if views <= 0 or most <= 0:
        return 0
    if most == 1:
        return STEPS
    return 1 + min(STEPS - 1, int(math.log(views) / math.log(most) * STEPS))


def fails_step(rate: float | None) -> int:
    if rate is None:
        return 0
    return 1 + sum(rate > bound for bound in FAIL_RATE_STEPS)


def world_map(rows: list[tuple[str, Metrics]], query: DashboardQuery) -> WorldMap:
    """The map of a country breakdown (unknown countries are left out: they have no shape and no filter)."""
    known = [(key, m) for key, m in rows if len(key) == 2 and (m.views or m.fails)]
    most = max((m.views for _, m in known), default=0)
    countries = [
        Country(
            code=key,
            views=m.views,
            fails=m.fails,
            fail_rate=m.fail_rate,
            views_step=views_step(m.views, most),
            fails_step=fails_step(m.fail_rate),
            on_map=key in MAP_REGIONS,
            url=None if query.filters.get("country") == key else query.url(country=key),
        )
        for key, m in known
    ]
    return WorldMap(countries)
