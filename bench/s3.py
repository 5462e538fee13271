"""Member downloads from the S3 store (moto's server) against the local store, in the same run.

    python -m bench.s3                  # the default durations
    python -m bench.s3 --duration 5     # shorter runs

Two instances side by side, identical but for STUDYSHELF_STORAGE_URL (a directory, or a bucket on moto's
server started here as its own process on loopback), each given the same 32 MiB and 10 KiB files through the
API; `studyshelf serve` (granian, 2 workers) for each, both running throughout, STUDYSHELF_S3_DELIVERY=stream
(bytes through the app). Three cases, measured local then S3 back to back: the big file whole (4 connections),
random 1 MiB-aligned ranges of it (16 connections) and the small file (16 connections). The ratio S3/local is
printed per case, and beside it moto alone: the same requests straight to moto by presigned URL (what
STUDYSHELF_S3_DELIVERY=presigned hands out). moto is a Python server that reads a whole object for every
Range request, so S3/local is a floor for a real S3 or MinIO; S3/moto is what the app costs on top.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3

from bench.common import Instance, MiB, Processes, free_port, make_instance, multipart_upload, start_studyshelf
from bench.delivery import Case, Result, measure, write_script

BIG = 32 * MiB
SMALL = 10 * 1024
WORKERS = 2
CASES = (Case("big", "32 MiB whole", 4), Case("range", "1 MiB ranges", 16), Case("small", "10 KiB", 16))
REGION, KEY_ID, SECRET = "us-east-1", "bench", "bench-secret"


def s3_client(endpoint: str) -> Any:
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET
    )


def start_moto(procs: Processes, tmp: Path) -> str:
    port = free_port()
    argv = [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)]
    proc = procs.start(argv, log=tmp / "moto.log")
    endpoint = f"http://127.0.0.1:{port}"
    client = s3_client(endpoint)
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"moto_server exited; see {tmp / 'moto.log'}")
        try:
            client.create_bucket(Bucket="bench")
            return endpoint
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def moto_urls(endpoint: str, sha256: dict[str, str]) -> dict[str, str]:
    """Presigned GETs of the blobs straight from moto: what moto serves with no StudyShelf in between."""
    client = s3_client(endpoint)

    def url(digest: str) -> str:
        key = f"blobs/{digest[:2]}/{digest[2:4]}/{digest}"
        return str(client.generate_presigned_url("get_object", Params={"Bucket": "bench", "Key": key}, ExpiresIn=3600))

    return {case.name: url(sha256["small" if case.name == "small" else "big"]) for case in CASES}


def prepare(
    tmp: Path, procs: Processes, name: str, extra_env: dict[str, str]
) -> tuple[Instance, dict[str, str], dict[str, str]]:
    instance = make_instance(tmp / name)
    instance = dataclasses.replace(instance, env={**instance.env, **extra_env})
    port = free_port()
    server = start_studyshelf(procs, instance, server="granian", workers=1, port=port, log=tmp / f"setup-{name}.log")
    block = os.urandom(MiB)  # the same bytes for both instances
    ids, digests = {}, {}
    try:
        for case, size in (("big", BIG), ("small", SMALL)):
            chunks = [block[: min(MiB, size - at)] for at in range(0, size, MiB)]
            answer = multipart_upload(
                port, folder_id=instance.root_folder_id, token=instance.token, filename=case, size=size, chunks=chunks
            )
            ids[case], digests[case] = str(answer["id"]), str(answer["sha256"])
    finally:
        procs.stop(server)
    return instance, ids, digests


def print_table(results: dict[str, dict[str, Result]]) -> None:
    print()
    print(f"{'case':<14} {'unit':<6} {'local':>9} {'S3 app':>9} {'moto':>9} {'S3/local':>9} {'S3/moto':>8}")
    for case in CASES:
        unit = "req/s" if case.name == "small" else "MB/s"
        local, s3, moto = (results[name][case.name].metric(unit) for name in ("local", "s3", "moto"))
        print(f"{case.label:<14} {unit:<6} {local:9.1f} {s3:9.1f} {moto:9.1f} {s3 / local:9.2f} {s3 / moto:8.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=6, help="seconds per measurement (default 6)")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of warm-up before each measurement")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="studyshelf-bench-s3-"))
    started = time.monotonic()
    try:
        with Processes() as procs:
            print(f"Preparing in {tmp} …", flush=True)
            endpoint = start_moto(procs, tmp)
            s3_env = {
                "STUDYSHELF_STORAGE_URL": "s3://bench/blobs",
                "STUDYSHELF_S3_ENDPOINT_URL": endpoint,
                "STUDYSHELF_S3_REGION": REGION,
                "STUDYSHELF_S3_ACCESS_KEY_ID": KEY_ID,
                "STUDYSHELF_S3_SECRET_ACCESS_KEY": SECRET,
                "STUDYSHELF_S3_ADDRESSING_STYLE": "path",
            }
            urls: dict[str, dict[str, str]] = {}
            scripts: dict[str, dict[str, Path]] = {}
            for name, extra in (("local", {}), ("s3", s3_env)):
                instance, ids, digests = prepare(tmp, procs, name, extra)
                port = free_port()
                start_studyshelf(procs, instance, server="granian", workers=WORKERS, port=port, log=tmp / f"{name}.log")
                base = f"http://127.0.0.1:{port}/api/v1/files"
                urls[name] = {
                    case.name: f"{base}/{ids['small' if case.name == 'small' else 'big']}/content" for case in CASES
                }
                scripts[name] = {
                    "big": write_script(tmp, f"{name}-big", token=instance.token, range_chunks=0),
                    "range": write_script(tmp, f"{name}-range", token=instance.token, range_chunks=BIG // MiB),
                    "small": write_script(tmp, f"{name}-small", token=instance.token, range_chunks=0),
                }
            urls["moto"] = moto_urls(endpoint, digests)
            scripts["moto"] = {
                "big": write_script(tmp, "moto-big", token="", range_chunks=0),
                "range": write_script(tmp, "moto-range", token="", range_chunks=BIG // MiB),
                "small": write_script(tmp, "moto-small", token="", range_chunks=0),
            }
            results: dict[str, dict[str, Result]] = {"local": {}, "s3": {}, "moto": {}}
            for case in CASES:
                for name in ("local", "s3", "moto"):
                    results[name][case.name] = measure(
                        name,
                        urls[name][case.name],
                        scripts[name][case.name],
                        case,
                        duration=args.duration,
                        threads=args.threads,
                        warmup=args.warmup,
                    )
        print_table(results)
        print(f"({time.monotonic() - started:.0f} s; wrk -t{args.threads}, {args.duration} s per case)")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
