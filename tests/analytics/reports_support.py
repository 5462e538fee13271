"""Helpers for daily-report tests: rollup rows written straight into the app DB, and a library to name them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from studyshelf.analytics.reports.models import DailyRollup, RolledDay
from studyshelf.core.db import unit_of_work
from studyshelf.services import Services
from tests.conftest import World
from tests.library.support import make_folder, uploaded
from tests.sharing.support import Partnership, grant, partnership

DAY = date(2026, 11, 20)


def rollup(
    services: Services,
    *,
    scope: uuid.UUID | str,
    rows: dict[tuple[str, str], dict[str, int]],
    day: date = DAY,
    tz: str = "UTC",
) -> None:
    """Write rollup rows {(dim, value): metrics} of one scope and day."""
    with unit_of_work(services.write_sessions) as db:
        for (dim, value), metrics in rows.items():
            db.add(DailyRollup(tz=tz, scope=str(scope), day=day, dim=dim, value=value, **_zeros(metrics)))


def mark_rolled(services: Services, *, day: date = DAY, tz: str = "UTC", events: int = 0) -> None:
    with unit_of_work(services.write_sessions) as db:
        db.add(RolledDay(tz=tz, day=day, events=events))


def _zeros(metrics: dict[str, int]) -> dict[str, int]:
    base = dict.fromkeys(("views", "viewers", "load_ok", "fails", "downloads", "blocked", "bytes", "load_ms_sum"), 0)
    base.update({f"h{i}": 0 for i in range(16)})
    return {**base, **metrics}


@dataclass
class Shelf:
    """A publisher sharing Course/ (notes.txt, Week 1/=cmd.pdf) with a university, and a day of their usage."""

    p: Partnership
    week: dict[str, Any]
    evil: dict[str, Any]


def shelf(world: World, *, day: date = DAY) -> Shelf:
    p = partnership(world)
    week = make_folder(p.publisher, p.course["id"], "Week 1")
    evil = uploaded(p.publisher, week["id"], "=cmd.pdf", b"%PDF-1.4 not really")
    assert grant(p.publisher, p.course["id"], p.partner.id).status_code == 201
    notes, course = p.notes["id"], p.course["id"]
    rollup(
        world.services,
        scope=p.operator.id,
        day=day,
        rows={
            ("", ""): {"views": 10, "viewers": 4, "load_ok": 6, "fails": 2, "downloads": 1, "bytes": 1000},
            ("file", notes): {"views": 7, "viewers": 3, "load_ok": 5, "fails": 1, "bytes": 700},
            ("file", evil["id"]): {"views": 3, "viewers": 1, "load_ok": 1, "fails": 1, "downloads": 1, "bytes": 300},
            ("folder", course): {"views": 7, "viewers": 3, "load_ok": 5, "fails": 1, "bytes": 700},
            ("folder", week["id"]): {"views": 3, "viewers": 1, "load_ok": 1, "fails": 1, "bytes": 300},
            ("country", "GB"): {"views": 8, "viewers": 3, "load_ok": 5, "fails": 1},
            ("country", ""): {"views": 2, "viewers": 1, "load_ok": 1, "fails": 1},
            ("browser", "Chrome"): {"views": 10, "viewers": 4, "load_ok": 6, "fails": 2},
            ("category", "document"): {"views": 10, "viewers": 4, "load_ok": 6, "fails": 2},
            ("extension", "txt"): {"views": 7, "viewers": 3, "load_ok": 5, "fails": 1},
            ("extension", "pdf"): {"views": 3, "viewers": 1, "load_ok": 1, "fails": 1},
        },
    )
    rollup(
        world.services,
        scope=p.partner.id,
        day=day,
        rows={
            ("", ""): {"views": 5, "viewers": 2, "load_ok": 5},
            ("file", notes): {"views": 5, "viewers": 2, "load_ok": 5},
            ("folder", course): {"views": 5, "viewers": 2, "load_ok": 5},
        },
    )
    mark_rolled(world.services, day=day, events=15)
    return Shelf(p, week, evil)
