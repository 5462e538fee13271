"""Analytics warehouses; build_warehouse() is the one place that chooses."""

from __future__ import annotations

from pathlib import Path

from studyshelf.warehouse.interface import (
    ALL_PARTS,
    AUDIENCE,
    AUDIENCE_SEPARATOR,
    DIMENSIONS,
    LOAD_BUCKETS_MS,
    PLATFORM_SCOPE,
    ROLLUP_DIMENSIONS,
    Bucket,
    FailureRow,
    Insight,
    LoadFailures,
    Metrics,
    Part,
    PlacementRow,
    Playback,
    PlaybackRow,
    RollupRow,
    Summary,
    SummaryQuery,
    VersionRow,
    Warehouse,
    WarehouseError,
)

__all__ = [
    "ALL_PARTS",
    "AUDIENCE",
    "AUDIENCE_SEPARATOR",
    "DIMENSIONS",
    "LOAD_BUCKETS_MS",
    "PLATFORM_SCOPE",
    "ROLLUP_DIMENSIONS",
    "Bucket",
    "FailureRow",
    "Insight",
    "LoadFailures",
    "Metrics",
    "Part",
    "PlacementRow",
    "Playback",
    "PlaybackRow",
    "RollupRow",
    "Summary",
    "SummaryQuery",
    "VersionRow",
    "Warehouse",
    "WarehouseError",
    "build_warehouse",
]


def build_warehouse(url: str) -> Warehouse:
    """duckdb://path (or duckdb://:memory:) or postgresql://… (optional ?schema=name, default analytics)."""
    if url.startswith("duckdb://"):
        from studyshelf.warehouse.duckdb import DuckDBWarehouse

        rest = url.removeprefix("duckdb://")
        return DuckDBWarehouse(rest if rest == ":memory:" else Path(rest))
    if url.startswith(("postgresql://", "postgres://")):
        from studyshelf.warehouse.postgres import PostgresWarehouse

        return PostgresWarehouse(url)
    raise ValueError(f"unsupported STUDYSHELF_WAREHOUSE_URL {url!r} (use duckdb://path or postgresql://…)")
