"""nginx against StudyShelf's member download endpoint, on loopback, the same files on disk.

    python -m bench.delivery                       # both servers (granian, uvicorn), the default durations
    python -m bench.delivery --server granian      # one server
    python -m bench.delivery --duration 5          # shorter runs

Three cases: a 100 MiB file whole, random 1 MiB ranges of it, and a 10 KiB file. StudyShelf answers
as a member would be answered: with `Authorization: Bearer ss_…`, through the permission checks.
nginx serves the blob files themselves (sendfile on, tcp_nopush on, access_log off, 2 workers).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    Instance,
    MiB,
    Processes,
    free_port,
    make_instance,
    multipart_upload,
    random_chunks,
    start_studyshelf,
)

BIG = 100 * MiB
SMALL = 10 * 1024
WORKERS = 2
TARGETS = {"big": ("MB/s", 0.6), "range": ("MB/s", 0.3), "small": ("req/s", 0.1)}

NGINX_CONF = """\
{user}worker_processes {workers};
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    default_type application/octet-stream;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""

# The done() hook prints one JSON line that the harness reads; request() adds the headers, and a random
# 1 MiB-aligned Range when `range_chunks` > 0.
WRK_SCRIPT = """\
local token = {token}
local range_chunks = {range_chunks}
local counter = 0
function setup(thread)
    counter = counter + 1
    thread:set("seed", counter)
end
function init(args)
    math.randomseed(seed * 7919 + os.time())
end
if token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end
if range_chunks > 0 then
    -- Only the range case builds each request; the others send one pre-built request, as wrk does best.
    request = function()
        local start = math.random(0, range_chunks - 1) * {chunk}
        local headers = {{["Range"] = "bytes=" .. start .. "-" .. (start + {chunk} - 1)}}
        if token ~= "" then headers["Authorization"] = "Bearer " .. token end
        return wrk.format(nil, nil, headers)
    end
end
function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        'BENCHJSON {{"duration_us": %d, "requests": %d, "bytes": %d, "p99_us": %d, "mean_us": %f, '
        .. '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}\\n',
        summary.duration, summary.requests, summary.bytes, latency:percentile(99), latency.mean,
        e.connect, e.read, e.write, e.status, e.timeout))
end
"""


@dataclass(frozen=True)
class Case:
    name: str
    label: str
    connections: int


CASES = (
    Case("big", "100 MiB whole", 4),
    Case("range", "1 MiB ranges", 16),
    Case("small", "10 KiB", 64),
)


@dataclass(frozen=True)
class Result:
    requests_per_s: float
    mb_per_s: float
    p99_ms: float
    errors: int

    def metric(self, unit: str) -> float:
        return self.mb_per_s if unit == "MB/s" else self.requests_per_s


