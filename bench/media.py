"""Signed media URLs: signature checks per second on one core, and /m/ against nginx on loopback.

    python -m bench.media                     # both parts, granian, the default durations
    python -m bench.media --verify-only       # only the signature checks (a few seconds)
    python -m bench.media --duration 5        # shorter wrk runs

Part 1 verifies N distinct valid paths (as the server sees them: percent-decoded) in a tight loop on
one core, best of several rounds, next to a bare `hmac.digest` + `compare_digest` of the same paths.
Part 2 serves a 10 KiB and a 100 MiB file through `/m/…` (signed URL only: no cookie, no token, no
database) and nginx serves the same blob files, each case back to back in the same run (bench/delivery.py
has the harness: nginx config, wrk script, the uploads).
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

from sqlalchemy import select

from bench.common import SECRET_KEY, Instance, Processes, free_port, start_studyshelf
from bench.delivery import (
    WORKERS,
    Case,
    Result,
    measure,
    prepare,
    start_nginx,
    write_script,
)
from studyshelf.library.models import File, FileVersion
from studyshelf.services import build_services
from studyshelf.settings import Settings
from studyshelf.signing import MediaClaims, MediaSigner

VERIFY_TARGET = 100_000  # checks per second on one core
FRESH_URLS = 10_000  # more than a worker remembers (media.VERIFIED_PATHS_MAX): every request verifies
TARGETS = {"small": ("req/s", 0.25), "fresh": ("req/s", 0.25), "big": ("MB/s", 0.6)}
CASES = (
    Case("small", "10 KiB, one URL", 64),
    Case("fresh", "10 KiB, 10k URLs", 64),
    Case("big", "100 MiB whole", 4),
)


def _claims(n: int, now: int) -> MediaClaims:
    return MediaClaims(
        expires=now + 600,
        link_id=f"bench{n:017d}",
        version_id=str(uuid.UUID(int=n)),
        sha256=f"{n:064x}",
        size=100 * 1024 * 1024 + n,
        modified=now - 86_400,
        content_type="video/mp4",
        download=False,
        filename=f"Vorlesung {n} — Zellbiologie.mp4",
    )


def bench_verify(*, count: int = 10_000, rounds: int = 15) -> float:
    """Signature checks per second on one core (best round); prints the bare HMAC baseline too."""
    signer = MediaSigner.from_settings(Settings(environment="test", secret_key=SECRET_KEY))
    now = int(time.time())
    paths = [unquote(signer.sign(_claims(n, now))) for n in range(count)]
    verify = signer.verify
    assert all(verify(p, now) for p in paths[:10])
    best, bare = _rounds(paths, verify, now, rounds)  # one thread: one core at a time
    verdict = "met" if best >= VERIFY_TARGET else "NOT met"
    print(f"signature checks, one core: {best:,.0f}/s (target ≥ {VERIFY_TARGET:,}: {verdict})")
    print(f"  baseline, bare hmac.digest + compare_digest of the same paths: {bare:,.0f}/s")
    print(f"  ({count:,} distinct paths of ~{sum(map(len, paths)) // count} characters, best of {rounds} rounds)")
    return best


def _rounds(
    paths: list[str], verify: Callable[[str, float], MediaClaims], now: int, rounds: int
) -> tuple[float, float]:
    """Best rate of verify() and of a bare HMAC + compare, rounds interleaved so both meet the same load."""
    count = len(paths)
    key, wrong = os.urandom(32), os.urandom(32)
    raw = [p.encode() for p in paths]
    best = bare = 0.0
    for _ in range(rounds):
        started = time.perf_counter()
        for path in paths:
            verify(path, now)
        best = max(best, count / (time.perf_counter() - started))
        started = time.perf_counter()
        for message in raw:
            hmac.compare_digest(hmac.digest(key, message, "sha256"), wrong)
        bare = max(bare, count / (time.perf_counter() - started))
    return best, bare


def _signed_paths(instance: Instance, files: dict[str, str], *, fresh: int) -> dict[str, list[str]]:
    """/m/ paths for the uploaded files, signed as the viewer would (600 s, the longest a URL lives):
    one per file, and `fresh` distinct ones (one link each) for the small file."""
    settings = Settings(environment="production", data_dir=instance.data_dir, secret_key=SECRET_KEY)
    services = build_services(settings)
    try:
        paths: dict[str, list[str]] = {}
        with services.read_sessions() as db:
            for case in ("small", "big"):
                file = db.get(File, uuid.UUID(files[f"{case}_id"]))
                assert file is not None
                version = db.scalars(select(FileVersion).where(FileVersion.id == file.current_version_id)).one()
                claims = MediaClaims(
                    expires=int(time.time()) + settings.media_url_ttl_seconds,
                    link_id="benchlink0000000000000",
                    version_id=str(version.id),
                    sha256=version.blob_sha256,
                    size=version.size,
                    modified=int(version.created_at.timestamp()),
                    content_type=version.content_type,
                    download=False,
                    filename=file.name,
                )
                paths[case] = [services.signer.sign(claims)]
                if case == "small":
                    links = (f"bench{n:017d}" for n in range(fresh))
                    paths["fresh"] = [services.signer.sign(claims._replace(link_id=link)) for link in links]
        return paths
    finally:
        services.engine.dispose()


def write_rotating_script(tmp: Path, name: str, paths: list[str]) -> Path:
    """A wrk script that asks for the next path of `paths` on every request (each thread from its own start)."""
    lines = ",\n".join(json.dumps(p) for p in paths)
    script = tmp / f"{name}.lua"
    done = write_script(tmp, f"{name}-base", token="", range_chunks=0).read_text()
    done = done[done.index("function done") :]
    script.write_text(
        f"local paths = {{\n{lines}\n}}\n"
        "local i = 0\n"
        "function setup(thread) i = i + 997; thread:set('i', i) end\n"
        "request = function()\n"
        "    i = i % #paths + 1\n"
        "    return wrk.format('GET', paths[i])\n"
        "end\n" + done
    )
    return script


def print_table(results: dict[str, dict[str, Result]]) -> bool:
    print()
    header = f"{'case':<22} {'server':<12} {'MB/s':>9} {'req/s':>9} {'p99 ms':>9} {'ratio':>7}  target"
    print(header)
    print("-" * (len(header) + 12))
    all_met = True
    for case in CASES:
        unit, target = TARGETS[case.name]
        base = results["nginx"][case.name]
        print(f"{case.label:<22} {'nginx':<12} {base.mb_per_s:9.1f} {base.requests_per_s:9.0f} {base.p99_ms:9.2f}")
        for name, by_case in results.items():
            if name == "nginx":
                continue
            r = by_case[case.name]
            ratio = r.metric(unit) / base.metric(unit)
            met = ratio >= target
            all_met = all_met and met
            figures = f"{r.mb_per_s:9.1f} {r.requests_per_s:9.0f} {r.p99_ms:9.2f}"
            print(f"{'':<22} {name:<12} {figures} {ratio:7.2f}  {unit} ≥ {target:.2f}: {'met' if met else 'NOT met'}")
    print()
    return all_met


def bench_http(args: argparse.Namespace) -> bool:
    tmp = Path(tempfile.mkdtemp(prefix="studyshelf-bench-media-"))
    try:
        with Processes() as procs:
            print(f"Preparing in {tmp} …", flush=True)
            instance, files = prepare(tmp, procs)
            nginx_port = free_port()
            start_nginx(procs, tmp, instance.blobs_root, nginx_port)
            plain = write_script(tmp, "plain", token="", range_chunks=0)
            sha = {case: files[f"{case}_sha"] for case in ("small", "big")}
            nginx_paths = {c: f"/{s[:2]}/{s[2:4]}/{s}" for c, s in sha.items()}
            nginx_paths["fresh"] = nginx_paths["small"]
            ports = {}
            for server in args.server or ["granian"]:
                ports[server] = free_port()
                log = tmp / f"{server}.log"
                start_studyshelf(procs, instance, server=server, workers=WORKERS, port=ports[server], log=log)
            print(f"nginx: {WORKERS} workers, sendfile; StudyShelf: {WORKERS} workers, signed /m/ URL only", flush=True)
            names = ["nginx", *(f"{s} /m/" for s in ports)]
            results: dict[str, dict[str, Result]] = {name: {} for name in names}
            for case in CASES:
                # Signed just before each case, so no URL outlives its 600 s within a measurement.
                paths = _signed_paths(instance, files, fresh=FRESH_URLS)
                for name in names:
                    port = nginx_port if name == "nginx" else ports[name.split()[0]]
                    case_paths = [nginx_paths[case.name]] if name == "nginx" else paths[case.name]
                    if case.name == "fresh":
                        # nginx gets the same request-building script, asking for its one file each time.
                        script = write_rotating_script(
                            tmp, f"{case.name}-{port}", case_paths * (FRESH_URLS // len(case_paths))
                        )
                    else:
                        script = plain
                    results[name][case.name] = measure(
                        name,
                        f"http://127.0.0.1:{port}{case_paths[0]}",
                        script,
                        case,
                        duration=args.duration,
                        threads=args.threads,
                        warmup=args.warmup,
                    )
        return print_table(results)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", action="append", choices=["granian", "uvicorn"], help="repeatable; default granian")
    parser.add_argument("--duration", type=int, default=8, help="seconds per measurement (default 8; keep < 600)")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of warm-up before each measurement")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--verify-only", action="store_true", help="only the signature checks")
    args = parser.parse_args(argv)
    if args.duration + args.warmup >= 500:
        parser.error("each measurement must end well within a signed URL's 600 s")
    started = time.monotonic()
    bench_verify()
    if args.verify_only:
        return 0
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    bench_http(args)
    print(f"({time.monotonic() - started:.0f} s; wrk -t{args.threads}, {args.duration} s per case)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
