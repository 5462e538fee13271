"""Memory of the server while it receives a 2 GiB upload: `python -m bench.upload_memory`.

Starts StudyShelf (granian, 2 workers by default) on a throwaway data dir, streams a multipart
upload made on the fly (never held in memory here either) to POST /api/v1/folders/{root}/files
with a bearer token, samples the VmRSS of the server and all its children from /proc every
50 ms, and prints the baseline, the peak and the difference. Exit status 1 above the limit.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import (
    MiB,
    Processes,
    free_port,
    make_instance,
    multipart_upload,
    random_chunks,
    start_studyshelf,
    tree_rss,
)

GiB = 1 << 30
LIMIT = 100 * MiB


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=2048, help="upload size in MiB (default 2048)")
    parser.add_argument("--server", choices=["granian", "uvicorn"], default="granian")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    size = args.size_mib * MiB

    tmp = Path(tempfile.mkdtemp(prefix="studyshelf-upload-"))
    try:
        with Processes() as procs:
            instance = make_instance(tmp / "data", max_upload_bytes=size + GiB)
            port = free_port()
            server = start_studyshelf(
                procs, instance, server=args.server, workers=args.workers, port=port, log=tmp / "server.log"
            )
            time.sleep(1.0)
            baseline = tree_rss(server.pid)
            peak = baseline
            done = threading.Event()

            def sample() -> None:
                nonlocal peak
                while not done.is_set():
                    peak = max(peak, tree_rss(server.pid))
                    time.sleep(0.05)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            started = time.monotonic()
            try:
                answer = multipart_upload(
                    port,
                    folder_id=instance.root_folder_id,
                    token=instance.token,
                    filename="big.bin",
                    size=size,
                    chunks=random_chunks(size),
                )
            finally:
                done.set()
                sampler.join()
            seconds = time.monotonic() - started
            after = tree_rss(server.pid)
        delta = peak - baseline
        rate = size / seconds / 1e6
        print(f"upload: {size / MiB:.0f} MiB in {seconds:.1f} s ({rate:.0f} MB/s), stored {answer['size']} bytes")
        print(
            f"server RSS ({args.server}, {args.workers} workers, all processes): baseline {baseline / MiB:.1f} MiB, ",
            end="",
        )
        print(f"peak {peak / MiB:.1f} MiB, after {after / MiB:.1f} MiB")
        verdict = "ok" if delta < LIMIT else "TOO MUCH"
        print(f"extra memory at peak: {delta / MiB:.1f} MiB (limit {LIMIT / MiB:.0f} MiB): {verdict}")
        return 0 if delta < LIMIT else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
