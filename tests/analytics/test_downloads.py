"""Downloads through /m/: a finished one is a `download` with its bytes; one the client left is aborted."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from studyshelf.core.clock import utcnow
from studyshelf.warehouse import SummaryQuery
from tests.analytics.conftest import CHROME, drain
from tests.conftest import Member, World
from tests.html import parse_html
from tests.library.support import uploaded
from tests.links.support import EMBEDDED, create_link, link_path, visitor

SIZE = 3 * 1024 * 1024


def _download_url(owner: Member) -> str:
    file = uploaded(owner, owner.root_folder_id, "lecture.bin", b"\x01" * SIZE)
    page = visitor(owner).get(
        link_path(create_link(owner, file["id"], allow_download=True)), headers={**EMBEDDED, "user-agent": CHROME}
    )
    return parse_html(page).attr('a[href^="/m/"][download]', "href")


def _totals(world: World) -> Any:
    drain(world.services)
    now = utcnow()
    return world.services.warehouse.summary(
        SummaryQuery(start=now.replace(year=now.year - 1), end=now.replace(year=now.year + 1))
    ).totals


def test_a_finished_download_counts_its_bytes(world: World, owner: Member) -> None:
    url = _download_url(owner)
    got = visitor(owner).get(url, headers={"user-agent": CHROME})
    assert got.status_code == 200
    assert len(got.content) == SIZE
    totals = _totals(world)
    assert (totals.views, totals.downloads, totals.bytes, totals.fails) == (1, 1, SIZE, 0)


def test_a_download_the_client_walks_away_from_is_aborted(world: World, owner: Member) -> None:
    url = _download_url(owner)
    path, _, query = url.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": [(b"host", b"testserver"), (b"user-agent", CHROME.encode())],
        "client": ("203.0.113.9", 5000),
        "server": ("testserver", 80),
    }
    sent: list[int] = []

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            sent.append(len(message.get("body", b"")))
            if len(sent) == 2:  # the first chunk arrived, the second did not
                raise OSError("the client went away")

    async def run() -> None:
        with contextlib.suppress(OSError):
            await world.app(scope, receive, send)

    asyncio.run(run())
    totals = _totals(world)
    assert totals.downloads == 0
    assert totals.fails == 1
    assert 0 < totals.bytes < SIZE
    by = world.services.warehouse.summary(
        SummaryQuery(start=utcnow().replace(year=2000), end=utcnow().replace(year=2100), breakdown="error_class")
    ).breakdown
    assert ("aborted", 1) in [(k, m.fails) for k, m in by]
