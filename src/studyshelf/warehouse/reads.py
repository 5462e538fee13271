"""The methods both SQL warehouses share: the same SQL (query.py, rollup.py, org_events.py) run through each one's
`_all`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection
from datetime import datetime
from typing import Any, ClassVar

from studyshelf.events.schema import COLUMNS
from studyshelf.warehouse import insight as insight_sql
from studyshelf.warehouse import load_failures as failures_sql
from studyshelf.warehouse import org_events
from studyshelf.warehouse import playback as playback_sql
from studyshelf.warehouse import query as q
from studyshelf.warehouse import rollup as rollup_sql
from studyshelf.warehouse.interface import (
    ROLLUP_DIMENSIONS,
    Insight,
    LoadFailures,
    Playback,
    RollupRow,
    Summary,
    SummaryQuery,
)


class SqlReads(ABC):
    postgres: ClassVar[bool] = False  # which dialect query.py writes

    @abstractmethod
    def _all(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        """Every row of one read statement (`?` placeholders), engine errors raised as WarehouseError."""

    @staticmethod
    @abstractmethod
    def _as_utc(value: datetime) -> datetime:
        """A timestamp the engine returned, as an aware UTC datetime."""

    def summary(self, query: SummaryQuery) -> Summary:
        rows = self._all(*q.summary_sql(query, postgres=self.postgres))
        return q.summary(rows, query, as_utc=self._as_utc)

    def count(self) -> int:
        return int(self._all("SELECT count(*) FROM events", [])[0][0])

    def rollup(
        self,
        start: datetime,
        end: datetime,
        *,
        orgs: Collection[str] | None = None,
        platform: bool = True,
        dims: Collection[str] = ROLLUP_DIMENSIONS,
    ) -> list[RollupRow]:
        return rollup_sql.rows(self._all(*rollup_sql.rollup_sql(start, end, orgs=orgs, platform=platform, dims=dims)))

    def earliest(self) -> datetime | None:
        value = self._all(rollup_sql.EARLIEST_SQL, [])[0][0]
        return None if value is None else self._as_utc(value)

    def load_failures(self, start: datetime, end: datetime, *, min_views: int) -> list[LoadFailures]:
        return failures_sql.rows(self._all(*failures_sql.load_failures_sql(start, end)), min_views=min_views)

    def latest(self) -> datetime | None:
        value = self._all(failures_sql.LATEST_SQL, [])[0][0]
        return None if value is None else self._as_utc(value)

    def org_events(
        self, org: str, start: datetime, end: datetime, *, after: tuple[datetime, str] | None = None, limit: int
    ) -> list[tuple[Any, ...]]:
        rows = self._all(*org_events.page_sql(org, start, end, after=after, limit=limit))
        ts = COLUMNS.index("ts")
        return [org_events.plain_row(row, self._as_utc(row[ts])) for row in rows]

    def insight(self, query: SummaryQuery) -> Insight:
        loads, usage = insight_sql.insight_sql(query, postgres=self.postgres)
        return insight_sql.insight(self._all(*loads), self._all(*usage), as_utc=self._as_utc)

    def playback(self, query: SummaryQuery) -> Playback:
        return playback_sql.playback(self._all(*playback_sql.playback_sql(query, postgres=self.postgres)))
