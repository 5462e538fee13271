"""Fixtures of the alarm and incident tests: both databases (tests/ops/conftest.py keeps the backup tests on
SQLite), a MovableClock in Services, and a webhook receiver."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from studyshelf.core.clock import MovableClock
from studyshelf.services import Services
from studyshelf.settings import Settings
from tests.conftest import BOTH_DATABASES, database_url, make_settings
from tests.ops.alarms.support import START
from tests.webhook_support import Receiver, running_receiver


@pytest.fixture(params=BOTH_DATABASES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """Both databases, as outside tests/ops (whose conftest keeps the backup tests on SQLite)."""
    return database_url(request, tmp_path, sqlite_template)


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
    with running_receiver() as state:
        yield state
