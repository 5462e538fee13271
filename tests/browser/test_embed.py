"""Share links in real headless Chromium: an LMS-like parent page on another local port frames `/v/{id}`.

The allowed parent plays the video (and seeks through 206 responses) and renders the PDF; a disallowed
parent is stopped both by the browser (the viewer's `frame-ancestors`) and by the server (its Referer);
top-level visits to embed links, expired, revoked and used-up links, tampered or expired media URLs, and
a link that spread to too many networks are all refused. The viewer's beacons report a load and, when every
media answer fails, one failure after its retries, or a timeout when nothing answers, each counted in the warehouse.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import httpx
import pytest
from sqlalchemy import select, update

from studyshelf.core.clock import utcnow
from studyshelf.core.db import unit_of_work
from studyshelf.delivery.models import Link, Refusal
from studyshelf.services import Services, build_services
from studyshelf.settings import Settings
from studyshelf.warehouse.interface import Summary, SummaryQuery
from tests.browser.conftest import DESKTOP, Server

pytestmark = pytest.mark.browser

VIDEO = "Mitosis — lecture.mp4"
PDF = "Cell structure.pdf"
# What a learner's browser says; a scripted user agent would get the link-preview card instead.
THROTTLE = 40_000  # bytes a second while the video test seeks
BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

PARENT_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Biology 101 · Week 1 — {who}</title>
<style>
  body {{ margin: 0; font: 15px/1.5 system-ui, sans-serif; background: #eef1f5; color: #1f2933; }}
  header {{ background: {colour}; color: #fff; padding: 12px 24px; font-weight: 600; }}
  main {{ width: 880px; padding: 16px 24px; }}
</style>
</head>
<body>
<header>{who} — Biology 101</header>
<main>
<p>Week 1 material, embedded from StudyShelf:</p>
{snippet}
</main>
</body>
</html>
"""
SNIPPET_REFERRER = 'referrerpolicy="strict-origin-when-cross-origin"'

PLAY_MUTED = """
async () => {
  const video = document.querySelector("video");
  video.muted = true;
  await video.play();
  return video.currentTime;
}
"""

CANVAS_INK = """
(canvas) => {
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let ink = 0;
  for (let i = 0; i < data.length; i += 4 * 17) {
    if (data[i + 3] > 0 && (data[i] < 200 || data[i + 1] < 200 || data[i + 2] < 200)) ink += 1;
  }
  return ink;
}
"""


class _ParentServer(ThreadingHTTPServer):
    daemon_threads = True
    who = ""
    colour = ""
    snippets: dict[str, str]  # link id → the embed_html the API gave for it (shared by both parents)


class _ParentHandler(BaseHTTPRequestHandler):
    """`/frame/{link_id}`: a course page with the link's own embed snippet pasted in, as a teacher would;
    `/frame-no-referrer/{link_id}`: the same, with the iframe told to send no Referer."""

    def do_GET(self) -> None:
        parent = cast(_ParentServer, self.server)
        path = urlsplit(self.path).path
        if path == "/favicon.ico":
            self.send_response(204)
            self.end_headers()
            return
        kind, _, link_id = path.strip("/").partition("/")
        snippet = parent.snippets.get(link_id)
        if kind not in {"frame", "frame-no-referrer"} or snippet is None:
            self.send_error(404)
            return
        if kind == "frame-no-referrer":
            assert SNIPPET_REFERRER in snippet, snippet
            snippet = snippet.replace(SNIPPET_REFERRER, 'referrerpolicy="no-referrer"')
        body = PARENT_PAGE.format(who=parent.who, colour=parent.colour, snippet=snippet).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@dataclass(frozen=True)
class Parents:
    allowed: str
    pirate: str
    snippets: dict[str, str]


