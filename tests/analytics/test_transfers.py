"""Inline playback bytes through /m/: tallied per viewer and file, reported as one `transfer` event, never a view."""

from __future__ import annotations

from fastapi.testclient import TestClient

from studyshelf.app import create_app
from studyshelf.core.clock import utcnow
from studyshelf.delivery.transfers import Transfer, TransferKey, TransferTally
from studyshelf.warehouse import SummaryQuery
from tests.analytics.conftest import CHROME, drain
from tests.conftest import Member, World
from tests.html import parse_html
from tests.library.support import uploaded
from tests.links.support import EMBEDDED, create_link, link_path

SIZE = 40_000
KEY = TransferKey("link1", "v1", "203.0.113.9", CHROME)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _tally(clock: Clock, reported: list[Transfer], **kw: float) -> TransferTally:
    return TransferTally(reported.extend, clock=clock, ticker=False, **kw)  # type: ignore[arg-type]  # deliberately wrong or loosely typed keywords, to test the validation


def test_bytes_add_up_per_viewer_and_file_until_idle() -> None:
    clock, reported = Clock(), list[Transfer]()
    tally = _tally(clock, reported, idle=30, max_open=300)
    for _ in range(12):
        assert tally.add(KEY, 1000) == []
        clock.now += 10
    tally.add(TransferKey("link1", "v2", "203.0.113.9", CHROME), 5)
    tally.add(KEY, 0)  # a 304 or an empty body counts nothing
    assert len(tally) == 2
    assert tally.flush_due() == 0  # both were active in the last 30 s
    clock.now += 30
    assert tally.flush_due() == 2
    (first, second) = sorted(reported, key=lambda t: t.key.version_id)
    assert (first.bytes, first.responses, second.bytes) == (12_000, 12, 5)
    assert len(tally) == 0


def test_a_long_playback_is_reported_in_windows() -> None:
    clock, reported = Clock(), list[Transfer]()
    tally = _tally(clock, reported, idle=30, max_open=300)
    for _ in range(40):  # 400 s of steady playback, never idle
        tally.add(KEY, 100)
        clock.now += 10
        tally.flush_due()
    assert [t.bytes for t in reported] == [3000]  # the first 300 s; the rest is still open
    assert tally.flush_all() == 1
    assert sum(t.bytes for t in reported) == 4000
    assert reported[0].session != reported[1].session


def test_a_full_tally_hands_everything_back() -> None:
    clock, reported = Clock(), list[Transfer]()
    tally = _tally(clock, reported, max_entries=2)
    assert tally.add(TransferKey("a", "v", "", ""), 1) == []
    assert tally.add(TransferKey("b", "v", "", ""), 2) == []
    assert tally.add(TransferKey("a", "v", "", ""), 3) == []  # an entry it holds: no new one
    full = tally.add(TransferKey("c", "v", "", ""), 4)
    assert sorted((t.key.link_id, t.bytes) for t in full) == [("a", 4), ("b", 2)]
    assert len(tally) == 1


def test_a_ranged_playback_counts_its_bytes_once_and_no_views(world: World, owner: Member) -> None:
    head = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
    body = head + bytes(range(256)) * (SIZE // 256) + b"x" * (SIZE % 256 - len(head))
    file = uploaded(owner, owner.root_folder_id, "lecture.mp4", body)
    link = link_path(create_link(owner, file["id"]))
    ranges = ["bytes=0-1", *(f"bytes={start}-{start + 3999}" for start in range(0, SIZE, 4000)), "bytes=39000-"]
    got = 0
    with TestClient(create_app(services=world.services), base_url="http://testserver") as browser:
        page = browser.get(link, headers={**EMBEDDED, "user-agent": CHROME})
        media = parse_html(page).attr("video[data-media]", "src")
        assert media.startswith("/m/"), page.text
        for value in ranges:
            response = browser.get(
                media, headers={"range": value, "user-agent": CHROME, "referer": "http://testserver/"}
            )
            assert response.status_code == 206, response.text
            got += len(response.content)
        assert browser.head(media, headers={"user-agent": CHROME}).status_code == 200  # HEAD: no bytes
        whole = browser.get(media, headers={"user-agent": CHROME})
        got += len(whole.content)
    # Leaving the block shut the app down, which reported the tally.
    assert got == 2 + SIZE + 1000 + SIZE
    drain(world.services)
    now = utcnow()
    window = {"start": now.replace(year=now.year - 1), "end": now.replace(year=now.year + 1)}
    totals = world.services.warehouse.summary(SummaryQuery(**window)).totals
    assert (totals.views, totals.load_ok, totals.fails, totals.downloads, totals.bytes) == (1, 0, 0, 0, got)
    transfers = world.services.warehouse.summary(SummaryQuery(**window, filters={"type": "transfer"})).totals
    assert (transfers.views, transfers.bytes) == (0, got)
    assert world.services.warehouse.count() == 2  # the view and one transfer
