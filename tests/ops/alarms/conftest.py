"""Fixtures of the alarm and incident tests: both databases (tests/ops/conftest.py keeps the backup tests on
SQLite), a MovableClock in Services, and a webhook receiver."""

from __future__ import annotations

import dataclasses
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from studyshelf.core.clock import MovableClock
from studyshelf.services import Services
from studyshelf.settings import Settings
from tests.conftest import make_settings
from tests.ops.alarms.support import START, Call, Receiver


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """Both databases, as everywhere outside tests/ops (whose conftest keeps the backups on SQLite)."""
    if request.param == "sqlite":
        path = tmp_path / "studyshelf.sqlite3"
        shutil.copyfile(sqlite_template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return make_settings(
        tmp_path,
        db_url,
        smtp_url="memory://",
        outbound_allowed_networks=["127.0.0.10/32"],
        base_url="http://shelf.example.org",
    )


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(START)


@pytest.fixture
def clocked(services: Services, clock: MovableClock) -> Services:
    return dataclasses.replace(services, clock=clock)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.calls.append(Call(body, {k.lower(): v for k, v in self.headers.items()}))
            state.arrived.set()
            if state.hold is not None:
                state.hold.wait(timeout=15)
            self.send_response(state.answers.pop(0) if state.answers else 204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.10", 0), Hook)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.10:{server.server_address[1]}/hook"
    yield state
    if state.hold is not None:
        state.hold.set()
    server.shutdown()
    server.server_close()
