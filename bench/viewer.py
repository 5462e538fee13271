"""Viewer page requests per second: `GET /v/{link}` framed by an allowed LMS origin.

Every request runs the whole admission: link state, grant hook, embed policy, an atomic view count,
an hourly sighting and the spread check — all database writes — then signs media URLs and renders.
Run: `python -m bench.viewer` (part of `make bench`).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from bench.common import Processes, free_port, make_instance, multipart_upload, start_studyshelf

LMS = "https://moodle.example.edu"
WORKERS = 2


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


def _wrk(url: str, *, duration: int, connections: int) -> tuple[float, str]:
    headers = ["Sec-Fetch-Dest: iframe", "Sec-Fetch-Site: cross-site", f"Referer: {LMS}/course/view.php?id=7"]
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency"]
    for header in [*headers, "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0 Safari/537.36"]:
        argv += ["-H", header]
    output = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout  # noqa: S603 - a fixed argv of our own, no shell
    if "Non-2xx" in output:
        raise RuntimeError(f"the viewer refused requests:\n{output}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]  # wrk always prints this line
    p99 = re.search(r"99%\s+(\S+)", output)
    return rate, p99.group(1) if p99 else "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="studyshelf-bench-viewer-"))
    try:
        with Processes() as procs:
            instance = make_instance(tmp)
            port = free_port()
            start_studyshelf(procs, instance, server="granian", workers=WORKERS, port=port, log=tmp / "server.log")
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
            rate, p99 = _wrk(
                f"http://127.0.0.1:{port}/v/{link_id}", duration=args.duration, connections=args.connections
            )
            print(f"viewer page (GET /v/…, {WORKERS} workers, SQLite): {rate:,.0f} requests/s, p99 {p99}")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
