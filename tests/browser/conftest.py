"""A real StudyShelf server (uvicorn, demo data) for the browser tests, and Debian's Chromium."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_service

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
ADMIN_EMAIL = "admin@studyshelf.test"
ADMIN_PASSWORD = "browser-test-password"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 375, "height": 740}


@dataclass(frozen=True)
class Server:
    url: str
    email: str
    password: str
    env: dict[str, str] = field(default_factory=dict, repr=False)  # what the server was started with


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _studyshelf() -> str:
    found = Path(sys.executable).with_name("studyshelf")
    return str(found if found.exists() else ROOT / ".venv" / "bin" / "studyshelf")


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited early:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2):  # noqa: S310 - our own local server
                return
        except OSError:
            time.sleep(0.25)
    pytest.fail(f"the server did not start:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`studyshelf demo` then `studyshelf serve` in a fresh data dir, on a free port.

    Media processing is off here, so the demo video plays as its MP4 (test_embed.py's range tests);
    test_hls_playback.py starts a server of its own that processes it."""
    with running_server(tmp_path_factory.mktemp("browser-data"), {"STUDYSHELF_MEDIA_PROCESSING": "false"}) as started:
        yield started


@contextmanager
def running_server(
    data: Path, extra_env: dict[str, str], before_serve: Sequence[Sequence[str]] = ()
) -> Iterator[Server]:
    """A demo-seeded server on `data` (`before_serve`: more `studyshelf` commands to run first)."""
    require_service(CHROMIUM.exists(), "Chromium (/usr/bin/chromium)")
    env = {
        **os.environ,
        "STUDYSHELF_DATA_DIR": str(data),
        "STUDYSHELF_ADMIN_EMAIL": ADMIN_EMAIL,
        "STUDYSHELF_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "STUDYSHELF_ENVIRONMENT": "development",
        # Only this test process talks to the server; test_embed.py sends X-Forwarded-For to play
        # visitors from other networks (requests without the header still count as 127.0.0.1).
        "STUDYSHELF_TRUSTED_PROXIES": '["127.0.0.1/32"]',
    }
    for key in (
        "STUDYSHELF_DATABASE_URL",
        "STUDYSHELF_STORAGE_URL",
        "STUDYSHELF_REDIS_URL",
        "STUDYSHELF_WAREHOUSE_URL",
        "STUDYSHELF_MEDIA_PROCESSING",
    ):
        env.pop(key, None)
    env.update(extra_env)
    for command in (["demo"], *before_serve):
        argv = [_studyshelf(), *command]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)  # noqa: S603 - our own CLI
        assert done.returncode == 0, done.stdout + done.stderr
    port = _free_port()
    env["STUDYSHELF_BASE_URL"] = f"http://127.0.0.1:{port}"  # link URLs and embed snippets point here
    log = data / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - fixed arguments
            [_studyshelf(), "serve", "--server", "uvicorn", "--workers", "1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, process, log)
        yield Server(url, ADMIN_EMAIL, ADMIN_PASSWORD, {k: v for k, v in env.items() if k.startswith("STUDYSHELF_")})
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


# What a broken script leaves in the console: a CSP refusal, an import that did not resolve or load, an
# exception nobody caught. Pages are watched with watch_script_errors, which marks uncaught ones "pageerror:".
SCRIPT_FAILURES = ("Content Security Policy", "Refused", "Uncaught", "module script", "module specifier", "pageerror:")


def watch_script_errors(page: Any) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    return errors


def script_failures(errors: list[str]) -> list[str]:
    return [e for e in errors if any(sign in e for sign in SCRIPT_FAILURES)]


def sign_in(page: Any, server: Server, email: str | None = None, password: str | None = None) -> None:
    page.goto(server.url + "/")
    assert "/login" in page.url
    page.get_by_label("E-mail address").fill(email or server.email)
    page.get_by_label("Password").fill(password or server.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/library/**")