def run_wrk(url: str, script: Path, *, connections: int, duration: float, threads: int) -> Result:
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=duration + 60).stdout  # noqa: S603 - a fixed argv of our own, no shell
    line = next((ln for ln in out.splitlines() if ln.startswith("BENCHJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    data = json.loads(line.removeprefix("BENCHJSON "))
    seconds = data["duration_us"] / 1e6
    errors = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
    return Result(
        requests_per_s=data["requests"] / seconds,
        mb_per_s=data["bytes"] / seconds / 1e6,
        p99_ms=data["p99_us"] / 1000,
        errors=errors,
    )


def write_script(tmp: Path, name: str, *, token: str, range_chunks: int) -> Path:
    path = tmp / f"{name}.lua"
    path.write_text(WRK_SCRIPT.format(token=json.dumps(token), range_chunks=range_chunks, chunk=MiB))
    return path


def start_nginx(procs: Processes, tmp: Path, root: Path, port: int) -> subprocess.Popen[bytes]:
    import os

    from bench.common import wait_for_http

    conf_dir = tmp / "nginx"
    conf_dir.mkdir()
    conf = conf_dir / "nginx.conf"
    user = "user root root;\n" if os.geteuid() == 0 else ""  # the blobs are 0640 in a 0700 temp dir
    conf.write_text(NGINX_CONF.format(user=user, workers=WORKERS, tmp=conf_dir, port=port, root=root))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = procs.start([nginx, "-p", str(conf_dir), "-c", str(conf), "-e", str(conf_dir / "nginx-error.log")])
    wait_for_http(port, "/", proc=proc)
    return proc


def prepare(tmp: Path, procs: Processes) -> tuple[Instance, dict[str, str]]:
    """A fresh instance with the two files uploaded through the API; returns it and {case: file id, sha}."""
    instance = make_instance(tmp / "data")
    port = free_port()
    server = start_studyshelf(procs, instance, server="granian", workers=1, port=port, log=tmp / "setup-server.log")
    try:
        files = {}
        for key, size, name in (("big", BIG, "big.bin"), ("small", SMALL, "small.bin")):
            answer = multipart_upload(
                port,
                folder_id=instance.root_folder_id,
                token=instance.token,
                filename=name,
                size=size,
                chunks=random_chunks(size),
            )
            files[f"{key}_id"], files[f"{key}_sha"] = str(answer["id"]), str(answer["sha256"])
    finally:
        procs.stop(server)
    return instance, files


def measure(target: str, url: str, script: Path, case: Case, *, duration: int, threads: int, warmup: int) -> Result:
    if warmup > 0:
        run_wrk(url, script, connections=case.connections, duration=warmup, threads=threads)
    r = run_wrk(url, script, connections=case.connections, duration=duration, threads=threads)
    print(
        f"  {case.label:<14} {target:<9} {r.mb_per_s:9.1f} MB/s {r.requests_per_s:9.0f} req/s  p99 {r.p99_ms:8.2f} ms",
        flush=True,
    )
    if r.errors:
        raise RuntimeError(f"{r.errors} errors (non-2xx answers or socket errors) from {target} in case {case.name}")
    return r


def _blob_url(sha256: str) -> str:
    return f"/{sha256[:2]}/{sha256[2:4]}/{sha256}"


def print_table(nginx: dict[str, Result], apps: dict[str, dict[str, Result]]) -> bool:
    print()
    header = f"{'case':<14} {'server':<9} {'MB/s':>9} {'req/s':>9} {'p99 ms':>9} {'ratio':>7}  target"
    print(header)
    print("-" * len(header) + "-" * 12)
    all_met = True
    for case in CASES:
        unit, target = TARGETS[case.name]
        base = nginx[case.name]
        print(f"{case.label:<14} {'nginx':<9} {base.mb_per_s:9.1f} {base.requests_per_s:9.0f} {base.p99_ms:9.2f}")
        for server, results in apps.items():
            r = results[case.name]
            ratio = r.metric(unit) / base.metric(unit)
            met = ratio >= target
            all_met = all_met and met
            verdict = f"{unit} ≥ {target:.1f}: {'met' if met else 'NOT met'}"
            figures = f"{r.mb_per_s:9.1f} {r.requests_per_s:9.0f} {r.p99_ms:9.2f}"
            print(f"{'':<14} {server:<9} {figures} {ratio:7.2f}  {verdict}")
    print()
    return all_met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", action="append", choices=["granian", "uvicorn"], help="repeatable; default: both")
    parser.add_argument("--duration", type=int, default=8.0, help="seconds per measurement (default 8)")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of warm-up before each measurement")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    servers: list[str] = args.server or ["granian", "uvicorn"]
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="studyshelf-bench-"))
    started = time.monotonic()
    try:
        with Processes() as procs:
            print(f"Preparing in {tmp} …", flush=True)
            instance, files = prepare(tmp, procs)
            range_chunks = BIG // MiB
            nginx_scripts = {
                "big": write_script(tmp, "nginx-big", token="", range_chunks=0),
                "range": write_script(tmp, "nginx-range", token="", range_chunks=range_chunks),
                "small": write_script(tmp, "nginx-small", token="", range_chunks=0),
            }
            app_scripts = {
                "big": write_script(tmp, "app-big", token=instance.token, range_chunks=0),
                "range": write_script(tmp, "app-range", token=instance.token, range_chunks=range_chunks),
                "small": write_script(tmp, "app-small", token=instance.token, range_chunks=0),
            }
            # Every server runs from the start, idle while another is measured; each case is measured on
            # all of them back to back, so a change in the machine's load hits both sides of a ratio alike.
            port = free_port()
            start_nginx(procs, tmp, instance.blobs_root, port)
            blob = {k: _blob_url(files[k + "_sha"]) for k in ("big", "small")}
            targets: dict[str, tuple[dict[str, str], dict[str, Path]]] = {
                "nginx": (
                    {c: f"http://127.0.0.1:{port}{blob['small' if c == 'small' else 'big']}" for c in TARGETS},
                    nginx_scripts,
                )
            }
            for server in servers:
                port = free_port()
                start_studyshelf(procs, instance, server=server, workers=WORKERS, port=port, log=tmp / f"{server}.log")
                content = {
                    k: f"http://127.0.0.1:{port}/api/v1/files/{files[k + '_id']}/content" for k in ("big", "small")
                }
                targets[server] = ({c: content["small" if c == "small" else "big"] for c in TARGETS}, app_scripts)
            print(f"nginx: {WORKERS} workers, sendfile; StudyShelf: {WORKERS} workers, bearer token", flush=True)
            results: dict[str, dict[str, Result]] = {name: {} for name in targets}
            for case in CASES:
                for name, (urls, scripts) in targets.items():
                    results[name][case.name] = measure(
                        name,
                        urls[case.name],
                        scripts[case.name],
                        case,
                        duration=args.duration,
                        threads=args.threads,
                        warmup=args.warmup,
                    )
            nginx = results.pop("nginx")
            apps = results
        print_table(nginx, apps)
        print(
            f"({time.monotonic() - started:.0f} s; wrk -t{args.threads}, "
            f"{args.duration:g} s per case after {args.warmup:g} s warm-up)"
        )
        return 0
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
