"""A media file's playback on its performance page, in its JSON and its CSVs (issue 19); other files have none.

Each test runs twice: SQLite with the DuckDB warehouse, and PostgreSQL with the PostgreSQL warehouse.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

from tests.analytics.support import event
from tests.analytics.test_insight import DAY, HTML, MARCH, _api, _common, settings
from tests.conftest import World
from tests.html import parse_html, text_of
from tests.library.support import uploaded
from tests.library.test_captions_api import MP4
from tests.sharing.support import Partnership, partnership

__all__ = ["settings"]  # the module's warehouses: DuckDB with SQLite, PostgreSQL with PostgreSQL


TABLES = {**HTML, "HX-Request": "true", "HX-Trigger": "insight-loader"}  # the loader's fragment


def _video_played(world: World, p: Partnership) -> dict[str, Any]:
    """A lecture video in the course folder: three views played it (one to the end), one did not."""
    video = uploaded(p.publisher, p.course["id"], "lecture.mp4", MP4)
    common = _common(world, p, p.partner.id, video, p.course)

    def played(session: str, watch_ms: int, reached: int, minute: int = 0, **kw: Any) -> Any:
        at = DAY + timedelta(minutes=minute)
        return event("playback", ts=at, session=session, watch_ms=watch_ms, reached_pct=reached, **kw, **common)

    world.services.warehouse.insert(
        [
            *(event("view", ts=DAY, session=s, viewer=s, **common) for s in ("a", "b", "c", "d")),
            played("a", 30_000, 20, rendition="720p", captions="en"),
            played("a", 95_000, 96, minute=2, rendition="1080p", captions="en"),
            played("b", 20_000, 40, rendition="mp4"),
            played("c", 5_000, 10, rendition="720p", captions="=cmd|' /C calc'!A0"),  # stored as sent: CSV-safe
        ]
    )
    return video


def test_the_page_shows_watch_time_completion_renditions_and_captions(world: World) -> None:
    p = partnership(world)
    video = _video_played(world, p)
    shell = p.publisher.client.get(f"/analytics/files/{video['id']}?{MARCH}", headers=HTML)
    assert shell.status_code == 200, shell.text
    assert not parse_html(shell).select("[data-playback]")  # it reads raw events: it comes with the tables
    page = p.publisher.client.get(f"/analytics/files/{video['id']}?{MARCH}", headers=TABLES)
    assert page.status_code == 200, page.text
    html = parse_html(page)
    figures = {f["data-figure"]: text_of(f.select_one("dd")) for f in html.select("[data-playback] [data-figure]")}
    assert figures == {"watch-time": "2 min", "played-views": "3", "median-reached": "40%", "completed": "33%"}
    renditions = [
        [text_of(c) for c in row.select("th, td")] for row in html.select('[data-table="renditions"] tbody tr')
    ]
    assert renditions[0] == ["1080p", "1", "1 min 5 s", "54%"]
    assert [r[0] for r in renditions] == ["1080p", "720p", "MP4 (no adaptive streaming)"]
    captions = [text_of(row.select_one("th")) for row in html.select('[data-table="captions-use"] tbody tr')]
    assert captions[:2] == ["en", "Off"]


def test_the_json_and_the_csvs_have_the_figures(world: World) -> None:
    p = partnership(world)
    video = _video_played(world, p)
    body = _api(p, "file", video["id"]).json()["playback"]
    assert (body["views"], body["watch_ms"], body["completed"]) == (3, 120_000, 1)
    assert body["median_reached_pct"] == 40
    assert body["renditions"][0] == {"key": "1080p", "views": 1, "watch_ms": 65_000}
    assert {c["key"]: c["watch_ms"] for c in body["captions"]}["en"] == 95_000
    answer = p.publisher.client.get(f"/analytics/files/{video['id']}/renditions.csv?{MARCH}")
    assert answer.status_code == 200, answer.text
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0] == ["Rendition", "Views", "Watch time", "Share"]
    assert rows[1][:3] == ["1080p", "1", "65000"]  # milliseconds, numbers as numbers
    captions = list(
        csv.reader(io.StringIO(p.publisher.client.get(f"/analytics/files/{video['id']}/captions-use.csv?{MARCH}").text))
    )
    assert all(not row[0].startswith("=") for row in captions)  # formula-safe


def test_documents_and_folders_have_no_playback(world: World) -> None:
    p = partnership(world)
    _video_played(world, p)
    assert _api(p, "file", p.notes["id"]).json()["playback"] is None
    assert _api(p, "folder", p.course["id"]).json()["playback"] is None
    page = parse_html(p.publisher.client.get(f"/analytics/files/{p.notes['id']}?{MARCH}", headers=HTML))
    assert page.select("[data-playback]") == []
    missing = p.publisher.client.get(f"/analytics/files/{p.notes['id']}/renditions.csv?{MARCH}")
    assert missing.status_code == 404
