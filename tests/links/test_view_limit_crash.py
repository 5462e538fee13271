"""kill -9 while learners open a link with a view limit: no view is used up that no figure shows.

`studyshelf serve --workers 2` (SQLite, the spool) is killed mid-stream, started again and used until the
limit is spent. Afterwards the link's count, the warehouse's views and the views the learners were shown
agree: shown ≤ counted == in the warehouse == the limit, and no view is stored twice.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from studyshelf.analytics.ingest.drain import drain_all
from studyshelf.core.clock import utcnow
from studyshelf.core.db import unit_of_work
from studyshelf.delivery.models import CountedView, Link
from studyshelf.delivery.view_counts import PENDING_GRACE, ViewCounts
from studyshelf.events.spool import SpoolEventStream
from studyshelf.services import Services, build_services
from studyshelf.settings import Settings
from studyshelf.warehouse import SummaryQuery
from tests.analytics.test_crash import SECRET, Learners, _env, _healthy, _kill, _start
from tests.conftest import World
from tests.links.support import create_link
from tests.sharing.support import grant, partnership
from tests.storage_crash.test_kill import free_port, wait_for

pytestmark = pytest.mark.slow
LIMIT = 300


class LaterLearners(Learners):
    """Learners of a second run: other user agents than the first run's, so each view is its own viewer."""

    def __init__(self, port: int, path: str, count: int = 6) -> None:
        super().__init__(port, path, count)
        self._threads = [threading.Thread(target=self._run, args=(500 + i,)) for i in range(count)]


def _counted(services: Services, link_id: str) -> int:
    with unit_of_work(services.read_sessions) as db:
        return int(db.scalar(select(Link.view_count).where(Link.id == link_id)) or 0)


def _serve(data_dir: Path, log: Path) -> tuple[int, subprocess.Popen[bytes]]:
    port = free_port()
    env = _env(data_dir=str(data_dir), scheduler_interval_seconds="0")
    server = _start(["serve", "--server", "uvicorn", "--workers", "2", "--port", str(port)], env, log)
    wait_for(lambda: _healthy(port), timeout=60, what="the server to start")
    return port, server


def _limited_link(data_dir: Path, sqlite_template: Path) -> tuple[Settings, str]:
    """A data dir with a partner's link to a granted file, with a view limit of LIMIT."""
    data_dir.mkdir()
    shutil.copyfile(sqlite_template, data_dir / "studyshelf.sqlite3")
    settings = Settings(environment="test", data_dir=data_dir, secret_key=SECRET, scheduler_interval_seconds=0)
    services = build_services(settings)
    p = partnership(World(services))
    assert grant(p.publisher, p.course["id"], p.partner.id).status_code == 201
    created = create_link(p.teacher, p.notes["id"], org_id=str(p.partner.id), max_views=LIMIT)
    assert created.status_code == 201, created.text
    services.engine.dispose()
    return settings, str(created.json()["id"])


def _recover(settings: Settings, link_id: str) -> tuple[int, int, int]:
    """After the servers: sweep and drain both spool slots; (the link's count, views, viewers in the figures)."""
    restarted = build_services(settings)
    ViewCounts(restarted).sweep(now=utcnow() + 2 * PENDING_GRACE)  # what the drain's sweep does a minute on
    other_slot = SpoolEventStream(settings.data_dir / "events")  # the second worker's spool
    counts = ViewCounts(restarted)
    for stream in (restarted.events, other_slot):
        drain_all(stream, restarted.warehouse, consumer="after-restart", after_store=counts.after_store)
    now = utcnow()
    totals = restarted.warehouse.summary(
        SummaryQuery(start=now - timedelta(days=1), end=now + timedelta(days=1), filters={"link": link_id})
    ).totals
    counted = _counted(restarted, link_id)
    with unit_of_work(restarted.read_sessions) as db:
        assert db.scalar(select(func.count()).where(CountedView.pending.is_not(None))) == 0
    other_slot.close()
    restarted.events.close()
    restarted.engine.dispose()
    return counted, totals.views, totals.viewers


def test_a_server_killed_during_a_stream_of_limited_views_never_spends_a_view_no_figure_shows(
    tmp_path: Path, sqlite_template: Path
) -> None:
    settings, link_id = _limited_link(tmp_path / "data", sqlite_template)
    services = build_services(settings)
    path = f"/v/{link_id}"
    shown = 0
    port, server = _serve(settings.data_dir, tmp_path / "server.log")
    learners = Learners(port, path)
    try:
        learners.start()
        wait_for(lambda: len(learners.answered) >= 60, timeout=60, what="views to be answered")
    finally:
        _kill(server)
        learners.stop()
    shown += len(learners.answered)
    assert _counted(services, link_id) < LIMIT, "the limit was spent before the kill; raise LIMIT"

    port, server = _serve(settings.data_dir, tmp_path / "server-again.log")
    learners = LaterLearners(port, path)
    try:
        learners.start()
        wait_for(lambda: _counted(services, link_id) >= LIMIT, timeout=120, what="the limit to be spent")
    finally:
        _kill(server)
        learners.stop()
    shown += len(learners.answered)
    services.engine.dispose()

    counted, views, viewers = _recover(settings, link_id)
    assert counted == LIMIT
    assert views == counted  # every view the limit counted is in the figures …
    assert shown <= counted  # … including those whose answer the kill cut off
    assert viewers == views  # and none twice
