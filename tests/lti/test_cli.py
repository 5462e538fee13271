"""`studyshelf lti keys rotate|list`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from studyshelf.cli import app


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("STUDYSHELF_"):
            monkeypatch.delenv(name)
    path = tmp_path / "data"
    monkeypatch.setenv("STUDYSHELF_DATA_DIR", str(path))
    return path


def test_rotate_then_list(data_dir: Path) -> None:
    runner = CliRunner()
    assert "No keys yet" in runner.invoke(app, ["lti", "keys", "list"]).output
    first = runner.invoke(app, ["lti", "keys", "rotate"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(app, ["lti", "keys", "rotate"])
    assert second.exit_code == 0
    listed = runner.invoke(app, ["lti", "keys", "list"], terminal_width=200).output
    assert listed.count("active") == 1
    assert "retired 0 d ago" in listed
    assert "PRIVATE" not in listed
