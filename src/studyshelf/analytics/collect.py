"""Collection: delivery reports hits through `Services.hits`; this enriches and publishes them durably."""

from __future__ import annotations

import logging
from dataclasses import replace

from prometheus_client import Counter
from sqlalchemy.exc import SQLAlchemyError

from studyshelf.analytics.beacons import BeaconGuard, BeaconLimits, BeaconViews
from studyshelf.analytics.enrich import Enricher
from studyshelf.events import EventStream, EventStreamError, Hit
from studyshelf.limits import ClusterLimits, build_cluster_limits
from studyshelf.services import Services

log = logging.getLogger("studyshelf.analytics")
EVENTS_ACCEPTED = Counter("studyshelf_events_accepted", "Analytics events accepted into the buffer", ["type"])
EVENTS_LOST = Counter("studyshelf_events_lost", "Analytics events the buffer refused (the request went on)")


class Collector:
    """The HitSink of a web process: enrich, publish, and never fail the request that was counted."""

    def __init__(
        self,
        events: EventStream,
        enricher: Enricher,
        *,
        views: BeaconViews,
        beacons_per_minute: int = 60,
        shared_limits: ClusterLimits | None = None,
    ) -> None:
        self.events = events
        self.enricher = enricher
        self.views = views  # counted page views, in the app database: limits that hold across processes
        # Replays and rates of beacons: across instances (database, Redis first when set); see beacons.py.
        self.beacons = BeaconLimits(BeaconGuard(beacons_per_minute), views, shared_limits)

    def close(self) -> None:
        if self.beacons.shared is not None:
            self.beacons.shared.close()

    def record(self, hit: Hit) -> None:
        event = self.enricher.enrich(hit)
        try:
            self.events.publish([event])
        except EventStreamError:
            EVENTS_LOST.inc()
            log.exception("an analytics event was lost")
            return
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
    views = BeaconViews(services.write_sessions, per_view=settings.beacon_events_per_view)
    collector = Collector(
        services.events,
        enricher,
        views=views,
        beacons_per_minute=settings.beacon_rate_per_minute,
        shared_limits=build_cluster_limits(settings),
    )
    return replace(services, hits=collector)
