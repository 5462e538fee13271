"""Viewer page requests per second against the same server's `/healthz`, in one run: a ratio.

`GET /v/{link}` framed by an allowed LMS origin runs the whole admission (link state, grant hook, embed
policy), records the view (a durable event; sightings and counters batched off the request), signs media,
viewer and beacon tokens and renders the page. `/healthz` is the cheapest route of the same server, so the
ratio says what the page costs on top of the web stack, whatever else the machine is doing.
`studyshelf serve --workers 2` on SQLite, then on a throwaway PostgreSQL database; wrk from its own process.
Run: `python -m bench.viewer` (part of `make bench`); `--database sqlite` for one of the two.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench.common import Processes, cpu_seconds, free_port, make_instance, multipart_upload, start_studyshelf

LMS = "https://moodle.example.edu"
WORKERS = 2
TARGET = 0.2
PG_ADMIN_URL = "postgresql://root@127.0.0.1:5432/postgres"


def _create_link(port: int, token: str, file_id: str) -> str:
    body = json.dumps({"target_type": "file", "target_id": file_id, "allowed_origins": [LMS], "mode": "embed"}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/links",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback only
        link_id: str = json.loads(response.read())["id"]
        return link_id


@dataclass(frozen=True)
class Run:
    rate: float  # requests/s
    p99: str
    cpu_ms: float  # the server's CPU time (all its processes, user + system) per request


def _wrk(url: str, *, duration: int, connections: int, headers: list[str], server_pid: int) -> Run:
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency"]
    for header in headers:
        argv += ["-H", header]
    cpu_before = cpu_seconds(server_pid)
    output = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout  # noqa: S603 - a fixed argv of our own, no shell
    cpu = cpu_seconds(server_pid) - cpu_before
    if "Non-2xx" in output or "Socket errors" in output:
        raise RuntimeError(f"the server refused or dropped requests:\n{output}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]  # wrk always prints this line
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]  # and this one
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE)  # the latency distribution's line
    return Run(rate, p99.group(1) if p99 else "?", 1000 * cpu / max(1, requests))


@contextlib.contextmanager
def _database(kind: str) -> Iterator[str | None]:
    """None for SQLite (in the data dir), else the URL of a throwaway PostgreSQL database, dropped after."""
    if kind == "sqlite":
        yield None
        return
    name = f"studyshelf_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def measure(kind: str, *, duration: int, connections: int) -> tuple[Run, Run]:
    """The viewer's run and the mean of two /healthz runs around it, on one server, back to back."""
    tmp = Path(tempfile.mkdtemp(prefix="studyshelf-bench-viewer-"))
    try:
        with _database(kind) as database_url, Processes() as procs:
            instance = make_instance(tmp, database_url=database_url)
            port = free_port()
            server = start_studyshelf(
                procs, instance, server="granian", workers=WORKERS, port=port, log=tmp / "server.log"
            )
            pdf = b"%PDF-1.4\n" + b"%" * 10_000
            uploaded = multipart_upload(
                port,
                folder_id=instance.root_folder_id,
                token=instance.token,
                filename="notes.pdf",
                size=len(pdf),
                chunks=[pdf],
            )
            link_id = _create_link(port, instance.token, str(uploaded["id"]))
            browser = "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0 Safari/537.36"
            framed = ["Sec-Fetch-Dest: iframe", "Sec-Fetch-Site: cross-site", f"Referer: {LMS}/course/view.php?id=7"]
            base = f"http://127.0.0.1:{port}"
            page, health = (f"{base}/v/{link_id}", [*framed, browser]), (f"{base}/healthz", [browser])

            def run(target: tuple[str, list[str]], seconds: int) -> Run:
                url, headers = target
                return _wrk(url, duration=seconds, connections=connections, headers=headers, server_pid=server.pid)

            run(page, 1)  # warm-up
            before, viewer, after = run(health, duration), run(page, duration), run(health, duration)
        both = Run((before.rate + after.rate) / 2, "", (before.cpu_ms + after.cpu_ms) / 2)
        return viewer, both
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], action="append")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    failed = False
    for kind in args.database or ["sqlite", "postgresql"]:
        viewer, health = measure(kind, duration=args.duration, connections=args.connections)
        ratio = viewer.rate / health.rate
        failed |= ratio < TARGET
        print(
            f"viewer page (GET /v/…, {WORKERS} workers, {kind}): {viewer.rate:,.0f} requests/s (p99 {viewer.p99}); "
            f"/healthz {health.rate:,.0f} requests/s; ratio {ratio:.3f} (target ≥ {TARGET}); server CPU per "
            f"request {viewer.cpu_ms:.2f} ms vs {health.cpu_ms:.2f} ms, ratio {health.cpu_ms / viewer.cpu_ms:.3f}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
