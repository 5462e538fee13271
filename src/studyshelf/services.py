"""The frozen container of backends, built once from settings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from studyshelf.core import migrate
from studyshelf.core.clock import Clock, SystemClock
from studyshelf.core.db import make_engine, make_session_factory
from studyshelf.core.geo import GeoLookup, build_geo_lookup
from studyshelf.core.keys import KeyRing
from studyshelf.core.outbound import OutboundClient
from studyshelf.events import DiscardHits, EventStream, HitSink, build_event_stream
from studyshelf.limits import ClusterLimits, build_shared_limits
from studyshelf.mail import Mailer, build_mailer
from studyshelf.settings import Settings
from studyshelf.signing import CloudFrontSigner, MediaSigner
from studyshelf.storage import BlobStore, build_blob_store
from studyshelf.storage.s3 import S3Options
from studyshelf.warehouse import Warehouse, build_warehouse


@dataclass(frozen=True)
class Services:
    settings: Settings
    keys: KeyRing  # every key derived from the install secret, and the one signed-token codec
    engine: Engine
    write_sessions: sessionmaker[Session]
    read_sessions: sessionmaker[Session]
    blobs: BlobStore
    mailer: Mailer
    signer: MediaSigner
    events: EventStream
    warehouse: Warehouse
    outbound: OutboundClient  # every request to a URL that a user or a platform supplied
    geo: GeoLookup  # the country of an address: the leak radar and analytics enrichment
    limits: ClusterLimits  # limits every instance shares: the app database, Redis first when set
    clock: Clock = field(default_factory=SystemClock)  # "now" for jobs and drains; tests move a MovableClock
    # Where delivery reports views, downloads and refusals. create_app installs the analytics collector
    # (analytics.collect.install); processes that serve no one (CLI, worker) keep discarding.
    hits: HitSink = field(default_factory=DiscardHits)


def build_services(settings: Settings) -> Services:
    """Build every backend the settings name."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url)
    write_sessions = make_session_factory(engine, write=True)
    keys = KeyRing.for_install(settings.secret_key, media_keys=settings.media_keys, media_key_id=settings.media_key_id)
    return Services(
        settings=settings,
        keys=keys,
        engine=engine,
        write_sessions=write_sessions,
        read_sessions=make_session_factory(engine, write=False),
        blobs=build_blob_store(
            settings.resolved_storage_url,
            master_keys=settings.encryption_master_keys(),
            s3=S3Options.from_settings(settings),
        ),
        mailer=build_mailer(settings.smtp_url),
        signer=MediaSigner.from_keys(
            keys, max_ttl=settings.media_url_ttl_seconds, cdn=CloudFrontSigner.from_settings(settings)
        ),
        events=build_event_stream(settings),
        warehouse=build_warehouse(settings.resolved_warehouse_url),
        outbound=OutboundClient(allowed_networks=settings.outbound_allowed_networks),
        geo=build_geo_lookup(settings.geoip_mmdb),
        limits=build_shared_limits(settings, write_sessions),
    )


@contextmanager
def command_services(settings: Settings | None = None) -> Iterator[Services]:
    """The backends for one CLI command: the embedded database migrated first, every backend closed at the end."""
    services = build_services(settings or Settings())
    if services.settings.is_embedded_database:
        migrate.upgrade(services.engine)
    try:
        yield services
    finally:
        services.warehouse.close()
        services.events.close()
        services.limits.close()
        services.engine.dispose()
