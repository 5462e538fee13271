"""deploy/nginx/studyshelf.conf rendered for a temp dir, and Debian's nginx run on it (no root paths).

The reference file names production paths and ports; `render` swaps exactly those for a test's, and fails
when one is no longer in the file (the test would otherwise run a config that is not the reference).
bench/offload.py uses the same rendering, so the benchmark measures the reference configuration.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

REFERENCE = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "studyshelf.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

MAIN_CONF = """\
{user}worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    default_type application/octet-stream;
    keepalive_requests 100000;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {site};
}}
"""


def available() -> bool:
    return Path(NGINX).exists()


@dataclass(frozen=True)
class NginxSite:
    prefix: Path  # nginx's -p: config, pid, logs, temp files and the cache live here
    conf: Path  # the main config (wraps the rendered reference file)
    port: int

    def argv(self, *extra: str) -> list[str]:
        return [NGINX, "-p", str(self.prefix), "-c", str(self.conf), "-e", str(self.prefix / "error.log"), *extra]

    def check(self) -> None:
        """`nginx -t`: the rendered configuration parses and every path in it is usable."""
        result = subprocess.run(self.argv("-t"), capture_output=True, text=True, check=False, timeout=30)  # noqa: S603 - our own argv
        if result.returncode != 0:
            raise AssertionError(f"nginx -t failed:\n{result.stderr}")

    def error_log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


def render(prefix: Path, *, port: int, app_ports: list[int], blob_dir: Path, workers: int = 1) -> NginxSite:
    """Write the reference config with this prefix's paths and these ports, and a main config around it."""
    text = REFERENCE.read_text()
    upstream_lines = "\n".join(f"    server 127.0.0.1:{p} max_fails=2 fail_timeout=10s;" for p in app_ports)
    text = _replace(text, r"(?m)^    server 127\.0\.0\.1:8001 .*\n    server 127\.0\.0\.1:8002 .*$", upstream_lines)
    text = _replace(text, r"/var/cache/nginx/studyshelf ", f"{prefix / 'cache'} ")
    text = _replace(text, r"listen 127\.0\.0\.1:8080;", f"listen 127.0.0.1:{port};")
    text = _replace(text, r"alias /var/lib/studyshelf/blobs/;", f"alias {blob_dir}/;")
    prefix.mkdir(parents=True, exist_ok=True)
    site = prefix / "studyshelf.conf"
    site.write_text(text)
    # As root, workers would run as nobody, who may not read the 0640 blobs in a 0700 temp dir.
    user = "user root root;\n" if os.geteuid() == 0 else ""
    conf = prefix / "nginx.conf"
    conf.write_text(MAIN_CONF.format(user=user, workers=workers, prefix=prefix, site=site))
    return NginxSite(prefix=prefix, conf=conf, port=port)


def _replace(text: str, pattern: str, replacement: str) -> str:
    new, count = re.subn(pattern, lambda _: replacement, text)
    if count != 1:
        raise AssertionError(f"deploy/nginx/studyshelf.conf no longer has exactly one {pattern!r}")
    return new
