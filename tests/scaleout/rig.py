"""A real StudyShelf cluster on loopback: two `studyshelf serve` instances and one `studyshelf worker` behind
Debian's nginx, over PostgreSQL (app database and warehouse), Redis Streams and an S3 server (moto's, as its own
process). Each instance has its own data dir: nothing is shared but the servers, as on separate machines.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest
import redis

from tests.analytics.support import REDIS_URL, redis_available
from tests.conftest import PG_ADMIN_URL, postgres_available, require_service
from tests.deploy import nginx_support
from tests.s3_support import ACCESS_KEY, REGION, SECRET_KEY, S3Server, free_port, moto_server_command

STUDYSHELF = str(Path(sys.executable).with_name("studyshelf"))
SECRET = "cluster-test-secret-key-shared-by-every-instance-0123456789"
DEADLINE = 60.0


def until(condition: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.1)


@dataclass
class Process:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(  # noqa: S603 - our own argv
                self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)
        try:
            self.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=20)

    def lines(self, needle: str) -> int:
        """How many lines of this process's log contain `needle` (its access lines name route templates)."""
        if not self.log.exists():
            return 0
        return sum(needle in line for line in self.log.read_text(errors="replace").splitlines())

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


@dataclass
class Cluster:
    root: Path
    env: dict[str, str]
    nginx_port: int
    app_ports: list[int]
    s3: S3Server
    bucket: str
    workers: int = 1  # worker processes per instance
    processes: dict[str, Process] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.nginx_port}"

    def instance_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.app_ports[index]}"

    def cli(self, *args: str) -> str:
        result = subprocess.run(  # noqa: S603 - our own entry point
            [STUDYSHELF, *args], env=self.env, capture_output=True, text=True, timeout=300, check=False
        )
        assert result.returncode == 0, f"studyshelf {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def serve(self, index: int) -> Process:
        env = self.env | {"STUDYSHELF_DATA_DIR": str(self.root / f"app{index}")}
        argv = [STUDYSHELF, "serve", "--server", "uvicorn", "--workers", str(self.workers), "--host", "127.0.0.1"]
        process = Process(
            f"app{index}", [*argv, "--port", str(self.app_ports[index])], env, self.root / f"app{index}.log"
        )
        self.processes[process.name] = process
        process.start()
        until(lambda: self.ready(index), f"app{index} is ready:\n{process.tail()}")
        return process

    def ready(self, index: int) -> bool:
        process = self.processes[f"app{index}"]
        if not process.alive():
            pytest.fail(f"app{index} exited:\n{process.tail()}")
        try:
            return httpx.get(self.instance_url(index) + "/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.kill(signal.SIGTERM)


@contextlib.contextmanager
def running_cluster(root: Path, *, instances: int = 2, storage: str = "s3", workers: int = 1) -> Iterator[Cluster]:
    """The cluster, torn down at the end; `storage="local"` shares one blob directory instead of S3 (benchmarks:
    moto is no faster than one core of Python), `workers` is each instance's worker processes."""
    require_service(postgres_available(), "PostgreSQL")
    require_service(redis_available(), "Redis")
    require_service(nginx_support.available(), "nginx (Debian's nginx-light)")
    database = f"studyshelf_cluster_{uuid.uuid4().hex[:12]}"
    stream = f"studyshelf:cluster:{uuid.uuid4().hex}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    database_url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{database}"
    s3_port, nginx_port = free_port(), free_port()
    s3 = S3Server(f"http://127.0.0.1:{s3_port}")
    cluster = Cluster(root, {}, nginx_port, [free_port() for _ in range(instances)], s3, "", workers=workers)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STUDYSHELF_")} | {
            "STUDYSHELF_ENVIRONMENT": "test",
            "STUDYSHELF_SECRET_KEY": SECRET,
            "STUDYSHELF_DATA_DIR": str(root / "cli"),
            "STUDYSHELF_DATABASE_URL": database_url,
            "STUDYSHELF_WAREHOUSE_URL": f"{database_url}?schema=warehouse",
            "STUDYSHELF_REDIS_URL": REDIS_URL,
            "STUDYSHELF_REDIS_STREAM": stream,
            "STUDYSHELF_STORAGE_URL": f"file://{root}/shared-blobs",
            "STUDYSHELF_BASE_URL": f"http://127.0.0.1:{nginx_port}",
            "STUDYSHELF_TRUSTED_PROXIES": '["127.0.0.1/32"]',
        }
        if storage == "s3":
            moto = Process("s3", moto_server_command(s3_port), dict(os.environ), root / "s3.log")
            cluster.processes["s3"] = moto
            moto.start()
            until(lambda: _answers(s3.endpoint), "the S3 server answers")
            cluster.bucket = s3.fresh_bucket("cluster")
            env |= {
                "STUDYSHELF_STORAGE_URL": f"s3://{cluster.bucket}/blobs",
                "STUDYSHELF_S3_ENDPOINT_URL": s3.endpoint,
                "STUDYSHELF_S3_REGION": REGION,
                "STUDYSHELF_S3_ACCESS_KEY_ID": ACCESS_KEY,
                "STUDYSHELF_S3_SECRET_ACCESS_KEY": SECRET_KEY,
                "STUDYSHELF_S3_ADDRESSING_STYLE": "path",
            }
        cluster.env = env
        cluster.cli("migrate")
        for index in range(instances):
            cluster.serve(index)
        worker = Process("worker", [STUDYSHELF, "worker", "--batch", "200"], env, root / "worker.log")
        cluster.processes["worker"] = worker
        worker.start()
        site = nginx_support.render(
            root / "nginx", port=nginx_port, app_ports=cluster.app_ports, blob_dir=root / "shared-blobs"
        )
        site.check()
        nginx = Process("nginx", site.argv("-g", "daemon off;"), dict(os.environ), root / "nginx.log")
        cluster.processes["nginx"] = nginx
        nginx.start()
        until(lambda: _answers(cluster.url + "/healthz"), f"nginx answers:\n{nginx.tail()}")
        yield cluster
    finally:
        cluster.stop()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        client = redis.Redis.from_url(REDIS_URL)
        client.delete(stream)
        client.close()


def _answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return False
    return True
