"""Database engine, declarative base and the unit of work."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any, ClassVar, cast

from sqlalchemy import DateTime, Engine, Executable, MetaData, TableClause, create_engine, event, literal_column
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import CursorResult, Dialect, Result
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from studyshelf.core.clock import as_utc

sql_log = logging.getLogger("studyshelf.sql")  # driver_rows' statements at DEBUG (record.sql, record.params)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime that comes back aware on SQLite too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the one writer; busy_timeout makes writers queue instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # Writers take the write lock at BEGIN, so two writers queue on busy_timeout instead of
    # failing when both try to upgrade a read lock; readers stay deferred and never wait.
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


# psycopg prepares a statement run five times, and PostgreSQL then may switch it to a generic plan: for the
# analytics reads over skewed rollups that plan was 4x slower. Plans per execution cost well under 1 ms here.
CUSTOM_PLANS = "-c plan_cache_mode=force_custom_plan"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine with the right settings for SQLite or PostgreSQL."""
    if url.startswith("sqlite"):
        # Enough pooled connections for a worker's request threads: one past the pool is opened (with its
        # pragmas) and closed again per request, which a class rush on the viewer made a tenth of its time.
        pool = {"pool_size": 20, "max_overflow": 20} | kwargs
        engine = create_engine(url, connect_args={"check_same_thread": False}, **pool)
        event.listen(engine, "connect", _sqlite_pragmas)

        @event.listens_for(engine, "connect")
        def _no_pysqlite_transactions(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    connect_args = {"options": CUSTOM_PLANS, **kwargs.pop("connect_args", {})}
    engine = create_engine(url, pool_size=10, max_overflow=20, connect_args=connect_args, **kwargs)
    event.listen(engine, "checkin", _note_checkin)
    event.listen(engine, "checkout", _ping_if_idle)
    return engine


# A connection is pinged before use only when it has been idle a while (what pool_pre_ping does on every
# checkout cost a round trip on each request: a fifth of the viewer's on PostgreSQL). One in steady use is
# live; should the server have gone away meanwhile, the failing statement invalidates the whole pool.
PING_AFTER_IDLE_SECONDS = 5.0


def _note_checkin(dbapi_connection: Any, record: Any) -> None:
    record.info["checked_in"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    if time.monotonic() - record.info.get("checked_in", 0.0) < PING_AFTER_IDLE_SECONDS:
        return
    try:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
        dbapi_connection.rollback()  # the ping's implicit transaction; the request's own begins afresh
    except Exception as exc:
        raise DisconnectionError("the database connection was lost while idle") from exc


def make_session_factory(engine: Engine, *, write: bool = True) -> sessionmaker[Session]:
    """Return a session factory; on SQLite a writer's transactions begin IMMEDIATE."""
    bind = engine.execution_options(sqlite_begin="IMMEDIATE" if write else "DEFERRED")
    return sessionmaker(bind=bind, expire_on_commit=False, autoflush=True)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Yield a session that commits on success and rolls back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def insert_missing(db: Session, target: type[DeclarativeBase] | TableClause, values: dict[str, Any]) -> bool:
    """INSERT … ON CONFLICT DO NOTHING on SQLite and PostgreSQL alike: make a row exist, whoever makes it.

    True when this call made it (a concurrent insert of the same key waits for the other's commit, then
    makes nothing)."""
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    # RETURNING, not rowcount: an ORM-enabled INSERT through a Session reports rowcount -1 on psycopg.
    statement: Executable = insert(target).values(**values).on_conflict_do_nothing().returning(literal_column("1"))
    made: Result[Any] = db.execute(statement)
    return made.first() is not None


def affected_rows(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE touched (Session.execute is typed as Result; DML gives a CursorResult)."""
    return int(cast(CursorResult[Any], result).rowcount)


def driver_rows(db: Session, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """The rows of one read statement (`?` placeholders), run on the session's DBAPI connection.

    For the dashboard's hot reads, where SQLAlchemy's own cost per statement (about half a millisecond)
    would be most of the time. The SQL must be valid on SQLite and PostgreSQL alike; dates are bound as ISO
    strings on SQLite, as SQLAlchemy stores them there, and come back as such (see `as_date`)."""
    connection = db.connection()
    if connection.dialect.name == "sqlite":
        params = [value.isoformat() if type(value) is date else value for value in params]
    else:
        sql = sql.replace("?", "%s")
    if sql_log.isEnabledFor(logging.DEBUG):
        sql_log.debug("%s %r", sql, params, extra={"sql": sql, "params": params})
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql, params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def as_date(value: date | str) -> date:
    """A date column's value from driver_rows (an ISO string on SQLite)."""
    return value if isinstance(value, date) else date.fromisoformat(value)
