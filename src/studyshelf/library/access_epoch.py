"""The access epoch: one number in the app database, raised by every change that can take access away.

Decisions that are remembered for a moment (`EpochCache`: members' downloads in `delivery/api.py`, share-link
visits in `delivery/admission.py`) are kept with the epoch read before they were made, and used only while
the epoch is still that number. The raise
is an upsert in the very transaction of the change (a flush that updates or deletes a session, token, user,
membership, organisation, grant, share link, folder, file or version, or a bulk UPDATE/DELETE of one), made just
before its COMMIT, so it commits with the change: once a revocation has committed, every instance — any
process, any machine on the same database — decides afresh. New rows never raise it: they cannot take
access away, and neither do a limited link's view counts (a Core UPDATE of the table, not of the mapped class:
a view that uses up a link is refused by that exact count, never by a remembered decision).
"""

from __future__ import annotations

import time
from typing import Generic, TypeVar

from sqlalchemy import BigInteger, Connection, Integer, event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, mapped_column

from studyshelf.core.db import Base
from studyshelf.library.models import File, FileVersion, Folder
from studyshelf.partners.models import ApiToken, Grant, Membership, Organization, User, WebSession

_GUARDS_ACCESS: set[type[Base]] = {
    WebSession,
    ApiToken,
    User,
    Membership,
    Organization,
    Grant,
    Folder,
    File,
    FileVersion,
}
_ROW = 1  # the one row (read_epoch names it in its SQL)
_CHANGED = "studyshelf.access_changed"


def guard_access(model: type[Base]) -> None:
    """Count changes to a model of a layer above this one (a share link) as changes that can take access away."""
    _GUARDS_ACCESS.add(model)


class AccessEpoch(Base):
    """A single row (id 1); missing counts as 0."""

    __tablename__ = "access_epoch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


EPOCH_SQL = "SELECT value FROM access_epoch WHERE id = 1"


def read_epoch(connection: Connection) -> int:
    """The current epoch (0 before the first change)."""
    # Driver SQL: read on every member download, where SQLAlchemy's statement handling would double its cost.
    return int(connection.exec_driver_sql(EPOCH_SQL).scalar() or 0)


def raise_epoch(connection: Connection) -> None:
    """Add one to the epoch in the connection's transaction."""
    insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
    statement = insert(AccessEpoch).values(id=_ROW, value=1)
    connection.execute(statement.on_conflict_do_update(index_elements=["id"], set_={"value": AccessEpoch.value + 1}))


@event.listens_for(Session, "after_flush")
def _note_flushed_change(session: Session, _context: object) -> None:
    changed = [item for item in session.dirty if session.is_modified(item)]
    if any(type(item) in _GUARDS_ACCESS for item in (*changed, *session.deleted)):
        session.info[_CHANGED] = True


@event.listens_for(Session, "do_orm_execute")
def _note_bulk_change(state: ORMExecuteState) -> None:
    guarded = any(mapper.class_ in _GUARDS_ACCESS for mapper in state.all_mappers)
    if (state.is_update or state.is_delete) and guarded:
        state.session.info[_CHANGED] = True


@event.listens_for(Session, "before_commit")
def _raise_at_commit(session: Session) -> None:
    # Raised last, just before COMMIT: a transaction takes no row lock after the epoch's, so two of them
    # can never wait for each other through it (on PostgreSQL the row is locked until COMMIT).
    session.flush()  # what the commit would flush, so it is noted above
    if session.info.pop(_CHANGED, False):
        raise_epoch(session.connection())


@event.listens_for(Session, "after_rollback")
def _forget_on_rollback(session: Session) -> None:
    session.info.pop(_CHANGED, None)


K = TypeVar("K")
V = TypeVar("V")


class EpochCache(Generic[K, V]):
    """Remembers decisions per process, each for `ttl` seconds of monotonic time and only under the access epoch
    it was decided in (read before deciding), so a revocation anywhere ends every remembered grant at once."""

    def __init__(self, ttl: float, max_entries: int) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[K, tuple[float, int, V]] = {}

    def get(self, key: K, *, epoch: int) -> V | None:
        hit = self._entries.get(key)
        if hit is None:
            return None
        if hit[0] <= time.monotonic() or hit[1] != epoch:
            self._entries.pop(key, None)
            return None
        return hit[2]

    def holds(self, *keys: K) -> bool:
        """Whether every key has an unexpired entry (under whatever epoch): worth reading the epoch for."""
        now = time.monotonic()
        return all((hit := self._entries.get(key)) is not None and hit[0] > now for key in keys)

    def put(self, key: K, value: V, *, epoch: int) -> None:
        if len(self._entries) >= self.max_entries:
            now = time.monotonic()
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
        self._entries[key] = (time.monotonic() + self.ttl, epoch, value)

    def clear(self) -> None:
        self._entries.clear()
