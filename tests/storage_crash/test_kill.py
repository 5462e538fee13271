"""Uploads against a real server process that dies, or whose client walks away, half way through.

The blob store writes into blobs/tmp/*.part and renames on commit; the row goes in after. So a crash
can leave a .part (removed by recover_storage when `serve` starts) but never a row without bytes.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from studyshelf.core import migrate
from studyshelf.core.db import unit_of_work
from studyshelf.library.folders import get_root_folder
from studyshelf.library.provisioning import provision_organization
from studyshelf.partners import service as partners
from studyshelf.partners.models import OrgKind, Role
from studyshelf.services import build_services
from studyshelf.settings import Settings

pytestmark = pytest.mark.slow

SECRET = "crash-test-secret-key-that-is-long-enough-0123456789"
BOUNDARY = "studyshelf-crash-test-boundary"
MIB = 1 << 20
DECLARED_BYTES = 200 * MIB  # what the client promises; it never sends all of it


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class LiveServer:
    """`studyshelf serve` as its own process group, with a data dir, an owner's token and a root folder."""

    data_dir: Path
    token: str
    root_id: str
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def tmp_dir(self) -> Path:
        return self.data_dir / "blobs" / "tmp"

    def parts(self) -> list[Path]:
        return sorted(self.tmp_dir.glob("*.part"))

    def blob_files(self) -> set[str]:
        return {p.name for p in (self.data_dir / "blobs").glob("??/??/*")}

    def blob_rows(self) -> set[str]:
        with sqlite3.connect(self.data_dir / "studyshelf.sqlite3") as db:
            return {row[0] for row in db.execute("SELECT sha256 FROM blobs")}

    def start(self) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("STUDYSHELF_")}
        env |= {"STUDYSHELF_DATA_DIR": str(self.data_dir), "STUDYSHELF_SECRET_KEY": SECRET}
        env["STUDYSHELF_ENVIRONMENT"] = "test"
        command = Path(sys.executable).with_name("studyshelf")
        log = (self.data_dir / "server.log").open("ab")
        self.process = subprocess.Popen(  # noqa: S603 — our own entry point, fixed arguments
            [str(command), "serve", "--server", "uvicorn", "--workers", "1", "--port", str(self.port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so kill -9 reaches every process of it
        )
        log.close()
        wait_for(self._healthy, timeout=60, what="the server to start")

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            log = (self.data_dir / "server.log").read_text(errors="replace")
            pytest.fail(f"the server exited with {self.process.returncode}:\n{log[-3000:]}")
        try:
            return self.request("GET", "/healthz")[0] == 200
        except OSError:
            return False

    def kill(self) -> None:
        """kill -9 the whole process group: no shutdown handler, no cleanup, like a power cut."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)
            self.process = None

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers={"Authorization": f"Bearer {self.token}", **(headers or {})})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def file_names(self) -> list[str]:
        status, body = self.request("GET", f"/api/v1/folders/{self.root_id}/children")
        assert status == 200, body
        return [item["name"] for item in json.loads(body)["items"] if item["kind"] == "file"]

    def begin_upload(self, *, filename: str = "big.bin") -> socket.socket:
        """Open a multipart upload that declares DECLARED_BYTES; the caller sends the body."""
        head = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        tail = f"\r\n--{BOUNDARY}--\r\n".encode()
        request = (
            f"POST /api/v1/folders/{self.root_id}/files HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{self.port}\r\n"
            f"Authorization: Bearer {self.token}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            f"Content-Length: {len(head) + DECLARED_BYTES + len(tail)}\r\n\r\n"
        ).encode()
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        sock.sendall(request + head)
        return sock


def send_until_part_grows(server: LiveServer, sock: socket.socket, *, at_least: int) -> None:
    """Stream generated bytes, 1 MiB at a time, until the server's .part file holds `at_least` bytes."""
    chunk = bytes(range(256)) * (MIB // 256)
    sent = 0
    while True:
        sock.sendall(chunk)
        sent += len(chunk)
        parts = server.parts()
        if parts and parts[0].stat().st_size >= at_least:
            return
        assert sent < DECLARED_BYTES // 2, "the server never wrote the upload to blobs/tmp"
        time.sleep(0.01)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    data_dir = tmp_path / "data"
    services = build_services(Settings(data_dir=data_dir, environment="test", secret_key=SECRET))
    migrate.upgrade(services.engine)
    with unit_of_work(services.write_sessions) as db:
        org = provision_organization(db, name="Northwind", slug="northwind", kind=OrgKind.OPERATOR)
        user = partners.create_user(db, email="owner@northwind.test", password="crash-test-password")
        partners.add_member(db, user=user, org=org, role=Role.OWNER)
        _, token = partners.create_api_token(db, user=user, name="crash test")
        root_id = str(get_root_folder(db, org_id=org.id).id)
    services.engine.dispose()
    live = LiveServer(data_dir=data_dir, token=token, root_id=root_id)
    live.start()
    yield live
    live.stop()


def test_kill_9_mid_upload_leaves_nothing_after_restart(server: LiveServer) -> None:
    sock = server.begin_upload()
    try:
        send_until_part_grows(server, sock, at_least=16 * MIB)
        server.kill()
    finally:
        sock.close()
    assert server.parts(), "a killed upload leaves its .part behind (until the next start)"
    assert server.blob_files() == set()

    server.start()  # serve runs recover_storage before it listens

    assert server.parts() == []
    assert server.blob_files() <= server.blob_rows()
    assert server.blob_rows() == set()
    assert server.file_names() == []


def test_client_abort_mid_upload_leaves_nothing(server: LiveServer) -> None:
    sock = server.begin_upload()
    send_until_part_grows(server, sock, at_least=8 * MIB)
    sock.close()  # the client goes away; the server stays up

    wait_for(lambda: server.parts() == [], timeout=20, what="the aborted upload's .part to be removed")
    assert server.blob_files() == set()
    assert server.blob_rows() == set()
    assert server.file_names() == []
    assert server.request("GET", "/healthz")[0] == 200


def test_concurrent_identical_uploads_store_one_blob(server: LiveServer) -> None:
    payload = os.urandom(24 * MIB)
    start = threading.Barrier(2)
    answers: dict[str, tuple[int, bytes]] = {}

    def upload(filename: str) -> None:
        body = (
            (
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + payload
            + f"\r\n--{BOUNDARY}--\r\n".encode()
        )
        start.wait()
        status, response = server.request(
            "POST",
            f"/api/v1/folders/{server.root_id}/files",
            body=body,
            headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        )
        answers[filename] = (status, response)

    threads = [threading.Thread(target=upload, args=(name,)) for name in ("copy-a.bin", "copy-b.bin")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert {name: status for name, (status, _) in answers.items()} == {"copy-a.bin": 201, "copy-b.bin": 201}, answers
    assert sorted(server.file_names()) == ["copy-a.bin", "copy-b.bin"]
    assert len(server.blob_files()) == 1
    assert server.blob_rows() == server.blob_files()
    assert server.parts() == []