@pytest.fixture(scope="module")
def parents() -> Iterator[Parents]:
    """Two course sites on other local ports (other origins): the allowed LMS and a pirate copy."""
    snippets: dict[str, str] = {}
    started: list[_ParentServer] = []
    for who, colour in (("Northwind LMS", "#0b6e4f"), ("Pirate Site", "#9b2226")):
        httpd = _ParentServer(("127.0.0.1", 0), _ParentHandler)
        httpd.who, httpd.colour, httpd.snippets = who, colour, snippets
        threading.Thread(target=httpd.serve_forever, name=f"parent-{who}", daemon=True).start()
        started.append(httpd)
    try:
        allowed, pirate = (f"http://127.0.0.1:{httpd.server_address[1]}" for httpd in started)
        yield Parents(allowed, pirate, snippets)
    finally:
        for httpd in started:
            httpd.shutdown()
            httpd.server_close()


@pytest.fixture(scope="module")
def shelf_services(server: Server) -> Iterator[Services]:
    """The server's own backends, in this process: its database, and its media URL signer."""
    with pytest.MonkeyPatch.context() as env:
        for key in [k for k in os.environ if k.startswith("STUDYSHELF_")]:
            env.delenv(key)
        for key, value in server.env.items():
            env.setenv(key, value)
        settings = Settings()
    built = build_services(settings)
    yield built
    built.engine.dispose()


@dataclass
class Shelf:
    """The admin's API client (bearer token), the demo files, the parents' origins."""

    api: httpx.Client
    app: str
    org_id: str
    files: dict[str, str]
    parents: Parents

    @property
    def allowed(self) -> str:
        return self.parents.allowed

    @property
    def pirate(self) -> str:
        return self.parents.pirate

    def link(self, name: str, **extra: Any) -> str:
        body = {
            "target_type": "file",
            "target_id": self.files[name],
            "allowed_origins": [self.allowed],
            "mode": "embed",
            "org_id": self.org_id,
            "label": f"{name} (browser test)",
            **extra,
        }
        response = self.api.post("/api/v1/links", json=body)
        assert response.status_code == 201, response.text
        link = response.json()
        assert link["allowed_origins"] == [self.allowed]
        assert link["url"] == f"{self.app}/v/{link['id']}"
        self.parents.snippets[link["id"]] = link["embed_html"]
        return str(link["id"])

    def status(self, link_id: str) -> str:
        response = self.api.get(f"/api/v1/links/{link_id}")
        assert response.status_code == 200, response.text
        return str(response.json()["status"])

    def visit(self, link_id: str, *, referer: str, ip: str | None = None) -> httpx.Response:
        """What a browser sends for an iframe on `referer`'s page (optionally from another network)."""
        headers = {
            "User-Agent": BROWSER_UA,
            "Sec-Fetch-Dest": "iframe",
            "Sec-Fetch-Mode": "navigate",
            "Sec-Fetch-Site": "same-site",
            "Referer": referer + "/",
        }
        if ip is not None:
            headers["X-Forwarded-For"] = ip
        with httpx.Client(base_url=self.app, timeout=10) as anonymous:
            return anonymous.get(f"/v/{link_id}", headers=headers)


def _files(api: httpx.Client, names: set[str]) -> tuple[str, dict[str, str]]:
    """Walk the admin's libraries for the demo files; return the organisation holding them and their ids."""
    for org in api.get("/api/v1/me").json()["organizations"]:
        found: dict[str, str] = {}
        pending = [org["root_folder_id"]]
        while pending:
            folder = pending.pop()
            response = api.get(f"/api/v1/folders/{folder}/children", params={"limit": 500})
            assert response.status_code == 200, response.text
            for item in response.json()["items"]:
                if item["kind"] == "folder":
                    pending.append(item["id"])
                elif item["name"] in names:
                    found[item["name"]] = str(item["id"])
        if set(found) == names:
            return str(org["id"]), found
    raise AssertionError(f"the demo has no organisation holding {sorted(names)}")


