"""A simulated LMS on another origin frames an LTI launch; the launched video plays in Chromium.

The LMS page is served from http://localhost:<port>, StudyShelf from http://127.0.0.1:<port>: different
sites, so the login cookie is not sent with the launch inside the frame, and the browser binding kept in
sessionStorage must carry the launch (the third-party-cookie case of field-facts pitfall 1).
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Error as PlaywrightError
from sqlalchemy import select

from studyshelf.core.db import unit_of_work
from studyshelf.library.models import File
from studyshelf.lti.registrations import RegistrationSpec, create_registration
from studyshelf.partners.models import Organization, OrgKind
from studyshelf.services import build_services
from studyshelf.settings import Settings
from tests.browser.conftest import CHROMIUM, _free_port, _studyshelf, _wait_ready
from tests.conftest import require_service
from tests.lti.platform import CLAIM, Platform, Simulator

pytestmark = pytest.mark.browser
VIDEO = "Mitosis — lecture.mp4"


class Stack:
    def __init__(self, url: str, data: Path, simulator: Simulator) -> None:
        self.url = url
        self.data = data
        self.simulator = simulator


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """StudyShelf (demo data, base URL on its real port) and the platform simulator."""
    require_service(CHROMIUM.exists(), "Chromium (/usr/bin/chromium)")
    data = tmp_path_factory.mktemp("lti-browser")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDYSHELF_")}
    env |= {"STUDYSHELF_DATA_DIR": str(data), "STUDYSHELF_BASE_URL": url, "STUDYSHELF_ENVIRONMENT": "development"}
    env |= {"STUDYSHELF_ADMIN_PASSWORD": "lti-browser-test-password"}
    env |= {"STUDYSHELF_OUTBOUND_ALLOWED_NETWORKS": '["127.0.0.0/8"]'}  # the platform simulator is on loopback
    demo = subprocess.run([_studyshelf(), "demo"], env=env, capture_output=True, text=True, timeout=300, check=False)  # noqa: S603 - a fixed argv of our own, no shell
    assert demo.returncode == 0, demo.stdout + demo.stderr
    log = data / "server.log"
    simulator = Simulator()
    simulator.start()
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - fixed arguments
            [_studyshelf(), "serve", "--server", "uvicorn", "--workers", "1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_ready(url, process, log)
        yield Stack(url, data, simulator)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        simulator.stop()


def _connect(stack: Stack, platform: Platform, lms_origin: str) -> uuid.UUID:
    """Register the platform for the organisation that owns the demo video; return the video's id."""
    services = build_services(Settings(data_dir=stack.data, environment="development", base_url=stack.url))
    try:
        with unit_of_work(services.write_sessions) as db:
            operator = db.scalars(select(Organization).where(Organization.kind == OrgKind.OPERATOR)).one()
            spec = RegistrationSpec(
                issuer=platform.issuer,
                client_id=platform.client_id,
                auth_url=platform.auth_url,
                jwks_url=platform.jwks_url,
                deployment_ids=[platform.deployment_id],
                origins=[lms_origin],
            )
            create_registration(db, principal=None, org_id=operator.id, spec=spec, allow_loopback_http=True)
            video = db.scalars(select(File).where(File.name == VIDEO)).one()
            return video.id
    finally:
        services.engine.dispose()


# The LMS's side of LTI Platform Storage: it keeps values per tool origin and answers postMessages.
PLATFORM_STORAGE = """
<script>
const kept = {};
window.addEventListener("message", (event) => {
  const m = event.data || {};
  const answer = { subject: m.subject + ".response", message_id: m.message_id };
  if (m.subject === "lti.capabilities") {
    answer.supported_messages = [{ subject: "lti.put_data" }, { subject: "lti.get_data" }];
  } else if (m.subject === "lti.put_data") {
    kept[event.origin + "|" + m.key] = m.value;
    Object.assign(answer, { key: m.key, value: m.value });
  } else if (m.subject === "lti.get_data") {
    Object.assign(answer, { key: m.key, value: kept[event.origin + "|" + m.key] });
  } else {
    return;
  }
  window.storageMessages = (window.storageMessages || []).concat([m.subject]);
  event.source.postMessage(answer, event.origin);
});
</script>
"""


def _lms_page(stack: Stack, platform: Platform) -> str:
    params = platform.login_params(f"{stack.url}/lti/launch", storage_target=True)
    inputs = "".join(f'<input type="hidden" name="{k}" value="{html.escape(v)}">' for k, v in params.items())
    return (
        f"<!doctype html><title>Course</title><h1>BIO101</h1>{PLATFORM_STORAGE}"
        '<iframe name="tool" title="StudyShelf" width="960" height="600"'
        ' allow="autoplay; fullscreen"></iframe>'
        f'<form id="launch" method="post" action="{stack.url}/lti/login" target="tool">{inputs}</form>'
        '<script>document.getElementById("launch").submit()</script>'
    )


