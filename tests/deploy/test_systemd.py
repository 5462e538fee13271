"""deploy/systemd: the units parse, are hardened, run commands the CLI has, and pass `systemd-analyze`."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.main import get_command
from typer.testing import CliRunner

from studyshelf.cli import app
from studyshelf.settings import Settings
from tests.conftest import require_service
from tests.deploy.env_names import DEPLOY, env_names_in, unknown_settings

UNITS = DEPLOY / "systemd"
INSTALLED_BINARY = "/opt/studyshelf/.venv/bin/studyshelf"
COMMANDS = {
    "studyshelf-serve.service": ["serve"],
    "studyshelf-worker.service": ["worker"],
    "studyshelf-replicate.service": ["backup", "replicate"],
}
HARDENING = {
    "User": "studyshelf",
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "PrivateTmp": "yes",
    "Restart": "on-failure",
    "EnvironmentFile": "/etc/studyshelf/studyshelf.env",
}


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False, empty_lines_in_values=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read_string((UNITS / name).read_text())
    return parser


def example_env() -> dict[str, str]:
    lines = (UNITS / "studyshelf.env.example").read_text().splitlines()
    pairs = (line.partition("=") for line in lines if line and not line.startswith("#"))
    return {name: value for name, _, value in pairs}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_unit_is_hardened_and_restarts(name: str) -> None:
    service = unit(name)["Service"]
    assert {key: service.get(key) for key in HARDENING} == HARDENING
    assert example_env()["STUDYSHELF_DATA_DIR"] in service["ReadWritePaths"].split()


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_unit_runs_a_command_the_cli_has(name: str) -> None:
    binary, *argv = unit(name)["Service"]["ExecStart"].split()
    assert binary == INSTALLED_BINARY
    assert argv[: len(COMMANDS[name])] == COMMANDS[name]
    group = get_command(app)
    for word in COMMANDS[name]:
        group = group.commands[word]  # type: ignore[attr-defined]  # a KeyError names a renamed command


def test_a_worker_with_nothing_to_drain_is_not_restarted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("STUDYSHELF_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("STUDYSHELF_DATA_DIR", str(tmp_path))
    exit_code = CliRunner().invoke(app, ["worker"]).exit_code  # no STUDYSHELF_REDIS_URL
    assert unit("studyshelf-worker.service")["Service"]["RestartPreventExitStatus"] == str(exit_code)
    assert exit_code != 0


def test_replication_may_write_the_backup_location() -> None:
    paths = unit("studyshelf-replicate.service")["Service"]["ReadWritePaths"].split()
    assert example_env()["STUDYSHELF_BACKUP_URL"] in paths


def test_the_environment_file_names_only_settings() -> None:
    text = (UNITS / "studyshelf.env.example").read_text()
    assert set(example_env()) <= env_names_in(text)
    assert unknown_settings(env_names_in(text)) == set()


def test_the_example_secret_key_is_refused_in_production(tmp_path: Path) -> None:
    example = example_env()
    assert example["STUDYSHELF_ENVIRONMENT"] == "production"
    with pytest.raises(ValidationError, match="STUDYSHELF_SECRET_KEY"):
        Settings(environment="production", secret_key=example["STUDYSHELF_SECRET_KEY"], data_dir=tmp_path)


def test_units_pass_systemd_analyze(tmp_path: Path) -> None:
    """`verify` (syntax, unknown keys, values) and an offline `security` review, on copies run from this venv."""
    analyze = shutil.which("systemd-analyze")
    require_service(analyze is not None, "systemd-analyze")
    assert analyze is not None
    here = str(Path(sys.executable).parent / "studyshelf")
    copies = []
    for name in sorted(COMMANDS):
        copy = tmp_path / name
        copy.write_text((UNITS / name).read_text().replace(INSTALLED_BINARY, here))
        copies.append(str(copy))
    verify = subprocess.run(  # noqa: S603 - our own argv
        [analyze, "verify", "--man=no", *copies], capture_output=True, text=True, check=False
    )
    assert (verify.returncode, verify.stderr, verify.stdout) == (0, "", "")
    for copy in copies:
        security = subprocess.run(  # noqa: S603 - our own argv
            [analyze, "security", "--offline=true", "--no-pager", "--threshold=30", copy],
            capture_output=True,
            text=True,
            check=False,
        )
        assert security.returncode == 0, security.stdout[-400:]