@pytest.fixture(scope="module")
def shelf(server: Server, parents: Parents) -> Iterator[Shelf]:
    with httpx.Client(base_url=server.url, timeout=15) as session:
        login = session.post("/api/v1/auth/login", json={"email": server.email, "password": server.password})
        assert login.status_code == 200, login.text
        created = session.post(
            "/api/v1/auth/tokens",
            json={"name": f"embed test {uuid.uuid4().hex[:6]}"},
            headers={"X-CSRF-Token": login.json()["csrf_token"]},
        )
        assert created.status_code == 201, created.text
        token = created.json()["token"]
    with httpx.Client(base_url=server.url, timeout=15, headers={"Authorization": f"Bearer {token}"}) as api:
        org_id, files = _files(api, {VIDEO, PDF})
        yield Shelf(api, server.url, org_id, files, parents)


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=DESKTOP)
    yield context.new_page()
    context.close()


def _watch(page: Any) -> tuple[list[str], list[Any]]:
    console: list[str] = []
    responses: list[Any] = []
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    page.on("pageerror", lambda exc: console.append(f"pageerror: {exc}"))
    page.on("response", lambda response: responses.append(response))  # noqa: PLW0108 - Playwright needs a Python function
    return console, responses


def _frame(page: Any) -> Any:
    handle = page.locator("main iframe").element_handle()
    frame = handle.content_frame()
    assert frame is not None
    return frame


def _open_in_parent(page: Any, parent: str, link_id: str, *, kind: str = "frame") -> Any:
    page.goto(f"{parent}/{kind}/{link_id}")
    frame = _frame(page)
    frame.wait_for_load_state()
    return frame


def _viewer_errors(console: list[str]) -> list[str]:
    return [line for line in console if line.startswith(("error:", "pageerror:"))]


def _media(responses: list[Any]) -> list[Any]:
    """The media element's own answers (the demo lecture's caption tracks come through /m/ too, whole)."""
    return [r for r in responses if urlsplit(r.url).path.startswith("/m/") and "/text~vtt/" not in r.url]


def _range_start(response: Any) -> int:
    """The first byte of a 206 answer (from `Content-Range: bytes a-b/size`)."""
    return int(response.headers["content-range"].removeprefix("bytes ").split("-")[0])


def test_the_allowed_parent_plays_and_seeks_the_video(page: Any, shelf: Shelf, artifacts: Path) -> None:
    console, responses = _watch(page)
    # A slow line (the 10 s demo video is 375 kB, ~37 kB/s): the seek target is not downloaded yet when we
    # seek, so the media stack has to ask for it with a Range request (unthrottled, it has it all at once).
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 20, "downloadThroughput": THROTTLE, "uploadThroughput": THROTTLE},
    )
    link_id = shelf.link(VIDEO)
    frame = _open_in_parent(page, shelf.allowed, link_id)
    assert frame.url == f"{shelf.app}/v/{link_id}"
    frame.locator("[data-viewer] video").wait_for()
    frame.wait_for_function("() => document.querySelector('video').readyState >= 1", timeout=15_000)
    first = _media(responses)
    assert first, "the video element fetched nothing"
    assert all(r.status == 206 for r in first), [(r.url, r.status) for r in first]

    before_seek = len(responses)
    frame.evaluate("() => { document.querySelector('video').currentTime = 8; }")
    frame.evaluate(PLAY_MUTED)
    frame.wait_for_function("() => document.querySelector('video').currentTime > 8.5", timeout=15_000)
    # Played on from the seek: still playing, or (on a loaded machine, polled late) played to the end at 10 s.
    playing = "() => { const v = document.querySelector('video'); return !v.paused || v.ended; }"
    assert frame.evaluate(playing), "playback stopped after the seek"
    seeks = [r for r in _media(responses[before_seek:]) if r.status == 206 and _range_start(r) > 0]
    assert seeks, [(r.status, r.headers.get("content-range")) for r in _media(responses)]
    frame.evaluate("() => document.querySelector('video').pause()")

    page.screenshot(path=str(artifacts / "embed-allowed.png"))
    assert not _viewer_errors(console), console


