"""Media processing: how long a 1080p video takes to become HLS, and how fast /m/~/ serves its segments.

    python -m bench.media_processing                 # a 60 s 1080p clip, 8 s wrk runs
    python -m bench.media_processing --seconds 20    # a shorter clip

1. A 1080p30 clip with audio is made with ffmpeg's testsrc2 and sine sources, uploaded through the API, and
   processed in this process (`studyshelf.media.worker.process_pending`: 360p, 720p and 1080p renditions, poster,
   sprite). Reported: processing seconds per minute of video, and the ratio to the video's duration (below 1:
   faster than real time). It runs on whatever cores the machine has (this one: 2, shared).
2. One 360p segment (~0.4 MB) is fetched over and over through its signed rendition-set URL (/m/~/…, one
   signature verified once per prefix) from StudyShelf (granian, one worker) and straight from nginx serving
   the same blob file (sendfile, 2 workers). Target (issue 19): StudyShelf ≥ 0.25 of nginx's requests a second.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from bench.common import Processes, free_port, make_instance, multipart_upload, start_studyshelf
from bench.delivery import Case, Result, measure, start_nginx, write_script
from studyshelf.core.db import unit_of_work
from studyshelf.library.models import File
from studyshelf.media import service
from studyshelf.media.worker import process_pending
from studyshelf.services import build_services
from studyshelf.settings import Settings
from studyshelf.signing import SetClaims, sign_set

SEGMENT = "360p/seg-00001.ts"
CASE = Case("segment", "360p segment", 32)
TARGET = 0.25


def make_clip(path: Path, seconds: int) -> None:
    video = f"testsrc2=size=1920x1080:rate=30:duration={seconds}"
    audio = f"sine=frequency=440:sample_rate=48000:duration={seconds}"
    argv = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", video, "-f", "lavfi", "-i", audio]
    argv += ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-b:v", "6M", "-c:a", "aac", "-y"]
    subprocess.run([*argv, str(path)], check=True)  # noqa: S603 - a fixed argv of our own


def chunks_of(path: Path) -> Iterator[bytes]:
    with path.open("rb") as source:
        while chunk := source.read(1 << 20):
            yield chunk


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=60, help="length of the 1080p clip (default 60)")
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk measurement (default 8)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    args = parser.parse_args(argv)
    for tool in ("ffmpeg", "wrk", "nginx"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            print(f"{tool} is not installed", file=sys.stderr)
            return 2
    tmp = Path(tempfile.mkdtemp(prefix="studyshelf-bench-media-"))
    try:
        with Processes() as procs:
            return _run(tmp, procs, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run(tmp: Path, procs: Processes, args: argparse.Namespace) -> int:
    clip = tmp / "lecture-1080p.mp4"
    print(f"Making a {args.seconds} s 1080p clip …", flush=True)
    make_clip(clip, args.seconds)
    instance = make_instance(tmp / "data")
    instance.env["STUDYSHELF_MEDIA_PROCESSING"] = "false"  # processed below, in this process, timed
    port = free_port()
    server = start_studyshelf(procs, instance, server="granian", workers=1, port=port, log=tmp / "setup.log")
    size = clip.stat().st_size
    answer = multipart_upload(
        port,
        folder_id=instance.root_folder_id,
        token=instance.token,
        filename="lecture.mp4",
        size=size,
        chunks=chunks_of(clip),
    )
    procs.stop(server)
    settings = Settings(
        environment="production", data_dir=instance.data_dir, secret_key=instance.env["STUDYSHELF_SECRET_KEY"]
    )
    services = build_services(settings)
    started = time.monotonic()
    ran = process_pending(services)
    spent = time.monotonic() - started
    with unit_of_work(services.read_sessions) as db:
        file = db.get(File, uuid.UUID(str(answer["id"])))
        assert file is not None
        assert file.current_version is not None
        version = file.current_version
        status = service.status_of(db, version=version)
        segment = service.output(db, version_id=version.id, path=SEGMENT)
    if ran != 1 or status.state != "done" or segment is None:
        print(f"processing did not finish: {status}", file=sys.stderr)
        return 1
    per_minute = spent / (args.seconds / 60)
    print(f"\nProcessing {args.seconds} s of 1080p30 into {', '.join(status.renditions)} + poster + sprite:")
    print(f"  {spent:.1f} s, {per_minute:.1f} s per minute of video, ratio to duration {spent / args.seconds:.2f}")

    expires = int(time.time()) + settings.media_url_ttl_seconds
    prefix = sign_set(services.signer, SetClaims(expires, "benchmedia", str(version.id), status.generation))
    services.engine.dispose()
    app_port, nginx_port = free_port(), free_port()
    start_studyshelf(procs, instance, server="granian", workers=1, port=app_port, log=tmp / "server.log")
    start_nginx(procs, tmp, instance.blobs_root, nginx_port)
    script = write_script(tmp, "plain", token="", range_chunks=0)
    blob = segment.blob_sha256
    print(f"\nOne {SEGMENT} ({segment.size / 1e6:.2f} MB), {CASE.connections} connections:", flush=True)
    ours: Result = measure(
        "studyshelf",
        f"http://127.0.0.1:{app_port}{prefix}{SEGMENT}",
        script,
        CASE,
        duration=args.duration,
        threads=args.threads,
        warmup=1,
    )
    theirs: Result = measure(
        "nginx",
        f"http://127.0.0.1:{nginx_port}/{blob[:2]}/{blob[2:4]}/{blob}",
        script,
        CASE,
        duration=args.duration,
        threads=args.threads,
        warmup=1,
    )
    ratio = ours.requests_per_s / theirs.requests_per_s
    verdict = "met" if ratio >= TARGET else "NOT met"
    print(
        f"\n  /m/~/ {ours.requests_per_s:.0f} req/s, nginx {theirs.requests_per_s:.0f} req/s: ratio {ratio:.2f}"
        f" (target ≥ {TARGET}: {verdict})"
    )
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
