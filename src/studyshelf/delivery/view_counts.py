"""Views counted exactly once, and off the request wherever the count decides nothing.

A view is a viewer page of a file shown through a link; its durable record is its `view` event in the event
buffer (spool or Redis), which the analytics figures count. `links.view_count` must show the same views:

- **Links without a view limit** write nothing for a view. The drain (`ViewCounts.after_store`, called
  for every batch after the warehouse took it and before the ack) adds the batch's view events to their
  links' `view_count`, each event through a `counted_views` row inserted in the same transaction
  (ON CONFLICT DO NOTHING): a redelivered batch finds its rows and adds nothing again. The counter lags the
  buffer by the drain's delay (the in-process spool drainer polls every 0.2 s; `studyshelf worker` reads
  Redis as it comes).
- **Links with a view limit** decide on the count, so the request counts (`count_limited_view`): one
  transaction runs the conditional `UPDATE … SET view_count = view_count + 1 WHERE view_count < max_views`
  (exact across processes and instances) and inserts the view's `counted_views` row holding the enriched
  event line in `pending`. After the commit the request publishes the event as every view does. A crash
  between the commit and the publish leaves the line in `pending`; `ViewCounts.sweep` publishes every line
  still pending after `PENDING_GRACE` (the drain clears `pending` when the event comes through the buffer)
  with its own event id, so the warehouse and the counters keep it once. So a counted view always reaches
  the figures, a crash before the commit counts nothing, and the limit is never passed.

Rows of `counted_views` are forgotten after `KEEP_ROWS` (a batch is redelivered long before that).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import cast

import orjson
from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from studyshelf.core.db import affected_rows, unit_of_work
from studyshelf.delivery.models import CountedView, Link
from studyshelf.events import Batch, Event
from studyshelf.services import Services

log = logging.getLogger("studyshelf.delivery.views")
PENDING_GRACE = timedelta(seconds=60)
KEEP_ROWS = timedelta(days=7)
SWEEP_EVERY_SECONDS = 30.0
_CHUNK = 500
_VIEW = b'"type":"view"'


def count_limited_view(db: Session, *, link: Link, event_id: str, line: bytes | None, at: datetime) -> bool:
    """Count one view of a link with a view limit, with its event line; False when the limit is used up.

    A view whose event is counted already (a request retried by the proxy after an instance died: the same event
    id, delivery/viewing.py) is admitted without counting it again."""
    assert link.max_views is not None
    if db.get(CountedView, event_id) is not None:
        return True
    table = cast(Table, Link.__table__)  # a Core UPDATE: a count takes no access away (library/access_epoch.py)
    query = update(table).where(table.c.id == link.id, table.c.view_count < link.max_views)
    if not affected_rows(db.execute(query.values(view_count=table.c.view_count + 1))):
        return False
    db.add(CountedView(event_id=event_id, link_id=link.id, at=at, pending=line.decode() if line else None))
    db.flush()
    return True


def link_views(lines: bytes) -> list[tuple[str, str, datetime]]:
    """(event id, link id, time) of the link views among a batch's JSON lines."""
    views = []
    for line in lines.splitlines():
        if _VIEW not in line:
            continue
        data = orjson.loads(line)
        if data.get("type") == "view" and data.get("link_id"):
            views.append((str(data["id"]), str(data["link_id"]), datetime.fromisoformat(data["ts"])))
    return views


def add_views(db: Session, views: Sequence[tuple[str, str, datetime]]) -> int:
    """Add views to their links' counters, each event once; return how many were new."""
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    added: Counter[str] = Counter()
    seen: list[str] = []
    for start in range(0, len(views), _CHUNK):
        chunk = views[start : start + _CHUNK]
        rows = [{"event_id": e, "link_id": link, "at": at} for e, link, at in chunk]
        # A Core INSERT run with many parameter sets: compiled once per process (a VALUES list of the rows
        # would be compiled per batch) and sent as multi-row INSERTs by SQLAlchemy's "insertmanyvalues".
        counted = cast(Table, CountedView.__table__)
        statement = insert(counted).on_conflict_do_nothing().returning(counted.c.event_id, counted.c.link_id)
        new = db.execute(statement, rows).all()
        added.update(link for _, link in new)
        fresh = {event_id for event_id, _ in new}
        seen += [e for e, _, _ in chunk if e not in fresh]
    if added:
        table = cast(Table, Link.__table__)  # a core UPDATE run per row (not the ORM's by-primary-key mode)
        bump = (
            update(table).where(table.c.id == bindparam("lid")).values(view_count=table.c.view_count + bindparam("n"))
        )
        db.execute(bump, [{"lid": link, "n": n} for link, n in sorted(added.items())])
    for start in range(0, len(seen), _CHUNK):  # a limited link's view, already counted: its line has arrived
        ids = seen[start : start + _CHUNK]
        db.execute(
            update(CountedView)
            .where(CountedView.event_id.in_(ids), CountedView.pending.is_not(None))
            .values(pending=None)
        )
    return sum(added.values())


class ViewCounts:
    """The drain's side of the view counters: `after_store` per batch, and now and then a sweep."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._next_sweep = 0.0

    def after_store(self, batch: Batch) -> None:
        """Add a stored batch's link views to the counters (before its ack); sweep every half minute."""
        views = link_views(batch.lines) if batch.count else []
        if views:
            with unit_of_work(self.services.write_sessions) as db:
                add_views(db, views)
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + SWEEP_EVERY_SECONDS
            self.sweep(now=self.services.clock.now())

    def sweep(self, *, now: datetime) -> int:
        """Publish the lines of counted views that never reached the buffer (a crash after their commit), and
        forget old rows; return how many lines were published."""
        with unit_of_work(self.services.read_sessions) as db:
            stale = select(CountedView.event_id, CountedView.pending).where(
                CountedView.pending.is_not(None), CountedView.at < now - PENDING_GRACE
            )
            rows = db.execute(stale.limit(5000)).all()
        if rows:
            self.services.events.publish([Event.from_json(line) for _, line in rows if line])
            log.warning("published %d counted views whose events had not reached the buffer", len(rows))
        with unit_of_work(self.services.write_sessions) as db:
            for start in range(0, len(rows), _CHUNK):
                ids = [event_id for event_id, _ in rows[start : start + _CHUNK]]
                db.execute(update(CountedView).where(CountedView.event_id.in_(ids)).values(pending=None))
            db.execute(delete(CountedView).where(CountedView.pending.is_(None), CountedView.at < now - KEEP_ROWS))
        return len(rows)
