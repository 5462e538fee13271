"""Collection: delivery reports hits through `Services.hits`; this enriches and publishes them durably."""

from __future__ import annotations

import logging
from dataclasses import replace

from prometheus_client import Counter

from studyshelf.analytics.beacons import BeaconGuard
from studyshelf.analytics.enrich import Enricher, build_geo_lookup
from studyshelf.events import EventStream, EventStreamError, Hit
from studyshelf.services import Services

log = logging.getLogger("studyshelf.analytics")
EVENTS_ACCEPTED = Counter("studyshelf_events_accepted", "Analytics events accepted into the buffer", ["type"])
EVENTS_LOST = Counter("studyshelf_events_lost", "Analytics events the buffer refused (the request went on)")


class Collector:
    """The HitSink of a web process: enrich, publish, and never fail the request that was counted."""

    def __init__(self, events: EventStream, enricher: Enricher, *, beacons_per_minute: int = 60) -> None:
        self.events = events
        self.enricher = enricher
        self.beacons = BeaconGuard(beacons_per_minute)  # per process (see analytics/beacons.py)

    def record(self, hit: Hit) -> None:
        event = self.enricher.enrich(hit)
        try:
            self.events.publish([event])
        except EventStreamError:
            EVENTS_LOST.inc()
            log.exception("an analytics event was lost")
            return
        EVENTS_ACCEPTED.labels(event.type).inc()


def install(services: Services) -> Services:
    """The services of a web process: the same backends, with hits collected."""
    if isinstance(services.hits, Collector):
        return services
    settings = services.settings
    enricher = Enricher(secret=settings.secret_key, geo=build_geo_lookup(settings))
    collector = Collector(services.events, enricher, beacons_per_minute=settings.beacon_rate_per_minute)
    return replace(services, hits=collector)
