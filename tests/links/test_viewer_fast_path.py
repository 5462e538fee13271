"""The class rush's visit: how many statements a view costs (so it cannot creep up), and the plain visit
answered before the router with the same headers, refusals and error answers as the route.

A plain visit reads the access epoch first (here through the pool: a test client runs no lifespan; a server
reads it on its event loop's own connection, tests/delivery/test_epoch_reads.py); a usable file link's read is
then remembered (delivery/admission.py `visits`), so the visits after the first read only the epoch (shared by
the visits waiting beside them)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from studyshelf.core.errors import Invalid
from studyshelf.delivery import admission, viewer
from studyshelf.library.access_epoch import EpochCache
from tests.conftest import Member, World
from tests.library.support import uploaded
from tests.library.test_captions_api import MP4, VTT, added
from tests.links.support import EMBEDDED, create_link, link_path, settle, visitor


@contextmanager
def statements(world: World) -> Iterator[list[str]]:
    """The SQL statements sent to the app database meanwhile, without transaction control (SQLite's read
    sessions begin explicitly); the app's batching threads are not running."""
    sent: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")):
            sent.append(statement)

    event.listen(world.services.engine, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        event.remove(world.services.engine, "before_cursor_execute", note)


EPOCH_READ = "SELECT value FROM access_epoch WHERE id = 1"


@pytest.fixture(autouse=True)
def remembered(monkeypatch: pytest.MonkeyPatch) -> EpochCache[str, admission.RememberedVisit]:
    """The remembered visits of this test alone, kept for a minute: a slow machine must not forget them."""
    visits: EpochCache[str, admission.RememberedVisit] = EpochCache(60.0, admission.VISITS_MAX)
    monkeypatch.setattr(admission, "visits", visits)
    return visits


def test_a_first_visit_to_a_document_reads_the_epoch_then_the_link(
    world: World, owner: Member, remembered: EpochCache[str, admission.RememberedVisit]
) -> None:
    file = uploaded(owner, owner.root_folder_id, "notes.pdf", b"%PDF-1.4\n" + b"%" * 100)
    path = link_path(create_link(owner, file["id"]))
    browser = visitor(owner)
    assert browser.get(path, headers=EMBEDDED).status_code == 200  # warm: the first visit of a process may set up
    remembered.clear()
    with statements(world) as sent:
        page = browser.get(path, headers=EMBEDDED)
    assert page.status_code == 200, page.text
    # The epoch, then link, file, version, processed outputs and folders in one: admission.read_visit.
    assert len(sent) == 2, sent
    assert sent[0] == EPOCH_READ


def test_the_next_visits_read_only_the_epoch(world: World, owner: Member) -> None:
    file = uploaded(owner, owner.root_folder_id, "notes.pdf", b"%PDF-1.4\n" + b"%" * 100)
    created = create_link(owner, file["id"])
    path = link_path(created)
    browser = visitor(owner)
    first = browser.get(path, headers=EMBEDDED)
    assert first.status_code == 200
    with statements(world) as sent:
        pages = [browser.get(path, headers=EMBEDDED) for _ in range(3)]
    assert [page.status_code for page in pages] == [200, 200, 200]
    assert sent == [EPOCH_READ] * 3
    assert "notes.pdf" in pages[-1].text
    settle(world)  # every visit is a view all the same: counted from its event
    assert owner.client.get(f"/api/v1/links/{created.json()['id']}").json()["view_count"] == 4


def test_a_visit_to_a_captioned_video_adds_only_its_tracks(
    world: World, owner: Member, remembered: EpochCache[str, admission.RememberedVisit]
) -> None:
    file = uploaded(owner, owner.root_folder_id, "lecture.mp4", MP4)
    added(owner, file["id"], VTT, language="en", label="English")
    path = link_path(create_link(owner, file["id"]))
    browser = visitor(owner)
    assert browser.get(path, headers=EMBEDDED).status_code == 200
    remembered.clear()
    with statements(world) as sent:
        page = browser.get(path, headers=EMBEDDED)
    assert page.status_code == 200, page.text
    assert "<track" in page.text
    assert len(sent) == 3, sent  # the epoch, the visit's one statement, then the caption tracks (several rows)
    with statements(world) as sent:
        again = browser.get(path, headers=EMBEDDED)
    assert "<track" in again.text
    assert sent == [EPOCH_READ]


def test_a_counted_view_writes_only_its_count(world: World, owner: Member) -> None:
    file = uploaded(owner, owner.root_folder_id, "notes.pdf", b"%PDF-1.4\n" + b"%" * 100)
    path = link_path(create_link(owner, file["id"], max_views=5))
    browser = visitor(owner)
    assert browser.get(path, headers=EMBEDDED).status_code == 200
    with statements(world) as sent:
        assert browser.get(path, headers=EMBEDDED).status_code == 200
    # Never remembered: the epoch and the visit's read, then the count: is this event counted already (a
    # retried request), the conditional UPDATE of the counter, and the counted view with its event line.
    assert len(sent) == 5, sent
    assert sent[0] == EPOCH_READ
    assert [s.split()[0].upper() for s in sent[2:]] == ["SELECT", "UPDATE", "INSERT"], sent


def test_the_plain_visit_and_the_routed_one_answer_alike(owner: Member) -> None:
    file = uploaded(owner, owner.root_folder_id, "notes.pdf", b"%PDF-1.4\n" + b"%" * 100)
    path = link_path(create_link(owner, file["id"]))
    browser = visitor(owner)
    plain = browser.get(path, headers=EMBEDDED)  # before the router
    routed = browser.get(f"{path}?from=course", headers=EMBEDDED)  # a query string: through the route
    assert plain.status_code == routed.status_code == 200
    assert plain.headers["x-request-id"] != routed.headers["x-request-id"]
    for name in ("content-security-policy", "cache-control", "x-content-type-options", "referrer-policy"):
        assert plain.headers.get(name) is not None, name
        assert plain.headers.get(name) == routed.headers.get(name), name
    assert set(plain.headers) == set(routed.headers)
    top = browser.get(path, headers={"sec-fetch-dest": "document", "sec-fetch-site": "none"})
    assert top.status_code == 403
    assert "available inside your course" in top.text
    assert browser.get("/v/not-a-link").status_code == 404
    assert browser.post(path).status_code == 405  # other methods go on to the router


def test_a_domain_error_in_a_plain_visit_is_the_apps_problem_answer(
    owner: Member, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = uploaded(owner, owner.root_folder_id, "notes.pdf", b"%PDF-1.4\n" + b"%" * 100)
    path = link_path(create_link(owner, file["id"]))

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise Invalid("Not today.")

    monkeypatch.setattr(viewer.admission, "admit_visit", refuse)
    answer = visitor(owner).get(path, headers=EMBEDDED)
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["type"].endswith("invalid")
    assert "x-request-id" in answer.headers
