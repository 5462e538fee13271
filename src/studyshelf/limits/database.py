"""ClusterLimits in the app database: every instance shares it, with or without Redis.

One table, `cluster_limits`: a window's counter is a row keyed by the window, an admitted item a row keyed by
`<seen>|<item>`, each with the time it expires (unix seconds). An admission is one transaction: a conditional
upsert of the window (counts only under the limit, or afresh once expired) and an insert of the item that
finds no live row; a concurrent admission of the same item waits for ours, finds it and is rolled back as
REPEATED, so nothing is counted twice. Expired rows are deleted now and then by the admissions themselves.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import cast

from sqlalchemy import Executable, Float, Integer, String, Table, case, delete, literal_column, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from studyshelf.core.db import Base, affected_rows, unit_of_work
from studyshelf.limits.interface import Verdict

PRUNE_EVERY = 1000  # admissions per process between deletions of expired rows
PRUNE_AFTER_SECONDS = 60.0


class ClusterLimitRow(Base):
    """A window's count, or an admitted item (count 1), until `expires_at`."""

    __tablename__ = "cluster_limits"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[float] = mapped_column(Float, index=True)


_TABLE = cast(Table, ClusterLimitRow.__table__)


class _Repeated(Exception):
    """The item was admitted by a concurrent transaction: roll ours back."""


class DatabaseClusterLimits:
    def __init__(self, sessions: sessionmaker[Session], *, clock: Callable[[], float] = time.time) -> None:
        self.sessions = sessions
        self.clock = clock
        self._admissions = 0
        self._lock = threading.Lock()

    def admit(self, *, seen: str, item: str, window: str, limit: int, seen_ttl: int, window_ttl: int) -> Verdict:
        now = self.clock()
        self._maybe_prune(now)
        try:
            with unit_of_work(self.sessions) as db:
                mark = f"{seen}|{item}"
                live = db.execute(select(_TABLE.c.expires_at).where(_TABLE.c.key == mark)).scalar()
                if live is not None and live > now:
                    return Verdict.REPEATED
                if not _count(db, window, limit=limit, expires_at=now + window_ttl, now=now):
                    return Verdict.OVER_LIMIT
                if not _mark(db, mark, expires_at=now + seen_ttl, now=now):
                    raise _Repeated
        except _Repeated:
            return Verdict.REPEATED
        return Verdict.ADMITTED

    def withdraw(self, *, seen: str, item: str, window: str) -> None:
        with unit_of_work(self.sessions) as db:
            if affected_rows(db.execute(delete(_TABLE).where(_TABLE.c.key == f"{seen}|{item}"))):
                db.execute(
                    update(_TABLE).where(_TABLE.c.key == window, _TABLE.c.count > 0).values(count=_TABLE.c.count - 1)
                )

    def close(self) -> None:
        pass

    def _maybe_prune(self, now: float) -> None:
        with self._lock:
            self._admissions += 1
            due = self._admissions % PRUNE_EVERY == 1
        if due:
            with unit_of_work(self.sessions) as db:
                db.execute(delete(_TABLE).where(_TABLE.c.expires_at < now - PRUNE_AFTER_SECONDS))


def _count(db: Session, window: str, *, limit: int, expires_at: float, now: float) -> bool:
    """Count one in the window unless it holds `limit` already (an expired window starts again at one)."""
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    expired = _TABLE.c.expires_at <= now
    statement: Executable = (
        insert(_TABLE)
        .values(key=window, count=1, expires_at=expires_at)
        .on_conflict_do_update(
            index_elements=[_TABLE.c.key],
            set_={"count": case((expired, 1), else_=_TABLE.c.count + 1), "expires_at": expires_at},
            where=or_(expired, _TABLE.c.count < limit),
        )
        .returning(literal_column("1"))
    )
    return limit > 0 and db.execute(statement).first() is not None


def _mark(db: Session, key: str, *, expires_at: float, now: float) -> bool:
    """Mark an item admitted; False when a live mark is there (made meanwhile by another instance)."""
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement: Executable = (
        insert(_TABLE)
        .values(key=key, count=1, expires_at=expires_at)
        .on_conflict_do_update(
            index_elements=[_TABLE.c.key], set_={"expires_at": expires_at}, where=_TABLE.c.expires_at <= now
        )
        .returning(literal_column("1"))
    )
    return db.execute(statement).first() is not None