def test_the_allowed_parent_renders_the_pdf(page: Any, shelf: Shelf, artifacts: Path) -> None:
    console, _responses = _watch(page)
    frame = _open_in_parent(page, shelf.allowed, shelf.link(PDF))
    frame.wait_for_function(
        "() => document.querySelector('[data-pdf-src]')?.dataset.rendered !== undefined"
        " || document.querySelector('[data-pdf-src]')?.dataset.error !== undefined",
        timeout=20_000,
    )
    assert frame.locator("[data-pdf-src]").get_attribute("data-error") is None
    ink = frame.locator("[data-pdf-pages] canvas").first.evaluate(CANVAS_INK)
    assert ink > 50, "the first PDF page rendered blank"
    page.screenshot(path=str(artifacts / "viewer-pdf.png"))
    assert not _viewer_errors(console), console


def _refusals(services: Services, link_id: str) -> list[tuple[str, str]]:
    with unit_of_work(services.read_sessions) as db:
        rows = db.execute(select(Refusal.reason, Refusal.origin).where(Refusal.link_id == link_id).order_by(Refusal.at))
        return [(reason, origin) for reason, origin in rows]


def test_a_disallowed_parent_is_blocked_by_the_browser_and_the_server(
    page: Any, shelf: Shelf, shelf_services: Services, artifacts: Path
) -> None:
    console, responses = _watch(page)
    link_id = shelf.link(VIDEO)

    # Without a Referer the server cannot tell (and lets it through): the browser's frame-ancestors must stop it.
    frame = _open_in_parent(page, shelf.pirate, link_id, kind="frame-no-referrer")
    viewer = [r for r in responses if urlsplit(r.url).path == f"/v/{link_id}"]
    assert [r.status for r in viewer] == [200], "the server should not refuse a frame it cannot place"
    assert frame.locator("[data-viewer]").count() == 0, "the browser showed the viewer on a disallowed site"
    assert frame.url != f"{shelf.app}/v/{link_id}" or frame.locator("video").count() == 0
    violations = [line for line in console if "frame-ancestors" in line]
    assert violations, console

    # With the Referer a browser sends by default, the server refuses too, and records where it came from.
    responses.clear()
    frame = _open_in_parent(page, shelf.pirate, link_id)
    viewer = [r for r in responses if urlsplit(r.url).path == f"/v/{link_id}"]
    assert [r.status for r in viewer] == [403]
    assert frame.locator("[data-viewer]").count() == 0
    page.screenshot(path=str(artifacts / "embed-blocked.png"))

    direct = shelf.visit(link_id, referer=shelf.pirate)
    assert direct.status_code == 403
    assert "cannot be shown on this website" in direct.text
    assert shelf.visit(link_id, referer=shelf.allowed).status_code == 200
    assert _refusals(shelf_services, link_id) == [("origin", shelf.pirate + "/"), ("origin", shelf.pirate + "/")]


def test_a_top_level_visit_to_an_embed_link_is_refused(page: Any, shelf: Shelf) -> None:
    link_id = shelf.link(PDF)
    response = page.goto(f"{shelf.app}/v/{link_id}")
    assert response is not None
    assert response.status == 403
    assert "available inside your course" in page.locator("h1").inner_text()
    assert page.locator("[data-viewer]").count() == 0


def _expire(services: Services, link_id: str) -> None:
    with unit_of_work(services.write_sessions) as db:
        db.execute(update(Link).where(Link.id == link_id).values(expires_at=utcnow() - timedelta(minutes=1)))


def _blocked_headline(page: Any, parent: str, link_id: str) -> str:
    frame = _open_in_parent(page, parent, link_id)
    assert urlsplit(frame.url).path == f"/v/{link_id}", f"the browser did not show the blocked page: {frame.url}"
    assert frame.locator("[data-viewer]").count() == 0
    return str(frame.locator(".viewer-blocked h1").inner_text(timeout=5_000))


def test_expired_revoked_and_used_up_links_show_the_blocked_page(
    page: Any, shelf: Shelf, shelf_services: Services, artifacts: Path
) -> None:
    expired = shelf.link(PDF)
    _expire(shelf_services, expired)
    assert shelf.status(expired) == "expired"
    assert _blocked_headline(page, shelf.allowed, expired) == "This link has expired"

    revoked = shelf.link(PDF)
    assert shelf.api.post(f"/api/v1/links/{revoked}/revoke").status_code == 200
    assert _blocked_headline(page, shelf.allowed, revoked) == "This link was withdrawn"

    once = shelf.link(PDF, max_views=1)
    frame = _open_in_parent(page, shelf.allowed, once)
    frame.locator("[data-viewer]").wait_for()
    assert _blocked_headline(page, shelf.allowed, once) == "This link has been used up"
    page.screenshot(path=str(artifacts / "link-blocked.png"))
    assert [reason for reason, _origin in _refusals(shelf_services, once)] == ["over-limit"]


