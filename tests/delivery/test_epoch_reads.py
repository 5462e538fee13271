"""The access epoch read on the event loop's own connection (delivery/api.py `EpochReads`): it sees every change
committed before it starts, the requests waiting for a read share it, and a connection that cannot read hands
the read to the pool in a worker thread instead of failing the request."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from studyshelf.core.db import unit_of_work
from studyshelf.delivery.api import EpochReads, _LoopConnection, _LoopSqlite
from studyshelf.library.access_epoch import raise_epoch
from studyshelf.services import Services
from tests.conftest import Member, World
from tests.library.support import uploaded
from tests.links.support import EMBEDDED, create_link, link_path

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
POSTGRESQL_ONLY = pytest.mark.parametrize(
    "db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


def _raise(services: Services) -> None:
    with unit_of_work(services.write_sessions) as db:
        raise_epoch(db.connection())


def test_a_read_sees_every_change_committed_before_it(services: Services) -> None:
    async def reads() -> list[int]:
        epoch_reads = EpochReads(services, asyncio.get_running_loop())
        try:
            first = await epoch_reads.read()
            _raise(services)
            second = await epoch_reads.read()
            _raise(services)
            _raise(services)
            return [first, second, await epoch_reads.read()]
        finally:
            epoch_reads.close()

    first, second, third = asyncio.run(reads())
    assert second == first + 1
    assert third == first + 3


def test_the_read_uses_the_loops_own_connection(services: Services) -> None:
    async def kind() -> type:
        epoch_reads = EpochReads(services, asyncio.get_running_loop())
        epoch_reads.close()
        return type(epoch_reads._own)

    expected = _LoopConnection if services.engine.dialect.name == "postgresql" else _LoopSqlite
    assert asyncio.run(kind()) is expected


def test_requests_waiting_together_share_one_read(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    async def rush() -> tuple[list[int], int]:
        epoch_reads = EpochReads(services, asyncio.get_running_loop())
        made = 0
        plain_read = epoch_reads._read

        async def counted() -> int:
            nonlocal made
            made += 1
            return await plain_read()

        monkeypatch.setattr(epoch_reads, "_read", counted)
        try:
            answers = await asyncio.gather(*(epoch_reads.read() for _ in range(20)))
        finally:
            epoch_reads.close()
        return answers, made

    answers, made = asyncio.run(rush())
    assert len(set(answers)) == 1
    assert made == 1


@SQLITE_ONLY
def test_a_sqlite_read_that_cannot_run_on_the_loop_runs_in_a_worker_thread(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def read() -> int:
        epoch_reads = EpochReads(services, asyncio.get_running_loop())
        assert isinstance(epoch_reads._own, _LoopSqlite)
        monkeypatch.setattr(epoch_reads._own, "database", "/nonexistent/dir/studyshelf.sqlite3")
        return await epoch_reads.read()

    _raise(services)
    assert asyncio.run(read()) >= 1


@POSTGRESQL_ONLY
def test_a_postgresql_connection_closed_by_the_server_falls_back_then_reconnects(services: Services) -> None:
    async def reads() -> list[int]:
        epoch_reads = EpochReads(services, asyncio.get_running_loop())
        own = epoch_reads._own
        assert isinstance(own, _LoopConnection)
        try:
            first = await epoch_reads.read()
            assert own._connection is not None
            pid = own._connection.info.backend_pid
            with services.engine.connect() as connection:
                connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            _raise(services)
            second = await epoch_reads.read()  # the loop's connection is gone: read through the pool
            assert own._connection is None
            third = await epoch_reads.read()  # and the next connects afresh
            assert own._connection is not None
            assert own._connection.info.backend_pid != pid
            return [first, second, third]
        finally:
            epoch_reads.close()

    first, second, third = asyncio.run(reads())
    assert second == third == first + 1


@POSTGRESQL_ONLY
def test_closing_without_the_loop_closes_the_connection(services: Services) -> None:
    async def read() -> psycopg.AsyncConnection[tuple[object, ...]]:
        epoch_reads = EpochReads(services, asyncio.get_running_loop())
        await epoch_reads.read()
        own = epoch_reads._own
        assert isinstance(own, _LoopConnection)
        connection = own._connection
        assert connection is not None
        epoch_reads.close()
        return connection

    connection = asyncio.run(read())
    assert connection.closed


def test_a_served_app_reads_on_its_own_connection_and_closes_it_when_it_stops(world: World, owner: Member) -> None:
    file = uploaded(owner, owner.root_folder_id, "notes.txt", b"notes")
    path = link_path(create_link(owner, file["id"]))
    with TestClient(world.app) as served:  # the lifespan runs, as in `studyshelf serve`
        assert served.get(path, headers=EMBEDDED).status_code == 200
        reads = world.app.state.epoch_reads
        assert isinstance(reads._own, _LoopConnection | _LoopSqlite)
        assert reads._own._connection is not None
    assert reads._own._connection is None
    assert world.app.state.epoch_reads is None


def test_an_app_without_a_lifespan_reads_through_the_pool(owner: Member, world: World) -> None:
    file = uploaded(owner, owner.root_folder_id, "notes.txt", b"notes")
    path = link_path(create_link(owner, file["id"]))
    assert owner.client.get(path, headers=EMBEDDED).status_code == 200  # a test client's loop per request
    assert world.app.state.epoch_reads._own is None
