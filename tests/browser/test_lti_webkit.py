"""The LTI launch inside an LMS iframe in WebKit, Safari's engine (WebKitGTK's MiniBrowser over WebDriver).

Safari itself does not run on Linux; WebKitGTK is the same engine with the same storage rules, and the
MiniBrowser runs here with Intelligent Tracking Prevention on and third-party cookies refused (Safari's
defaults), so the launch inside the frame must get by without cookies: with the state kept in LTI Platform Storage
(Canvas) and in the frame's partitioned sessionStorage (both, and Moodle, which offers no Platform Storage).
"""

from __future__ import annotations

import html
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import test_lti
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_lti import PLATFORM_STORAGE, Stack, _connect
from tests.conftest import require_service
from tests.lti.platform import CLAIM

pytestmark = [
    pytest.mark.browser,
    # selenium's own WebKitGTK driver still builds its connection the deprecated way (selenium 4.51)
    pytest.mark.filterwarnings("ignore:setting remote_server_addr:DeprecationWarning"),
]
WEBDRIVER = Path("/usr/bin/WebKitWebDriver")
MINIBROWSER = Path("/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser")
stack = test_lti.stack  # the same server and LMS simulator as the Chromium LTI tests
PLAYS = "const v = document.querySelector('video[data-media]'); return v !== null && v.currentTime > 0.5;"


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    """A virtual X display for the MiniBrowser window."""
    xvfb = shutil.which("Xvfb")
    require_service(xvfb is not None, "Xvfb (Debian package xvfb)")
    assert xvfb is not None
    for number in range(90, 120):
        if Path(f"/tmp/.X11-unix/X{number}").exists() or Path(f"/tmp/.X{number}-lock").exists():
            continue
        process = subprocess.Popen(  # noqa: S603 - fixed arguments
            [xvfb, f":{number}", "-screen", "0", "1280x900x24", "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not Path(f"/tmp/.X11-unix/X{number}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if process.poll() is None:
            try:
                yield f":{number}"
            finally:
                process.terminate()
                process.wait(timeout=10)
            return
    pytest.fail("no free X display for Xvfb")


@pytest.fixture
def webkit(display: str) -> Iterator[Any]:
    require_service(WEBDRIVER.exists(), "WebKitWebDriver (Debian package webkit2gtk-driver)")
    require_service(MINIBROWSER.exists(), "WebKitGTK MiniBrowser (Debian package webkit2gtk-driver)")
    from selenium import webdriver
    from selenium.webdriver.webkitgtk.service import Service

    options = webdriver.WebKitGTKOptions()
    options.binary_location = str(MINIBROWSER)
    for argument in ("--automation", "--enable-itp", "--cookies-policy=no-third-party", "--autoplay-policy=allow"):
        options.add_argument(argument)
    service = Service(executable_path=str(WEBDRIVER), env={**os.environ, "DISPLAY": display})
    driver = webdriver.WebKitGTK(options=options, service=service)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: Any, condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    from selenium.common.exceptions import WebDriverException

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except WebDriverException:  # a frame navigated while we looked (login → platform → launch)
            pass
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what}; the page is {driver.current_url}")


def _in_tool_frame(driver: Any, script: str) -> Any:
    driver.switch_to.default_content()
    driver.switch_to.frame("tool")
    try:
        return driver.execute_script(script)
    finally:
        driver.switch_to.default_content()


def _launch_page(stack: Stack, platform: Any, *, storage: bool) -> str:
    params = platform.login_params(f"{stack.url}/lti/launch", storage_target=storage)
    inputs = "".join(f'<input type="hidden" name="{k}" value="{html.escape(v)}">' for k, v in params.items())
    return (
        f"<!doctype html><title>Course</title><h1>BIO101</h1>{PLATFORM_STORAGE if storage else ''}"
        '<iframe name="tool" title="StudyShelf" width="960" height="600" allow="autoplay; fullscreen"></iframe>'
        f'<form id="launch" method="post" action="{stack.url}/lti/login" target="tool">{inputs}</form>'
        '<script>document.getElementById("launch").submit()</script>'
    )


def _place_video(stack: Stack, platform: Any, lms_origin: str) -> None:
    video_id = _connect(stack, platform, lms_origin)
    platform.launch_extra = {
        CLAIM + "custom": {"studyshelf_target": f"file:{video_id}"},
        CLAIM + "target_link_uri": f"{stack.url}/lti/launch",
    }


def test_webkit_frames_the_launch_through_platform_storage_and_plays(webkit: Any, stack: Stack) -> None:
    platform = stack.simulator.platform("canvas", host="localhost")
    lms_origin = f"http://localhost:{stack.simulator.port}"
    _place_video(stack, platform, lms_origin)
    stack.simulator.extra_pages["webkit-course"] = _launch_page(stack, platform, storage=True)

    webkit.get(f"{lms_origin}/lms/webkit-course")
    _wait(
        webkit,
        lambda: bool(_in_tool_frame(webkit, "return document.querySelector('video[data-media]') !== null")),
        "the video in the tool frame",
    )
    assert "/lti/view/lti-" in _in_tool_frame(webkit, "return location.href")
    _in_tool_frame(webkit, "const v = document.querySelector('video'); v.muted = true; v.play(); return true;")
    _wait(webkit, lambda: bool(_in_tool_frame(webkit, PLAYS)), "the video to play", timeout=40)
    ARTIFACTS.mkdir(exist_ok=True)
    webkit.save_screenshot(str(ARTIFACTS / "lti-launch-webkit.png"))
    # The login kept the state in the LMS (Platform Storage) and in the frame's own, partitioned
    # sessionStorage; WebKit keeps the latter for the frame, so the launch page found it there first.
    messages = webkit.execute_script("return window.storageMessages")
    assert messages[:2] == ["lti.capabilities", "lti.put_data"], messages


def test_webkit_without_platform_storage_plays_in_the_frame(webkit: Any, stack: Stack) -> None:
    """Moodle sends no lti_storage_target and WebKit refuses the frame's cookies: the state bound to the
    browser in the frame's partitioned sessionStorage carries the launch, and the video plays in the frame."""
    platform = stack.simulator.platform("moodle", host="127.0.0.1")
    lms_origin = f"http://localhost:{stack.simulator.port}"
    _place_video(stack, platform, lms_origin)
    stack.simulator.extra_pages["webkit-moodle-course"] = _launch_page(stack, platform, storage=False)

    webkit.get(f"{lms_origin}/lms/webkit-moodle-course")
    has_video = "return document.querySelector('video[data-media]') !== null"
    _wait(webkit, lambda: bool(_in_tool_frame(webkit, has_video)), "the video in the tool frame")
    assert "/lti/view/lti-" in _in_tool_frame(webkit, "return location.href")
    _in_tool_frame(webkit, "const v = document.querySelector('video'); v.muted = true; v.play(); return true;")
    _wait(webkit, lambda: bool(_in_tool_frame(webkit, PLAYS)), "the video to play", timeout=40)
    assert webkit.execute_script("return window.storageMessages || []") == []
