"""A throwaway PostgreSQL cluster with WAL archiving to pgBackRest, for the backup drills.

initdb into a temp directory, its own port, its own pgBackRest config and repository: the machine's own
cluster (127.0.0.1:5432) is never touched. PostgreSQL refuses to run as root, so as root every command
runs as the `postgres` user, and the temp directory belongs to it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.conftest import require_service

STANZA = "drill"
ARCHIVE_TIMEOUT_SECONDS = 2
DEADLINE = 30.0
AS_ROOT = os.getuid() == 0


def _bin_dir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


def available() -> bool:
    return _bin_dir() is not None and shutil.which("pgbackrest") is not None


def as_cluster_user(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if AS_ROOT else argv


def run(argv: list[str]) -> None:
    subprocess.run(as_cluster_user(argv), check=True, capture_output=True)  # noqa: S603 - our own argv


def give_to_cluster_user(path: Path) -> None:
    if AS_ROOT:
        user = pwd.getpwnam("postgres")
        os.chown(path, user.pw_uid, user.pw_gid)


def free_port() -> int:
    with contextlib.closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.1)


@dataclass(frozen=True)
class Cluster:
    root: Path
    bin: Path
    port: int

    @property
    def data(self) -> Path:
        return self.root / "pgdata"

    @property
    def config(self) -> Path:
        return self.root / "pgbackrest.conf"

    def url(self, database: str = "studyshelf", port: int | None = None) -> str:
        return f"postgresql://postgres@127.0.0.1:{port or self.port}/{database}"

    def new_directory(self, name: str) -> Path:
        """An empty directory the cluster user may write into (restore targets)."""
        path = self.root / name
        path.mkdir(mode=0o700)
        give_to_cluster_user(path)
        return path

    def start(self, data: Path, port: int, *options: str) -> None:
        flags = " ".join([f"-p {port}", *options])
        log = data.parent / f"{port}.log"
        try:
            run([str(self.bin / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", flags, "-w", "start"])
        except subprocess.CalledProcessError:
            pytest.fail(f"PostgreSQL did not start on port {port}:\n{log.read_text()[-2000:]}")

    def stop(self, data: Path) -> None:
        run([str(self.bin / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])

    def archived_through(self, lsn_walfile: str) -> bool:
        with psycopg.connect(self.url("postgres")) as conn:
            row = conn.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()
        return row is not None and row[0] is not None and row[0] >= lsn_walfile

    def current_walfile(self) -> str:
        """The WAL segment holding the last commit (call it right after one: a segment with nothing but
        background records is never closed by archive_timeout)."""
        with psycopg.connect(self.url("postgres")) as conn:
            row = conn.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()
        assert row is not None
        return str(row[0])

    def wait_archived(self) -> None:
        """Wait until the last commit is in the repository (archive_timeout closes its segment)."""
        walfile = self.current_walfile()
        until(lambda: self.archived_through(walfile), f"WAL {walfile} is archived")


PGBACKREST_CONF = """[global]
repo1-path={root}/repo
repo1-retention-full-type=time
repo1-retention-full=35
start-fast=y
compress-type=zst
archive-timeout=60
lock-path={root}/lock
spool-path={root}/spool
log-level-file=off
log-level-console=warn

[{stanza}]
pg1-path={root}/pgdata
pg1-port={port}
pg1-socket-path={root}
"""

POSTGRESQL_CONF = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{root}'
wal_level = replica
archive_mode = on
archive_command = 'pgbackrest --config={root}/pgbackrest.conf --stanza={stanza} archive-push %p'
archive_timeout = {timeout}
max_wal_senders = 3
fsync = off
"""


@contextlib.contextmanager
def running_cluster() -> Iterator[Cluster]:
    require_service(available(), "PostgreSQL's initdb and pgBackRest")
    bin_dir = _bin_dir()
    assert bin_dir is not None
    root = Path(tempfile.mkdtemp(prefix="studyshelf-pgbackrest-"))
    give_to_cluster_user(root)
    cluster = Cluster(root, bin_dir, free_port())
    fields = {"root": root, "port": cluster.port, "stanza": STANZA, "timeout": ARCHIVE_TIMEOUT_SECONDS}
    try:
        run([str(bin_dir / "initdb"), "-D", str(cluster.data), "-A", "trust", "-U", "postgres", "--no-sync"])
        with (cluster.data / "postgresql.conf").open("a") as conf:
            conf.write(POSTGRESQL_CONF.format(**fields))
        cluster.config.write_text(PGBACKREST_CONF.format(**fields))
        give_to_cluster_user(cluster.config)
        cluster.start(cluster.data, cluster.port)
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE studyshelf")
        yield cluster
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            run([str(bin_dir / "pg_ctl"), "-D", str(cluster.data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(root, ignore_errors=True)
