"""deploy/compose and deploy/docker: the cluster's services, probes, persistence and settings, and the image."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.env_names import DEPLOY, env_names_in, unknown_settings

COMPOSE = DEPLOY / "compose"
DOCKER = DEPLOY / "docker"
REPO = DEPLOY.parent
CLUSTER_SERVICES = {"nginx", "app1", "app2", "worker", "postgres", "redis", "s3"}
SECRET_SETTINGS = {"STUDYSHELF_SECRET_KEY", "STUDYSHELF_S3_ACCESS_KEY_ID", "STUDYSHELF_S3_SECRET_ACCESS_KEY"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((COMPOSE / "compose.yaml").read_text())
    return loaded


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def probe(service: dict[str, Any]) -> str:
    return " ".join(service["healthcheck"]["test"])


def secret_targets(service: dict[str, Any]) -> set[str]:
    return {entry["target"] if isinstance(entry, dict) else entry for entry in service.get("secrets", [])}


def test_the_cluster_has_every_part(compose: dict[str, Any]) -> None:
    assert set(services(compose)) >= CLUSTER_SERVICES
    app1, app2 = services(compose)["app1"], services(compose)["app2"]
    assert app1 == app2
    assert app1["command"][0] == "serve"
    assert services(compose)["worker"]["command"] == ["worker"]


def test_instances_are_probed_for_readiness_and_nginx_for_health(compose: dict[str, Any]) -> None:
    every = services(compose)
    assert "/readyz" in probe(every["app1"])
    assert "/healthz" in probe(every["nginx"])
    assert every["nginx"]["depends_on"] == {
        "app1": {"condition": "service_healthy"},
        "app2": {"condition": "service_healthy"},
    }
    for backend in ("postgres", "redis", "s3"):
        assert every[backend]["healthcheck"]["test"]


def test_studyshelf_starts_after_the_bucket_and_serves_after_the_migration(compose: dict[str, Any]) -> None:
    ours = {name: service for name, service in services(compose).items() if service.get("image") == "studyshelf:local"}
    assert set(ours) == {"app1", "app2", "worker", "migrate"}
    for name, service in ours.items():
        assert service["depends_on"]["s3-bucket"] == {"condition": "service_completed_successfully"}, name
        if name != "migrate":
            assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name


def test_redis_keeps_acknowledged_events(compose: dict[str, Any]) -> None:
    command = " ".join(services(compose)["redis"]["command"])
    assert "--appendonly yes" in command
    assert "--appendfsync everysec" in command


def test_the_apps_have_the_settings_of_a_cluster(compose: dict[str, Any]) -> None:
    for name in ("app1", "app2", "worker", "migrate"):
        env = services(compose)[name]["environment"]
        assert env["STUDYSHELF_DATABASE_URL"].startswith("postgresql://")
        assert env["STUDYSHELF_WAREHOUSE_URL"].startswith("postgresql://")
        assert env["STUDYSHELF_STORAGE_URL"].startswith("s3://")
        assert env["STUDYSHELF_REDIS_URL"].startswith("redis://redis:")
        assert secret_targets(services(compose)[name]) >= SECRET_SETTINGS
        assert not SECRET_SETTINGS & set(env), "secrets come from compose secrets, not the environment"


def test_every_setting_named_is_a_setting(compose: dict[str, Any]) -> None:
    """A renamed setting breaks this test (S3 names: once Settings has S3 settings at all)."""
    named = env_names_in((COMPOSE / "compose.yaml").read_text())
    assert "STUDYSHELF_DATABASE_URL" in named
    assert unknown_settings(named) == set()


def test_every_secret_is_defined_and_made_by_the_script(compose: dict[str, Any]) -> None:
    defined = compose["secrets"]
    script = (COMPOSE / "make-secrets.sh").read_text()
    for service in services(compose).values():
        for entry in service.get("secrets", []):
            assert (entry["source"] if isinstance(entry, dict) else entry) in defined
    for name, secret in defined.items():
        assert secret["file"] == f"./secrets/{name}"
        assert re.search(rf"^make_secret {name} \d+$", script, re.MULTILINE), name


def test_the_bucket_and_the_warehouse_database_are_made(compose: dict[str, Any]) -> None:
    env = services(compose)["app1"]["environment"]
    bucket = env["STUDYSHELF_STORAGE_URL"].removeprefix("s3://").split("/")[0]
    assert f"shelf/{bucket}" in " ".join(services(compose)["s3-bucket"]["command"])
    warehouse_db = env["STUDYSHELF_WAREHOUSE_URL"].rsplit("/", 1)[1]
    assert f"CREATE DATABASE {warehouse_db} " in (COMPOSE / "postgres-init.sql").read_text()


def test_nginx_uses_the_reference_configuration(compose: dict[str, Any]) -> None:
    nginx = services(compose)["nginx"]
    source = nginx["volumes"][0].split(":")[0]
    assert (COMPOSE / source).resolve() == DEPLOY / "nginx" / "studyshelf.conf"
    reference = DEPLOY / "nginx" / "studyshelf.conf"
    substitutions = re.findall(r"-e 's/(.+?)/", nginx["command"][-1])
    assert len(substitutions) == 3
    if reference.exists():  # written beside this file (issue 16, point 2): each address rewritten must be there
        text = reference.read_text()
        assert [pattern for pattern in substitutions if not re.search(pattern, text)] == []


def test_the_image_installs_the_locked_dependencies_and_runs_as_a_user() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    assert re.findall(r"^FROM (\S+)", text, re.MULTILINE) == ["python:3.11-slim", "python:3.11-slim"]
    assert "pip install --require-hashes -r requirements.lock" in text
    user = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert len(user) == 1
    assert user[0].split(":")[0] not in {"root", "0"}
    for source in re.findall(r"^COPY (?!--from)(\S+) ", text, re.MULTILINE):
        assert (REPO / source).exists(), source


def test_the_entrypoint_turns_secret_files_into_settings(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    data_dir = tmp_path / "data"
    (secrets / "STUDYSHELF_DATA_DIR").write_text(f"{data_dir}\n")
    env = {name: value for name, value in os.environ.items() if not name.startswith("STUDYSHELF_")}
    env |= {"SECRETS_DIR": str(secrets), "PATH": f"{Path(sys.executable).parent}:{env['PATH']}"}
    done = subprocess.run(  # noqa: S603 - our own script
        ["/bin/sh", str(DOCKER / "entrypoint.sh"), "migrate"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert (data_dir / "studyshelf.sqlite3").is_file()