def _tamper(path: str) -> str:
    """Flip one hex digit of the sha256 field: still a well-formed URL, but not the one that was signed."""
    parts = path.split("/")
    sha = parts[6]
    parts[6] = ("1" if sha[0] == "0" else "0") + sha[1:]
    return "/".join(parts)


def test_tampered_and_expired_media_urls_are_refused(page: Any, shelf: Shelf, shelf_services: Services) -> None:
    frame = _open_in_parent(page, shelf.allowed, shelf.link(VIDEO))
    src = frame.locator("[data-viewer] video").get_attribute("src")
    assert src is not None
    assert src.startswith("/m/")
    good = page.request.get(shelf.app + src, headers={"Range": "bytes=0-99"})
    assert good.status == 206

    tampered = page.request.get(shelf.app + _tamper(src), headers={"Range": "bytes=0-99"})
    assert tampered.status == 403
    assert tampered.json()["reason"] == "bad-signature"

    claims = shelf_services.signer.verify(unquote(src), time.time())
    stale = shelf_services.signer.sign(claims._replace(expires=int(time.time()) - 3600))
    expired = page.request.get(shelf.app + stale)
    assert expired.status == 403
    assert expired.json()["reason"] == "expired"


def test_a_link_used_from_too_many_networks_is_suspended(page: Any, shelf: Shelf) -> None:
    policy_url = f"/api/v1/orgs/{shelf.org_id}/link-policy"
    before = shelf.api.get(policy_url).json()["max_networks_per_hour"]
    changed = shelf.api.patch(policy_url, json={"max_networks_per_hour": 1})
    assert changed.status_code == 200, changed.text
    try:
        link_id = shelf.link(VIDEO)
        # Two course sites on two networks behind our trusted proxy: one network is within the limit …
        assert shelf.visit(link_id, referer=shelf.allowed, ip="203.0.113.7").status_code == 200
        assert shelf.status(link_id) == "active"
        # … the second is one too many: the radar's batch (within a second) suspends the link, and the next
        # visit is refused.
        assert shelf.visit(link_id, referer=shelf.allowed, ip="198.51.100.23").status_code == 200
        deadline = time.monotonic() + 20
        while shelf.status(link_id) != "suspended" and time.monotonic() < deadline:
            time.sleep(0.1)
        spread = shelf.visit(link_id, referer=shelf.allowed, ip="198.51.100.23")
        assert spread.status_code == 403
        assert "This link is paused" in spread.text
        link = shelf.api.get(f"/api/v1/links/{link_id}").json()
        assert link["status"] == "suspended"
        assert "2 networks" in link["suspended_reason"]

        assert _blocked_headline(page, shelf.allowed, link_id) == "This link is paused"
    finally:
        shelf.api.patch(policy_url, json={"max_networks_per_hour": before})


def _link_usage(services: Services, link_id: str) -> Summary:
    """What the warehouse holds for one link today, by error class (once the server's spool has drained)."""
    today = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    query = SummaryQuery(start=today, end=today + timedelta(days=1), filters={"link": link_id}, breakdown="error_class")
    return services.warehouse.summary(query)


def _stored(services: Services, link_id: str, done: Callable[[Summary], bool]) -> Summary:
    deadline = time.monotonic() + 20
    while not done(usage := _link_usage(services, link_id)) and time.monotonic() < deadline:
        time.sleep(0.25)
    return usage


