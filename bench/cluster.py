"""Two StudyShelf instances behind nginx against one, in the same run: viewer pages per second and media MB/s.

    python -m bench.cluster                  # 8 s per measurement
    python -m bench.cluster --duration 4

The cluster is the test's (tests/scaleout/rig.py): the reference nginx configuration in front of N instances of
`studyshelf serve` (uvicorn, one worker each) and one `studyshelf worker`, over PostgreSQL and Redis; blobs on a
shared local directory (moto's S3 server would be the bottleneck, not StudyShelf), no X-Accel-Redirect, so the
instances send the media bytes themselves. Measured with wrk through nginx:

- the viewer page `GET /v/{link}` (framed by an allowed origin), requests/s;
- a 4 MiB video's `/m/` URL, whole file, MB/s (too big for nginx's media cache: every request reaches an instance).

Target (issue 16): 2 instances ≥ 1.6× one on a machine with enough cores. On 2 cores nginx, wrk, the worker,
PostgreSQL and Redis share the cores with the instances, so the ratio measures contention as much as scaling.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
from tests.scaleout.rig import Cluster, running_cluster

LMS = "https://moodle.example.edu"
PASSWORD = "correct horse battery staple"  # noqa: S105 - a throwaway cluster
VIEWER_HEADERS = [
    "Sec-Fetch-Dest: iframe",
    "Sec-Fetch-Site: cross-site",
    f"Referer: {LMS}/course/view.php?id=7",
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0 Safari/537.36",
]
MEDIA_BYTES = 4 << 20


def _wrk(url: str, *, duration: int, connections: int, headers: list[str]) -> tuple[float, float]:
    """(requests/s, MB/s) through nginx."""
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--timeout", "30s"]
    for header in headers:
        argv += ["-H", header]
    output = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout  # noqa: S603 - a fixed argv of our own
    if "Non-2xx" in output:
        raise RuntimeError(f"requests were refused:\n{output}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]  # wrk prints it
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)([KMG]?)B", output)
    scale = {"": 1e-6, "K": 1e-3, "M": 1.0, "G": 1e3}
    mb = float(transfer.group(1)) * scale[transfer.group(2)] * 1.048576 if transfer else 0.0
    return rate, mb


def _prepare(cluster: Cluster) -> tuple[str, str]:
    """An operator with a video behind a link: (viewer path, media path)."""
    cluster.cli("org", "create", "--name", "Bench Press", "--slug", "bench", "--kind", "operator")
    cluster.cli(
        "user", "create", "--email", "owner@bench.test", "--password", PASSWORD, "--org", "bench", "--role", "owner"
    )
    with httpx.Client(base_url=cluster.url, timeout=60) as client:
        login = client.post("/api/v1/auth/login", json={"email": "owner@bench.test", "password": PASSWORD})
        login.raise_for_status()
        client.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        root = client.get("/api/v1/me").json()["organizations"][0]["root_folder_id"]
        head = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
        body = head + bytes(range(256)) * ((MEDIA_BYTES - len(head)) // 256)
        uploaded = client.post(f"/api/v1/folders/{root}/files", files={"file": ("lecture.mp4", body, "video/mp4")})
        uploaded.raise_for_status()
        link = client.post(
            "/api/v1/links",
            json={"target_type": "file", "target_id": uploaded.json()["id"], "allowed_origins": [LMS], "mode": "embed"},
        )
        link.raise_for_status()
        viewer = f"/v/{link.json()['id']}"
        page = client.get(viewer, headers=dict(h.split(": ", 1) for h in VIEWER_HEADERS)).text
    media = re.search(r'<video[^>]*\bsrc="(/m/[^"]+)"', page) or re.search(r'"(/m/[^"]+)"', page)
    if media is None:
        raise RuntimeError("the viewer page has no media URL")
    return viewer, media.group(1).replace("&amp;", "&")


def measure(instances: int, root: Path, *, duration: int) -> dict[str, float]:
    with running_cluster(root, instances=instances, storage="local") as cluster:
        viewer, media = _prepare(cluster)
        _wrk(cluster.url + viewer, duration=2, connections=8, headers=VIEWER_HEADERS)  # warm up
        views, _ = _wrk(cluster.url + viewer, duration=duration, connections=16, headers=VIEWER_HEADERS)
        _, mb = _wrk(cluster.url + media, duration=duration, connections=8, headers=VIEWER_HEADERS[-1:])
        return {"views": views, "mb": mb}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=8)
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="studyshelf-bench-cluster-"))
    try:
        one = measure(1, tmp / "one", duration=args.duration)
        two = measure(2, tmp / "two", duration=args.duration)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("StudyShelf behind nginx: 2 instances vs 1 (uvicorn, one worker each; PostgreSQL, Redis, local blobs)")
    print(f"{'':28}{'1 instance':>14}{'2 instances':>14}{'ratio':>8}")
    print(
        f"{'viewer page, requests/s':28}{one['views']:>14.1f}{two['views']:>14.1f}{two['views'] / one['views']:>8.2f}"
    )
    print(f"{'4 MiB media, MB/s':28}{one['mb']:>14.1f}{two['mb']:>14.1f}{two['mb'] / one['mb']:>8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
