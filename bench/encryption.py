"""Delivery throughput with encryption at rest on vs off, in the same run, through the member download endpoint.

    python -m bench.encryption                  # the default durations
    python -m bench.encryption --duration 5     # shorter runs

Two instances side by side, one with STUDYSHELF_ENCRYPTION_KEY set and one without, each with the same
100 MiB file uploaded through the API; `studyshelf serve` (granian, 2 workers) for each. Two cases: the file
whole (4 connections) and random 1 MiB-aligned ranges of it (16 connections). Each case alternates the two
servers in rounds (plain, encrypted, encrypted, plain, …), so that load from other jobs on the machine falls on
both alike; the ratio of their mean MB/s is held against 0.7, and each round's paired ratio is shown.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.common import (
    Instance,
    MiB,
    Processes,
    cpu_seconds,
    free_port,
    make_instance,
    multipart_upload,
    start_studyshelf,
)
from bench.delivery import Case, Result, measure, run_wrk, write_script

BIG = 100 * MiB
WORKERS = 2
TARGET = 0.7
CASES = (Case("big", "100 MiB whole", 4), Case("range", "1 MiB ranges", 16))


def repeated_chunks(data: bytes, size: int) -> list[bytes]:
    """The same pseudo-random bytes for both instances (the two uploads must be identical)."""
    return [data[: min(MiB, size - offset)] for offset in range(0, size, MiB)]


def prepare(
    tmp: Path, procs: Processes, name: str, extra_env: dict[str, str], payload: list[bytes]
) -> tuple[Instance, str]:
    instance = make_instance(tmp / name)
    instance = dataclasses.replace(instance, env={**instance.env, **extra_env})
    port = free_port()
    server = start_studyshelf(procs, instance, server="granian", workers=1, port=port, log=tmp / f"setup-{name}.log")
    try:
        answer = multipart_upload(
            port, folder_id=instance.root_folder_id, token=instance.token, filename="big.bin", size=BIG, chunks=payload
        )
    finally:
        procs.stop(server)
    return instance, str(answer["id"])


Rounds = dict[str, dict[str, list[Result]]]


def report(rounds: Rounds, cpu: dict[str, dict[str, list[float]]], *, duration: int) -> None:
    """The ratio of mean MB/s per case with each round's pair, then the servers' CPU time per MB."""
    print()
    print(f"{'case':<14} {'plain MB/s':>11} {'encrypted MB/s':>15} {'ratio':>7}  {'per round':<24} target")
    for case in CASES:
        plain, sealed = rounds["plain"][case.name], rounds["encrypted"][case.name]
        plain_mean = statistics.fmean(r.mb_per_s for r in plain)
        sealed_mean = statistics.fmean(r.mb_per_s for r in sealed)
        ratio = sealed_mean / plain_mean
        paired = " ".join(f"{e.mb_per_s / p.mb_per_s:.2f}" for p, e in zip(plain, sealed, strict=True))
        verdict = "met" if ratio >= TARGET else "NOT met"
        figures = f"{plain_mean:11.1f} {sealed_mean:15.1f} {ratio:7.2f}"
        print(f"{case.label:<14} {figures}  {paired:<24} ≥ {TARGET}: {verdict}")
    print()
    print("Server CPU time per MB served (each instance's processes; little moved by other load on the machine):")
    for case in CASES:
        per_mb = {
            name: sum(cpu[name][case.name]) / sum(r.mb_per_s * duration for r in rounds[name][case.name])
            for name in rounds
        }
        efficiency = per_mb["plain"] / per_mb["encrypted"]
        print(
            f"{case.label:<14} plain {per_mb['plain'] * 1000:6.3f} ms/MB, encrypted {per_mb['encrypted'] * 1000:6.3f} "
            f"ms/MB: encrypted serves {efficiency:.2f} of plain's bytes per CPU second"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=3, help="seconds per round and server (default 3)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds per case, alternating the servers (default 4)")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of warm-up before each measurement")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="studyshelf-bench-crypto-"))
    started = time.monotonic()
    payload = repeated_chunks(os.urandom(MiB), BIG)
    key = base64.b64encode(os.urandom(32)).decode()
    try:
        with Processes() as procs:
            print(f"Preparing in {tmp} …", flush=True)
            urls: dict[str, str] = {}
            pids: dict[str, int] = {}
            scripts: dict[str, dict[str, Path]] = {}
            for name, extra in (("plain", {}), ("encrypted", {"STUDYSHELF_ENCRYPTION_KEY": key})):
                instance, file_id = prepare(tmp, procs, name, extra, payload)
                port = free_port()
                server = start_studyshelf(
                    procs, instance, server="granian", workers=WORKERS, port=port, log=tmp / f"{name}.log"
                )
                pids[name] = server.pid
                urls[name] = f"http://127.0.0.1:{port}/api/v1/files/{file_id}/content"
                scripts[name] = {
                    "big": write_script(tmp, f"{name}-big", token=instance.token, range_chunks=0),
                    "range": write_script(tmp, f"{name}-range", token=instance.token, range_chunks=BIG // MiB),
                }
            rounds: Rounds = {"plain": {}, "encrypted": {}}
            cpu: dict[str, dict[str, list[float]]] = {"plain": {}, "encrypted": {}}  # server CPU s per round
            for case in CASES:
                for name, by_case in rounds.items():
                    by_case[case.name] = []
                    cpu[name][case.name] = []
                    if args.warmup > 0:
                        run_wrk(
                            urls[name],
                            scripts[name][case.name],
                            connections=case.connections,
                            duration=args.warmup,
                            threads=args.threads,
                        )
                for n in range(args.rounds):
                    order = ("plain", "encrypted") if n % 2 == 0 else ("encrypted", "plain")
                    for name in order:
                        before = cpu_seconds(pids[name])
                        rounds[name][case.name].append(
                            measure(
                                name,
                                urls[name],
                                scripts[name][case.name],
                                case,
                                duration=args.duration,
                                threads=args.threads,
                                warmup=0,
                            )
                        )
                        cpu[name][case.name].append(cpu_seconds(pids[name]) - before)
        report(rounds, cpu, duration=args.duration)
        print(f"({time.monotonic() - started:.0f} s; granian, {WORKERS} workers each, bearer token)")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
