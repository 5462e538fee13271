"""The SQL of a media file's playback figures, written once for DuckDB and PostgreSQL (like insight.py).

A viewer page reports its playback in `playback` events, each with the page view's watch time so far (media
time played, not wall time), the furthest position reached (in % of the duration), and the rendition and
captions language in use when it reported. A page view's figures are its latest: its largest watch time and
furthest position. Watch time by rendition or captions language is what a view played between two of its
reports, given to what it reported the second time (a view that changed rendition mid-way splits its time).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from studyshelf.warehouse.interface import COMPLETE_PCT, Playback, PlaybackRow, SummaryQuery
from studyshelf.warehouse.query import TABLE, where


def playback_sql(query: SummaryQuery, table: str = TABLE, *, postgres: bool = False) -> tuple[str, list[Any]]:
    """One statement: rows of (g, key, views, watch ms, median reached %, completed) — g 'r' per rendition,
    'c' per captions language, 't' the totals."""
    clause, params = where(query, table, postgres=postgres)
    played = (
        "SELECT session, rendition, captions, watch_ms, reached_pct, greatest(0, watch_ms - coalesce(lag(watch_ms) "
        f"OVER (PARTITION BY session ORDER BY ts, watch_ms), 0)) AS played {clause} "
        "AND type = 'playback' AND watch_ms IS NOT NULL"
    )
    per_view = "SELECT session, max(watch_ms) AS w, max(reached_pct) AS r FROM p GROUP BY session"
    sql = (
        f"WITH p AS ({played}) "  # noqa: S608 - identifiers and fragments are module constants; values are bound parameters
        "SELECT 'r' AS g, rendition AS k, count(DISTINCT session) AS views, sum(played) AS w, "
        "CAST(NULL AS DOUBLE PRECISION) AS m, CAST(NULL AS BIGINT) AS c FROM p GROUP BY rendition "
        "UNION ALL SELECT 'c', captions, count(DISTINCT session), sum(played), NULL, NULL FROM p GROUP BY captions "
        "UNION ALL SELECT 't', '', count(*), sum(w), percentile_cont(0.5) WITHIN GROUP (ORDER BY r), "
        f"count(*) FILTER (WHERE r >= {COMPLETE_PCT}) FROM ({per_view}) AS v"
    )
    return sql, list(params)


def playback(rows: Sequence[tuple[Any, ...]]) -> Playback:
    """Assemble the rows of playback_sql."""
    renditions: list[PlaybackRow] = []
    captions: list[PlaybackRow] = []
    views = watch = completed = 0
    median: float | None = None
    for g, key, count, watch_ms, reached, done in rows:
        if g == "t":
            views, watch, completed = int(count or 0), int(watch_ms or 0), int(done or 0)
            median = None if reached is None else float(reached)
        else:
            row = PlaybackRow(key or "", int(count or 0), int(watch_ms or 0))
            (renditions if g == "r" else captions).append(row)

    def order(row: PlaybackRow) -> tuple[int, int, str]:
        return (-row.watch_ms, -row.views, row.key)

    return Playback(
        views=views,
        watch_ms=watch,
        median_reached_pct=median,
        completed=completed,
        renditions=sorted(renditions, key=order),
        captions=sorted(captions, key=order),
    )
