"""Who may see which usage: an organisation sees usage of its own content, and its own usage of others'."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

from studyshelf.analytics.warehouse import (
    DIMENSIONS,
    Bucket,
    Summary,
    SummaryQuery,
    Warehouse,
    WarehouseError,
)
from studyshelf.core.errors import Invalid, Unavailable
from studyshelf.partners.permissions import Permission, require
from studyshelf.partners.principal import Principal

MAX_RANGE_DAYS = 732


def build_query(
    *,
    org_id: uuid.UUID,
    start: date,
    end: date,
    filters: dict[str, str],
    breakdown: str | None,
    bucket: Bucket | None,
) -> SummaryQuery:
    """The warehouse query for an organisation's summary (dates inclusive, UTC)."""
    if end < start:
        raise Invalid("`to` is before `from`.")
    if (end - start).days > MAX_RANGE_DAYS:
        raise Invalid(f"At most {MAX_RANGE_DAYS} days per query.")
    if breakdown is not None and breakdown not in DIMENSIONS:
        raise Invalid(f"breakdown is one of: {', '.join(sorted(DIMENSIONS))}.")
    for name, value in filters.items():
        if name in {"partner", "owner", "file", "folder"}:
            try:
                uuid.UUID(value)
            except ValueError as exc:
                raise Invalid(f"{name} must be an id.") from exc
    days = (end - start).days + 1
    return SummaryQuery(
        start=datetime.combine(start, time(), UTC),
        end=datetime.combine(end + timedelta(days=1), time(), UTC),
        scope_org=str(org_id),
        filters=filters,
        breakdown=breakdown,
        bucket=bucket or ("hour" if days <= 2 else "day" if days <= 92 else "week"),
    )


def summarise(warehouse: Warehouse, *, principal: Principal, org_id: uuid.UUID, query: SummaryQuery) -> Summary:
    """Totals, series, breakdown and the top files and folders, within the organisation's scope."""
    require(principal, Permission.ANALYTICS_READ, org_id, what="organisation")
    if query.scope_org != str(org_id):
        raise Invalid("The query is not scoped to this organisation.")
    try:
        return warehouse.summary(query)
    except WarehouseError as exc:
        raise Unavailable("Usage figures are not available right now; try again shortly.") from exc