def _tool_frame(page: Any, timeout: float = 30) -> Any:
    """The tool frame once it shows the video. A frame locator waits across the frame's navigations (login →
    platform → launch) with a deadline; `frame.query_selector` on a frame mid-navigation can wait forever."""
    try:
        page.frame_locator('iframe[name="tool"]').locator("video[data-media]").wait_for(
            state="attached", timeout=timeout * 1000
        )
    except PlaywrightError:
        frame = page.frame(name="tool")
        pytest.fail(f"no video in the tool frame; it shows {frame.url if frame else None}")
    return page.frame(name="tool")


def test_lms_frames_the_launch_and_the_video_plays(browser: Any, stack: Stack, artifacts: Path) -> None:
    # Canvas-shaped, with its auth endpoint on the LMS page's origin (as sso.canvaslms.com serves both)
    platform = stack.simulator.platform("canvas", host="localhost")
    lms_origin = f"http://localhost:{stack.simulator.port}"
    video_id = _connect(stack, platform, lms_origin)
    platform.launch_extra = {
        CLAIM + "custom": {"studyshelf_target": f"file:{video_id}"},
        CLAIM + "target_link_uri": f"{stack.url}/lti/launch",
    }
    stack.simulator.extra_pages["course"] = _lms_page(stack, platform)
    context = browser.new_context()
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    page.goto(f"{lms_origin}/lms/course")
    try:
        frame = _tool_frame(page)
    except pytest.fail.Exception:
        # Now and then Chromium's tool frame keeps reporting the platform's auth URL although the launch and the
        # viewer were served (the server's access log shows both): open the course page once more.
        console.clear()
        page.goto(f"{lms_origin}/lms/course")
        frame = _tool_frame(page)
    assert "/lti/view/lti-" in frame.url
    frame.evaluate("() => { const v = document.querySelector('video'); v.muted = true; return v.play(); }")
    frame.wait_for_function("() => document.querySelector('video').currentTime > 0.5", timeout=20000)
    page.screenshot(path=str(artifacts / "lti-launch-video.png"))
    assert not [line for line in console if "Refused to frame" in line], console
    # third-party storage is blocked in this frame, so the launch went through Platform Storage
    assert page.evaluate("window.storageMessages") == [
        "lti.capabilities",
        "lti.put_data",
        "lti.capabilities",
        "lti.get_data",
    ]
    context.close()


def test_blocked_frame_storage_offers_a_new_window_that_plays(browser: Any, stack: Stack) -> None:
    """Moodle sends no lti_storage_target; with third-party storage blocked, the last resort is a new window."""
    platform = stack.simulator.platform("moodle", host="127.0.0.1")
    lms_origin = f"http://localhost:{stack.simulator.port}"
    video_id = _connect(stack, platform, lms_origin)
    platform.launch_extra = {
        CLAIM + "custom": {"studyshelf_target": f"file:{video_id}"},
        CLAIM + "target_link_uri": f"{stack.url}/lti/launch",
    }
    params = platform.login_params(f"{stack.url}/lti/launch")
    inputs = "".join(f'<input type="hidden" name="{k}" value="{html.escape(v)}">' for k, v in params.items())
    stack.simulator.extra_pages["moodle-course"] = (
        '<!doctype html><title>Course</title><iframe name="tool" title="StudyShelf" width="960" height="600"></iframe>'
        f'<form id="launch" method="post" action="{stack.url}/lti/login" target="tool">{inputs}</form>'
        '<script>document.getElementById("launch").submit()</script>'
    )
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{lms_origin}/lms/moodle-course")
    link = page.frame_locator('iframe[name="tool"]').locator("[data-lti-blocked]:not([hidden]) a")
    try:
        link.wait_for(state="visible", timeout=20000)
    except PlaywrightError:
        pytest.fail("the login page did not offer a new window")
    with context.expect_page() as opened:
        link.click()
    window = opened.value
    window.wait_for_selector("video[data-media]", timeout=20000)
    window.evaluate("() => { const v = document.querySelector('video'); v.muted = true; return v.play(); }")
    window.wait_for_function("() => document.querySelector('video').currentTime > 0.5", timeout=20000)
    context.close()


def test_a_launch_finished_in_another_browser_is_refused_as_unverified(browser: Any, stack: Stack) -> None:
    """The login ran in one browser, the platform's launch arrives in another: 403, not a storage complaint."""
    platform = stack.simulator.platform("moodle", host="127.0.0.1")
    video_id = _connect(stack, platform, f"http://localhost:{stack.simulator.port}")
    platform.launch_extra = {CLAIM + "custom": {"studyshelf_target": f"file:{video_id}"}}
    login = httpx.post(f"{stack.url}/lti/login", data=platform.login_params(f"{stack.url}/lti/launch"), timeout=10)
    found = re.search(r'data-auth-url="([^"]+)"', login.text)
    assert found is not None, login.text
    context = browser.new_context()  # the other browser: no cookie, nothing in its storage
    page = context.new_page()
    statuses: list[int] = []
    page.on("response", lambda r: statuses.append(r.status) if r.url.endswith("/lti/launch") else None)
    page.goto(html.unescape(found.group(1)))  # the platform authorises and posts the launch here
    page.wait_for_selector("text=This launch could not be verified", timeout=20000)
    assert "Open the activity again from the course" in page.content()
    assert "blocked the storage" not in page.content()
    assert statuses == [200, 403]  # the page looked in this browser's storage, then StudyShelf refused
    context.close()
