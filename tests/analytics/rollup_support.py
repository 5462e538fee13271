"""Helpers for rollup tests: varied events, services over a given warehouse, rollup rows as plain dicts."""

from __future__ import annotations

import dataclasses
import random
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import delete, select

from studyshelf.analytics.reports.models import DailyRollup, MonthlyRollup, RolledDay
from studyshelf.core.db import unit_of_work
from studyshelf.events import Event
from studyshelf.services import Services
from studyshelf.warehouse import Warehouse
from tests.analytics.support import OWNER, PARTNER_A, PARTNER_B, event

ORGS = (OWNER, PARTNER_A, PARTNER_B)
FOLDERS = tuple(str(uuid.UUID(int=i)) for i in (20, 21, 22, 23))
PATHS = ((FOLDERS[0],), (FOLDERS[0], FOLDERS[1]), (FOLDERS[0], FOLDERS[1], FOLDERS[2]), (FOLDERS[0], FOLDERS[3]))
FILES = tuple(str(uuid.UUID(int=i)) for i in (100, 101, 102, 103))
TYPES = ("view", "view", "view", "load_ok", "load_ok", "load_fail", "download", "blocked")


def varied(
    rng: random.Random, start: datetime, hours: int, n: int, *, owners: tuple[str, ...] = ORGS[:2]
) -> list[Event]:
    """n events spread over `hours` from `start`, over every dimension; viewer ids rotate daily as in production."""
    out = []
    for _ in range(n):
        ts = start + timedelta(minutes=rng.randrange(hours * 60))
        path = rng.choice(PATHS)
        kind = rng.choice(TYPES)
        out.append(
            event(
                kind,
                ts=ts,
                owner_org=rng.choice(owners),
                partner_org=rng.choice(ORGS),
                file_id=rng.choice(FILES),
                folder_id=path[-1],
                folder_path=path,
                country=rng.choice(["GB", "DE", ""]),
                browser=rng.choice(["Chrome", "Firefox"]),
                os=rng.choice(["Windows", "iOS"]),
                device=rng.choice(["desktop", "mobile"]),
                category=rng.choice(["pdf", "video"]),
                extension=rng.choice(["pdf", "mp4"]),
                lms=rng.choice(["moodle", "canvas", "none"]),
                course=rng.choice(["", "c1", "c2"]),
                link_id=rng.choice([None, "link-a", "link-b"]),
                viewer=f"{rng.choice('abcdef')}-{ts.astimezone(UTC).date()}",
                bytes=rng.randrange(10_000) if kind in {"download", "load_fail"} else 0,
                load_ms=rng.randrange(5, 40_000) if kind == "load_ok" else None,
                error_class=rng.choice(["network", "decode"]) if kind == "load_fail" else "",
                reason=rng.choice(["origin", "expired"]) if kind == "blocked" else "",
                bot=rng.random() < 0.1,
            )
        )
    return out


def seeded(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 (reproducible test data, not secrets)


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def with_warehouse(services: Services, warehouse: Warehouse) -> Services:
    return dataclasses.replace(services, warehouse=warehouse)


def clear_rollups(services: Services) -> None:
    with unit_of_work(services.write_sessions) as db:
        for model in (DailyRollup, MonthlyRollup, RolledDay):
            db.execute(delete(model))


def daily_rows(services: Services, *, tz: str = "UTC") -> dict[tuple[Any, ...], tuple[int, ...]]:
    """Every daily rollup row of a zone: (day, scope, dim, value) → its numbers."""
    numbers = [c.name for c in DailyRollup.__table__.columns if c.name not in {"tz", "day", "scope", "dim", "value"}]
    with unit_of_work(services.read_sessions) as db:
        rows = db.execute(select(DailyRollup).where(DailyRollup.tz == tz)).scalars().all()
        return {(r.day, r.scope, r.dim, r.value): tuple(getattr(r, c) for c in numbers) for r in rows}
