"""What the benchmarks share: a throwaway StudyShelf, its server processes, streamed uploads, RSS."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from studyshelf.core import migrate
from studyshelf.core.db import unit_of_work
from studyshelf.library.folders import get_root_folder
from studyshelf.library.provisioning import provision_organization
from studyshelf.partners import service as partners
from studyshelf.partners.models import Organization, OrgKind, Role
from studyshelf.services import build_services
from studyshelf.settings import Settings

SECRET_KEY = "bench-secret-key-that-is-long-enough-for-production-0123456789"  # noqa: S105 - a throwaway instance
STUDYSHELF = Path(sys.executable).with_name("studyshelf")
MiB = 1 << 20


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Instance:
    """A migrated data dir with one organisation, one owner and a personal API token."""

    data_dir: Path
    env: dict[str, str]
    token: str
    root_folder_id: uuid.UUID

    @property
    def blobs_root(self) -> Path:
        return self.data_dir / "blobs"

    def blob_path(self, sha256: str) -> Path:
        return self.blobs_root / sha256[:2] / sha256[2:4] / sha256


def make_instance(data_dir: Path, *, max_upload_bytes: int = 4 * 1024**3, database_url: str | None = None) -> Instance:
    """A throwaway instance: SQLite in the data dir, or the (empty) PostgreSQL database `database_url`."""
    env = {
        "STUDYSHELF_DATA_DIR": str(data_dir),
        "STUDYSHELF_SECRET_KEY": SECRET_KEY,
        "STUDYSHELF_MAX_UPLOAD_BYTES": str(max_upload_bytes),
        "STUDYSHELF_ENVIRONMENT": "production",
        "STUDYSHELF_BASE_URL": "http://127.0.0.1",
    }
    if database_url:
        env["STUDYSHELF_DATABASE_URL"] = database_url
    settings = Settings(
        environment="production",
        data_dir=data_dir,
        secret_key=SECRET_KEY,
        max_upload_bytes=max_upload_bytes,
        database_url=database_url,
    )
    services = build_services(settings)
    try:
        migrate.upgrade(services.engine)
        with unit_of_work(services.write_sessions) as db:
            org = provision_organization(db, name="Bench", slug="bench", kind=OrgKind.OPERATOR)
            user = partners.create_user(db, email="bench@bench.test", password=secrets.token_urlsafe(16))
            partners.add_member(db, user=user, org=db.get(Organization, org.id) or org, role=Role.OWNER)
            _, token = partners.create_api_token(db, user=user, name="bench")
            root_id = get_root_folder(db, org_id=org.id).id
    finally:
        services.engine.dispose()
    return Instance(data_dir=data_dir, env=env, token=token, root_folder_id=root_id)


class Processes:
    """Every process a benchmark starts, each in its own process group, all stopped on exit."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []

    def start(
        self, argv: list[str], *, env: dict[str, str] | None = None, log: Path | None = None
    ) -> subprocess.Popen[bytes]:
        out = log.open("ab") if log is not None else subprocess.DEVNULL
        proc = subprocess.Popen(  # noqa: S603 - our own argv
            argv, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.started.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait(5)
        # Workers left behind by a master that died still belong to its group.
        _signal_group(proc.pid, signal.SIGKILL)
        if proc in self.started:
            self.started.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self.started)):
            self.stop(proc)

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def wait_for_http(
    port: int, path: str = "/healthz", *, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status < 500:
                conn.close()
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"nothing answered on port {port} within {timeout} s")


def start_studyshelf(
    procs: Processes, instance: Instance, *, server: str, workers: int, port: int, log: Path
) -> subprocess.Popen[bytes]:
    argv = [str(STUDYSHELF), "serve", "--server", server, "--workers", str(workers), "--port", str(port)]
    proc = procs.start(argv, env=instance.env, log=log)
    try:
        wait_for_http(port, proc=proc)
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}; see {log}:\n{log.read_text(errors='replace')[-3000:]}") from exc
    # Every worker must be up before measuring: ask a few times over fresh connections.
    for _ in range(4 * workers):
        wait_for_http(port, proc=proc)
    return proc


def multipart_upload(
    port: int, *, folder_id: uuid.UUID, token: str, filename: str, size: int, chunks: Iterable[bytes]
) -> dict[str, object]:
    """POST a file of `size` bytes as multipart/form-data, streamed from `chunks`; returns the JSON answer."""
    boundary = "bench" + secrets.token_hex(16)
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.putrequest("POST", f"/api/v1/folders/{folder_id}/files")
    conn.putheader("Authorization", f"Bearer {token}")
    conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    conn.putheader("Content-Length", str(len(head) + size + len(tail)))
    conn.endheaders()
    conn.send(head)
    sent = 0
    for chunk in chunks:
        conn.send(chunk)
        sent += len(chunk)
    if sent != size:
        raise ValueError(f"the chunks held {sent} bytes, not {size}")
    conn.send(tail)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    if response.status != 201:
        raise RuntimeError(f"upload failed: {response.status} {body[:500]!r}")
    answer: dict[str, object] = json.loads(body)
    return answer


def random_chunks(size: int, chunk_size: int = MiB) -> Iterator[bytes]:
    """`size` bytes of incompressible data, made a chunk at a time (one random block, varied per chunk)."""
    block = os.urandom(chunk_size)
    n = 0
    remaining = size
    while remaining > 0:
        stamp = n.to_bytes(8, "big")
        chunk = stamp + block[8:]
        yield chunk[:remaining] if remaining < chunk_size else chunk
        remaining -= min(chunk_size, remaining)
        n += 1


def process_tree(pid: int) -> list[int]:
    """The pid and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def rss_bytes(pid: int) -> int:
    """VmRSS of one process (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0


def tree_rss(pid: int) -> int:
    return sum(rss_bytes(p) for p in process_tree(pid))


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process and its descendants so far (granian's workers are children)."""
    ticks = 0
    for member in process_tree(pid):
        try:
            with open(f"/proc/{member}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")
