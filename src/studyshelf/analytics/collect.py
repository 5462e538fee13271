"""Collection: delivery reports hits through `Services.hits`; this enriches and publishes them durably."""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import cast

from prometheus_client import Counter
from sqlalchemy import Table, insert
from sqlalchemy.exc import SQLAlchemyError

from studyshelf.analytics.beacons import BeaconGuard, BeaconLimits, BeaconViews
from studyshelf.analytics.enrich import Enricher
from studyshelf.analytics.models import BeaconView
from studyshelf.core.batches import BackgroundBatches
from studyshelf.core.db import unit_of_work
from studyshelf.events import Event, EventStream, EventStreamError, Hit
from studyshelf.events.coalesce import LoopPublisher
from studyshelf.limits import ClusterLimits, build_cluster_limits
from studyshelf.services import Services

log = logging.getLogger("studyshelf.analytics")
EVENTS_ACCEPTED = Counter("studyshelf_events_accepted", "Analytics events accepted into the buffer", ["type"])
EVENTS_LOST = Counter("studyshelf_events_lost", "Analytics events the buffer refused (the request went on)")
VIEWER_VIEWS = Counter("studyshelf_viewer_views_total", "Viewer page views counted (share links and LTI launches)")
VIEWER_REFUSALS = Counter("studyshelf_viewer_refusals_total", "Views and media requests refused, by reason", ["reason"])
OPEN_VIEWS_SECONDS = 0.05


@dataclass(frozen=True)
class QueuedBeaconViews(BeaconViews):
    """Page views opened for their beacons in batches (every OPEN_VIEWS_SECONDS, by a thread of the process), so
    a view costs no write of its own. A beacon reaching this process first writes what is queued; one reaching
    another process within those 50 ms of its page (no real page loads its media that fast) would be refused,
    and a crash forgets the last 50 ms of opens (their beacons are refused: the views themselves are kept)."""

    _queue: BackgroundBatches[tuple[str, datetime]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        queue = BackgroundBatches(self._write, interval=OPEN_VIEWS_SECONDS, name="studyshelf-beacon-views")
        object.__setattr__(self, "_queue", queue)  # frozen: set once, here

    def open(self, session: str, *, at: datetime) -> None:
        self._queue.add((session, at))

    def flush(self) -> None:
        """Open every queued view now (a beacon here, or a test that sends the beacon to another instance)."""
        if self._queue.pending():
            self._queue.flush()

    def take(self, session: str, *, seq: int, minute: int, per_minute: int, playback: bool = False) -> None:
        self.flush()
        super().take(session, seq=seq, minute=minute, per_minute=per_minute, playback=playback)

    def start(self) -> None:
        self._queue.start()

    def close(self) -> None:
        self._queue.close()

    def _write(self, opened: list[tuple[str, datetime]]) -> None:
        # One Core executemany: the ORM's unit of work cost more per row than the insert (a row per view).
        rows = [{"session": session, "events": 0, "playbacks": 0, "counted_at": at} for session, at in opened]
        with unit_of_work(self.sessions) as db:
            db.execute(insert(cast(Table, BeaconView.__table__)), rows)


class Collector:
    """The HitSink of a web process: enrich, publish, and never fail the request that was counted."""

    def __init__(
        self,
        events: EventStream,
        enricher: Enricher,
        *,
        views: QueuedBeaconViews,
        beacons_per_minute: int = 60,
        shared_limits: ClusterLimits | None = None,
    ) -> None:
        self.events = events
        self.enricher = enricher
        self.views = views  # counted page views, in the app database: limits that hold across processes
        # Replays and rates of beacons: across instances (database, Redis first when set); see beacons.py.
        self.beacons = BeaconLimits(BeaconGuard(beacons_per_minute), views, shared_limits)
        self._publishers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopPublisher] = (
            weakref.WeakKeyDictionary()
        )

    def close(self) -> None:
        if self.beacons.shared is not None:
            self.beacons.shared.close()

    def event_line(self, hit: Hit) -> bytes | None:
        return self.enricher.enrich(hit).json_bytes()

    def record(self, hit: Hit) -> None:
        event = self._event(hit)
        try:
            self.events.publish([event])
        except EventStreamError:
            EVENTS_LOST.inc()
            log.exception("an analytics event was lost")
            return
        self._accepted(hit, event)

    async def record_async(self, hit: Hit) -> None:
        event = self._event(hit)
        try:
            await self._loop_publisher().publish([event])
        except EventStreamError:
            EVENTS_LOST.inc()
            log.exception("an analytics event was lost")
            return
        self._accepted(hit, event)

    def _loop_publisher(self) -> LoopPublisher:
        loop = asyncio.get_running_loop()
        publisher = self._publishers.get(loop)
        if publisher is None:
            publisher = self._publishers[loop] = LoopPublisher(self.events, loop)
        return publisher

    def _event(self, hit: Hit) -> Event:
        if hit.type == "view":
            VIEWER_VIEWS.inc()
        elif hit.type == "blocked":
            VIEWER_REFUSALS.labels(hit.reason or "unknown").inc()
        return self.enricher.enrich(hit)

    def _accepted(self, hit: Hit, event: Event) -> None:
        EVENTS_ACCEPTED.labels(event.type).inc()
        if hit.type == "view" and hit.session:  # a viewer page: its beacon token names this session
            try:
                self.views.open(hit.session, at=hit.at)
            except SQLAlchemyError:
                log.exception("a counted view could not be opened for its beacons (they will be refused)")


def install(services: Services) -> Services:
    """The services of a web process: the same backends, with hits collected."""
    if isinstance(services.hits, Collector):
        return services
    settings = services.settings
    enricher = Enricher(keys=services.keys, geo=services.geo)
    views = QueuedBeaconViews(
        services.write_sessions,
        per_view=settings.beacon_events_per_view,
        playbacks_per_view=settings.beacon_playbacks_per_view,
    )
    collector = Collector(
        services.events,
        enricher,
        views=views,
        beacons_per_minute=settings.beacon_rate_per_minute,
        shared_limits=build_cluster_limits(settings),
    )
    return replace(services, hits=collector)
