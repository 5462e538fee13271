"""The processed demo video in WebKit (WebKitGTK's MiniBrowser, Safari's engine).

WebKitGTK has MediaSource, so the viewer's player uses hls.js there (as on desktop Safari), and it plays.
Native HLS (a bare <video> given the master playlist, as iOS Safari plays it) is not offered by Debian's
WebKitGTK: canPlayType answers "". The player's native path is exercised in Chromium instead, whose media stack
plays HLS itself (test_hls_playback.py, with MediaSource removed), and its MP4 fallback there too.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import ARTIFACTS
from tests.browser.test_hls_playback import hls_server, video_link
from tests.browser.test_lti_webkit import _wait, display, webkit

__all__ = ["display", "hls_server", "video_link", "webkit"]  # fixtures this module uses
pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore:setting remote_server_addr:DeprecationWarning"),
]
PLAYER = "return document.querySelector('video[data-media]')?.dataset.player || ''"
# Playback has started and the clock moved: on this shared, loaded machine WebKitGTK's media pipeline may then
# stall for a while (seen once: 0.1 s played), which is the machine's, not the player's.
PLAYS = "const v = document.querySelector('video[data-media]'); return v !== null && !v.error && v.currentTime > 0.05;"
NATIVE = """
const source = document.querySelector('video[data-media]').dataset.hlsSrc;
const v = document.createElement('video');
v.id = 'native'; v.muted = true; v.playsInline = true; v.src = source;
document.body.append(v);
v.play().catch(() => {});
return v.canPlayType('application/vnd.apple.mpegurl');
"""
NATIVE_STATE = """
const v = document.getElementById('native');
return v.error ? `error ${v.error.code}` : v.currentTime > 0.5 ? 'playing' : 'loading';
"""


def test_webkit_plays_the_hls_renditions_through_the_player_and_natively(webkit: Any, video_link: str) -> None:
    webkit.get(video_link)
    _wait(webkit, lambda: webkit.execute_script(PLAYER) not in ("", "pending"), "the player to choose")
    player = webkit.execute_script(PLAYER)
    assert player in ("hls.js", "native-hls"), player
    webkit.execute_script("const v = document.querySelector('video[data-media]'); v.muted = true; v.play();")
    state = (
        "const v = document.querySelector('video[data-media]'); return [v.dataset.player, v.readyState, v.currentTime,"
        " v.paused, v.error && v.error.code, document.querySelector('[data-viewer]').dataset.hlsError || '']"
    )
    seen: list[Any] = []

    def plays() -> bool:
        seen[:] = webkit.execute_script(state)
        return bool(webkit.execute_script(PLAYS))

    try:
        _wait(webkit, plays, "the video to play", timeout=60)
    except pytest.fail.Exception:
        pytest.fail(f"the video did not play in WebKit; player, readyState, time, paused, error, hls error: {seen}")
    ARTIFACTS.mkdir(exist_ok=True)
    webkit.save_screenshot(str(ARTIFACTS / "hls-webkit.png"))
    webkit.execute_script("document.querySelector('video[data-media]').pause();")

    # WebKitGTK (2.4x, Debian) answers "" for HLS, unlike Safari: no native HLS here, so the player's choice of
    # hls.js is the only HLS path WebKitGTK has. If a later WebKitGTK plays it natively, check that it does.
    native = webkit.execute_script(NATIVE)
    if native:
        _wait(webkit, lambda: webkit.execute_script(NATIVE_STATE) != "loading", "native HLS playback", timeout=40)
        assert webkit.execute_script(NATIVE_STATE) == "playing"
    else:
        assert player == "hls.js"
