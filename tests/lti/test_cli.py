"""`studyshelf lti keys rotate|list`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from studyshelf.cli import app
from studyshelf.lti.keys import SWITCH_MARGIN
from studyshelf.services import Services, command_services
from tests.lti.conftest import Clock


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: Clock) -> Path:
    for name in list(os.environ):
        if name.startswith("STUDYSHELF_"):
            monkeypatch.delenv(name)
    path = tmp_path / "data"
    monkeypatch.setenv("STUDYSHELF_DATA_DIR", str(path))

    @contextmanager
    def command_services_on_clock() -> Iterator[Services]:
        with command_services() as services:
            yield replace(services, clock=clock)

    monkeypatch.setattr("studyshelf.lti.cli.command_services", command_services_on_clock)
    return path


def _rows(output: str) -> dict[str, list[str]]:
    """kid → the other cells of its row in `keys list`'s table."""
    rows = {}
    for raw in output.splitlines():
        line = raw.strip()
        if not line.startswith("│"):
            continue
        cells = [c.strip() for c in line[1:-1].split("│")]
        if len(cells) == 5 and cells[0] not in {"kid", ""}:
            rows[cells[0]] = cells[1:]
    return rows


def test_rotate_publishes_first_and_list_shows_states(
    data_dir: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("studyshelf.lti.cli.console", Console(width=200))  # one line a key
    runner = CliRunner()
    assert "No keys yet" in runner.invoke(app, ["lti", "keys", "list"]).output
    first = runner.invoke(app, ["lti", "keys", "rotate"])
    assert first.exit_code == 0, first.output
    assert "signs now" in first.output  # nothing was published before: nothing to wait for
    second = runner.invoke(app, ["lti", "keys", "rotate"])
    assert second.exit_code == 0
    switch = clock.now() + timedelta(seconds=300) + SWITCH_MARGIN
    assert f"signs from {switch:%Y-%m-%d %H:%M:%S} UTC" in second.output
    third = runner.invoke(app, ["lti", "keys", "rotate"])
    assert third.exit_code == 1
    assert "already published" in third.output
    assert "--now" in third.output
    listed = runner.invoke(app, ["lti", "keys", "list"]).output
    assert "PRIVATE" not in listed
    rows = _rows(listed)
    at = f"{switch:%Y-%m-%d %H:%M:%S} UTC"
    assert sorted((state, jwks, upcoming) for _created, state, jwks, upcoming in rows.values()) == [
        ("published", "yes", f"signing from {at}"),
        ("signing", "yes", f"retiring from {at}"),
    ]
    clock.advance(timedelta(seconds=300) + SWITCH_MARGIN)
    gone = f"{switch + timedelta(days=7):%Y-%m-%d %H:%M:%S} UTC"
    rows = _rows(runner.invoke(app, ["lti", "keys", "list"]).output)
    assert sorted((state, upcoming) for _created, state, _jwks, upcoming in rows.values()) == [
        ("retiring", f"retired from {gone}"),
        ("signing", ""),
    ]
    urgent = runner.invoke(app, ["lti", "keys", "rotate", "--now"])
    assert urgent.exit_code == 0, urgent.output
    assert "signs now" in urgent.output
