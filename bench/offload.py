"""Signed media through nginx with X-Accel-Redirect against nginx serving the same file directly, in one run.

    python -m bench.offload                  # the default durations
    python -m bench.offload --duration 5     # shorter runs

nginx runs the reference configuration (deploy/nginx/studyshelf.conf, rendered by tests/deploy/nginx_support.py)
in front of two StudyShelf instances (granian, one worker each) with STUDYSHELF_ACCEL_REDIRECT=/_protected/:
a 100 MiB file's /m/ URL is verified by the app and sent by nginx (sendfile); a 10 KiB file's is answered by
the app from memory the first time and by nginx's media cache after. The baseline is a plain nginx serving
the blob files (bench/delivery.py's). Targets (issue 16): ≥ 0.9 of its MB/s for 100 MiB, ≥ 0.5 of its req/s
for 10 KiB. The uncached 10 KiB row (a download URL, which always goes to the app) has no target. Each case
is measured `--rounds` times alternating between the two, and each side's better figure is kept.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

from tests.deploy import nginx_support

from bench.common import SECRET_KEY, Instance, Processes, free_port, start_studyshelf, wait_for_http
from bench.delivery import Case, Result, measure, prepare, start_nginx, write_script
from studyshelf.delivery.content import ContentFacts
from studyshelf.library.models import File
from studyshelf.services import build_services
from studyshelf.settings import Settings

PREFIX = "/_protected/"
WORKERS = 2  # nginx workers; StudyShelf: two instances of one worker each
CASES = (
    Case("big", "100 MiB whole", 4),
    Case("small", "10 KiB", 64),
    Case("small-uncached", "10 KiB no cache", 64),
)
TARGETS = {"big": ("MB/s", 0.9), "small": ("req/s", 0.5)}


def _media_paths(instance: Instance, files: dict[str, str]) -> dict[str, str]:
    """/m/ paths as the viewer signs them (600 s, the longest a URL lives), and a download URL of the small file."""
    settings = Settings(environment="production", data_dir=instance.data_dir, secret_key=SECRET_KEY)
    services = build_services(settings)
    try:
        paths = {}
        with services.read_sessions() as db:
            for case in ("big", "small"):
                file = db.get(File, uuid.UUID(files[f"{case}_id"]))
                assert file is not None
                assert file.current_version is not None
                expires = int(time.time()) + settings.media_url_ttl_seconds
                facts = ContentFacts.of(db, file, file.current_version)
                claims = facts.media_claims(scope_id="benchoffload", expires=expires, download=False)
                paths[case] = services.signer.sign(claims)
                if case == "small":
                    paths["small-uncached"] = services.signer.sign(claims._replace(download=True))
        return paths
    finally:
        services.engine.dispose()


def start_reference_nginx(procs: Processes, tmp: Path, instance: Instance, app_ports: list[int]) -> int:
    port = free_port()
    site = nginx_support.render(
        tmp / "reference-nginx", port=port, app_ports=app_ports, blob_dir=instance.blobs_root, workers=WORKERS
    )
    site.check()
    proc = procs.start(site.argv("-g", "daemon off;"), log=tmp / "reference-nginx.log")
    wait_for_http(port, "/healthz", proc=proc)
    return port


def print_table(results: dict[str, dict[str, Result]]) -> bool:
    print()
    header = f"{'case':<16} {'server':<24} {'MB/s':>9} {'req/s':>9} {'p99 ms':>9} {'ratio':>7}  target"
    print(header)
    print("-" * (len(header) + 12))
    all_met = True
    base = results["nginx direct"]
    for case in CASES:
        unit, target = TARGETS.get(case.name, ("req/s", 0.0))
        direct = base["small" if case.name == "small-uncached" else case.name]
        for name, by_case in results.items():
            if case.name not in by_case:
                continue
            r = by_case[case.name]
            ratio = r.metric(unit) / direct.metric(unit)
            verdict = ""
            if name != "nginx direct" and case.name in TARGETS:
                met = ratio >= target
                all_met = all_met and met
                verdict = f"{unit} ≥ {target:.1f}: {'met' if met else 'NOT met'}"
            figures = f"{r.mb_per_s:9.1f} {r.requests_per_s:9.0f} {r.p99_ms:9.2f}"
            print(f"{case.label:<16} {name:<24} {figures} {ratio:7.2f}  {verdict}")
    print()
    return all_met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=8, help="seconds per measurement (default 8)")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of warm-up before each measurement")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating measurements per case (default 2)")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None or not nginx_support.available():
        print("wrk and nginx are needed (apt-get install wrk nginx-light)", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="studyshelf-bench-offload-"))
    started = time.monotonic()
    try:
        with Processes() as procs:
            print(f"Preparing in {tmp} …", flush=True)
            instance, files = prepare(tmp, procs)
            offloading = replace(
                instance,
                env={
                    **instance.env,
                    "STUDYSHELF_ACCEL_REDIRECT": PREFIX,
                    "STUDYSHELF_TRUSTED_PROXIES": '["127.0.0.1"]',
                },
            )
            app_ports = [free_port(), free_port()]
            for port in app_ports:
                start_studyshelf(procs, offloading, server="granian", workers=1, port=port, log=tmp / f"app-{port}.log")
            reference_port = start_reference_nginx(procs, tmp, instance, app_ports)
            direct_port = free_port()
            start_nginx(procs, tmp, instance.blobs_root, direct_port)
            script = write_script(tmp, "plain", token="", range_chunks=0)
            sha = {case: files[f"{case}_sha"] for case in ("big", "small")}
            direct = {c: f"http://127.0.0.1:{direct_port}/{s[:2]}/{s[2:4]}/{s}" for c, s in sha.items()}
            print(f"nginx: {WORKERS} workers, sendfile; StudyShelf: 2 instances × 1 granian worker", flush=True)
            results: dict[str, dict[str, Result]] = {"nginx direct": {}, "nginx → app (reference)": {}}
            for case in CASES:
                unit = TARGETS.get(case.name, ("req/s", 0.0))[0]
                for _ in range(args.rounds):  # alternating, the better of each side: other jobs hit both alike
                    paths = _media_paths(instance, files)  # signed each round: no URL outlives its 600 s
                    urls = {"nginx → app (reference)": f"http://127.0.0.1:{reference_port}{paths[case.name]}"}
                    if case.name in direct:
                        urls["nginx direct"] = direct[case.name]
                    for name, url in sorted(urls.items(), reverse=True):
                        r = measure(
                            "direct" if name == "nginx direct" else "reference", url, script, case,
                            duration=args.duration, threads=args.threads,
                            warmup=args.warmup,
                        )  # fmt: skip
                        best = results[name].get(case.name)
                        if best is None or r.metric(unit) > best.metric(unit):
                            results[name][case.name] = r
        print_table(results)
        print(
            f"({time.monotonic() - started:.0f} s; wrk -t{args.threads}, "
            f"{args.duration:g} s per measurement after {args.warmup:g} s warm-up, best of {args.rounds})"
        )
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