def _beacons(requests: list[Any]) -> list[Any]:
    """The beacons the page sent (their Blob bodies are not shown to Playwright: what they said is read back
    from the warehouse), each answered 204."""
    sent = [r for r in requests if urlsplit(r.url).path == "/api/v1/events" and r.method == "POST"]
    for beacon in sent:
        response = beacon.response()
        assert response is not None, beacon
        assert response.status == 204, beacon
    return sent


def _view_until_beacon(page: Any, shelf: Shelf, requests: list[Any], state: str) -> str:
    """Open a new link to the video in the allowed parent, wait for the video's `state`, then for a beacon."""
    link_id = shelf.link(VIDEO)
    frame = _open_in_parent(page, shelf.allowed, link_id)
    frame.wait_for_function(state, timeout=15_000)
    deadline = time.monotonic() + 20
    while not _beacons(requests) and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    return link_id


def test_the_viewer_reports_its_load_and_its_failure_through_beacons(
    page: Any, shelf: Shelf, shelf_services: Services
) -> None:
    requests: list[Any] = []
    page.on("request", lambda request: requests.append(request))  # noqa: PLW0108 - Playwright needs a Python function

    played = _view_until_beacon(page, shelf, requests, "() => document.querySelector('video').readyState >= 2")
    assert len(_beacons(requests)) == 1
    usage = _stored(shelf_services, played, lambda u: u.totals.views >= 1 and u.totals.load_ok >= 1)
    assert (usage.totals.views, usage.totals.load_ok, usage.totals.fails) == (1, 1, 0)
    assert usage.totals.load_p50_ms is not None
    assert 0 < usage.totals.load_p50_ms < 15_000

    # The origin in trouble: every media answer is a 503. The viewer retries with fresh URLs (1 s, 2 s, 4 s
    # apart), then gives up; the page reports one failed load, with the status class its HEAD probe found.
    requests.clear()
    page.route("**/m/**", lambda route: route.fulfill(status=503, body="unavailable"))
    failing = _view_until_beacon(page, shelf, requests, "() => document.querySelector('video').error !== null")
    page.wait_for_timeout(1000)  # nothing more comes: one outcome a page view
    assert len(_beacons(requests)) == 1, " ".join(f"{r.method}:{urlsplit(r.url).path[:30]}" for r in requests)
    renewals = [r for r in requests if r.method == "POST" and urlsplit(r.url).path == f"/v/{failing}/media"]
    assert len(renewals) == 3, [r.url for r in renewals]  # retried, and not in a loop
    usage = _stored(shelf_services, failing, lambda u: u.totals.fails >= 1)
    assert (usage.totals.views, usage.totals.load_ok, usage.totals.fails) == (1, 0, 1)
    assert [(key, m.fails) for key, m in usage.breakdown if m.fails] == [("http-5xx", 1)]


# Test-only: shorten the viewer's load timeout (30 s) before its deferred scripts read it.
SHORT_LOAD_TIMEOUT = """
new MutationObserver((_, observer) => {
  const stage = document.querySelector("[data-viewer]");
  if (stage) { stage.dataset.loadTimeoutMs = "1500"; observer.disconnect(); }
}).observe(document, { childList: true, subtree: true });
"""


def test_a_load_that_never_answers_is_reported_as_a_timeout(page: Any, shelf: Shelf, shelf_services: Services) -> None:
    requests: list[Any] = []
    page.on("request", lambda request: requests.append(request))  # noqa: PLW0108 - Playwright needs a Python function
    page.add_init_script(SHORT_LOAD_TIMEOUT)
    hanging: list[Any] = []
    page.route("**/m/**", lambda route: hanging.append(route))  # noqa: PLW0108 - never answered: the media stack waits
    stalled = _view_until_beacon(page, shelf, requests, "() => document.querySelector('video') !== null")
    assert hanging, "the video asked for nothing"
    assert len(_beacons(requests)) == 1
    usage = _stored(shelf_services, stalled, lambda u: u.totals.fails >= 1)
    assert (usage.totals.views, usage.totals.load_ok, usage.totals.fails) == (1, 0, 1)
    assert [(key, m.fails) for key, m in usage.breakdown if m.fails] == [("timeout", 1)]
    page.unroute("**/m/**")
