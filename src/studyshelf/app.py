"""The ASGI application."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from studyshelf.analytics import collect
from studyshelf.analytics.api import router as analytics_router
from studyshelf.analytics.data_api import router as analytics_data_router
from studyshelf.analytics.erasure_pages import router as analytics_erasure_pages
from studyshelf.analytics.ingest.drain import Drainer
from studyshelf.analytics.insight_api import router as insight_api
from studyshelf.analytics.insight_pages import router as insight_pages
from studyshelf.analytics.pages import router as analytics_pages
from studyshelf.analytics.reports.api import router as reports_router
from studyshelf.analytics.reports.pages import router as reports_pages
from studyshelf.analytics.table_pages import router as analytics_table_pages
from studyshelf.delivery.api import MemberContentFastPath, close_epoch_reads, open_epoch_reads
from studyshelf.delivery.api import router as delivery_router
from studyshelf.delivery.captions import router as captions_content_router
from studyshelf.delivery.hits import record_download, record_transfers
from studyshelf.delivery.links_api import router as links_router
from studyshelf.delivery.media import MediaUrls
from studyshelf.delivery.pages import router as links_pages
from studyshelf.delivery.radar import SightingRecorder
from studyshelf.delivery.view_counts import ViewCounts
from studyshelf.delivery.viewer import ViewerFastPath, record_media_refusal
from studyshelf.delivery.viewer import router as viewer_router
from studyshelf.jobs.runner import Scheduler
from studyshelf.library.api import router as library_router
from studyshelf.library.captions_api import router as captions_router
from studyshelf.library.captions_pages import router as captions_pages
from studyshelf.library.pages import router as library_pages
from studyshelf.library.sharing_api import router as sharing_router
from studyshelf.lti.admin_pages import router as lti_admin_pages
from studyshelf.lti.api import router as lti_api_router
from studyshelf.lti.pages import router as lti_router
from studyshelf.lti.picker import router as lti_picker_router
from studyshelf.lti.register_pages import router as lti_register_router
from studyshelf.media.api import router as media_router
from studyshelf.media.pages import router as media_pages
from studyshelf.media.tools import Tools
from studyshelf.media.worker import MediaWorker
from studyshelf.ops.alarms_api import router as alarms_api
from studyshelf.ops.alarms_pages import router as alarms_pages
from studyshelf.ops.backup_health import BackupMonitor
from studyshelf.ops.health import router as health_router
from studyshelf.ops.metrics import mark_this_process_dead, watch_pool
from studyshelf.ops.observe import RequestObserver
from studyshelf.ops.pages import router as ops_pages
from studyshelf.ops.signals import RequestFlusher
from studyshelf.partners.api import router as partners_router
from studyshelf.partners.pages import router as partners_pages
from studyshelf.services import Services, build_services
from studyshelf.settings import Settings
from studyshelf.web.assets import VersionedStaticFiles, static_assets
from studyshelf.web.body_limit import BodyLimitMiddleware
from studyshelf.web.errors import install_error_handlers
from studyshelf.web.render import render
from studyshelf.web.security import SecurityHeadersMiddleware

log = logging.getLogger("studyshelf.app")

API_DESCRIPTION = """
StudyShelf stores study materials and delivers them to learners.

Authenticate with `POST /api/v1/auth/login` (session cookie; writes then need the `X-CSRF-Token`
header from the login answer) or with a personal token: `Authorization: Bearer ss_…`.
Errors are RFC 9457 `application/problem+json` with a stable `type`.
"""


def _start_media_processing(services: Services) -> MediaWorker | None:
    """Warn about missing tools (originals are then served unprocessed); process uploads in this process
    when it runs the in-process scheduler (the embedded default), as `studyshelf worker` does elsewhere."""
    settings = services.settings
    if not settings.media_processing:
        return None
    for gap in Tools.find(settings).missing():
        log.warning("media processing: %s", gap)
    if settings.scheduler_interval_seconds <= 0:
        return None
    worker = MediaWorker(services)
    worker.start()
    return worker


def _add_fast_paths(app: FastAPI) -> None:
    """Requests answered before the router, inside the security headers, body limit and request observer."""
    app.add_middleware(MemberContentFastPath)  # members' downloads whose access is cached
    app.add_middleware(ViewerFastPath)  # a plain `GET /v/{link_id}`, the class rush's request


def _lifespan(
    built: Services, settings: Settings, services: Services | None
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The app's start and stop: its background threads, and the backends it built itself."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.sightings.start()
        open_epoch_reads(app)
        if isinstance(built.hits, collect.Collector):
            built.hits.views.start()
        scheduler = None
        if settings.scheduler_interval_seconds > 0:
            scheduler = Scheduler(
                built,
                interval_seconds=settings.scheduler_interval_seconds,
                alarm_interval_seconds=settings.alarm_interval_seconds,
            )
            scheduler.start()
        media_worker = _start_media_processing(built)
        drainer = None
        if not settings.redis_url:  # the embedded spool is drained here; Redis by `studyshelf worker`
            counts = ViewCounts(built)
            drainer = Drainer(
                built.events, built.warehouse, max_count=settings.event_drain_batch, after_store=counts.after_store
            )
            drainer.start()
        yield
        app.state.sightings.close()
        close_epoch_reads(app)
        if isinstance(built.hits, collect.Collector):
            built.hits.views.close()
        if drainer is not None:
            drainer.stop()
        if scheduler is not None:
            scheduler.stop()
        if media_worker is not None:
            media_worker.stop()
        mark_this_process_dead()
        if isinstance(built.hits, collect.Collector) and built.hits is not getattr(services, "hits", None):
            built.hits.close()  # made by this app (collect.install), so closed by it
        if services is None:
            built.events.close()
            built.limits.close()
            built.warehouse.close()
            built.engine.dispose()

    return lifespan


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    """Build the application; backends come from `services` or are built from `settings`."""
    settings = settings or (services.settings if services else Settings())
    built = collect.install(services or build_services(settings))

    app = FastAPI(
        title="StudyShelf",
        version="0.1.0",
        description=API_DESCRIPTION,
        openapi_url="/api/openapi.json",
        docs_url=None,  # served below with the vendored Swagger UI: the default loads it from a CDN
        redoc_url=None,
        lifespan=_lifespan(built, settings, services),
    )
    app.state.services = built
    app.state.sightings = SightingRecorder(built, interval=settings.radar_flush_seconds)
    app.state.backup_monitor = BackupMonitor(built) if built.settings.backup_url else None
    install_error_handlers(app)
    _add_fast_paths(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)  # uploads lift it: library/upload.py
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(
        MediaUrls, on_refused=record_media_refusal, on_download=record_download, on_transfer=record_transfers
    )  # /m/ is answered before the router (delivery/media.py)
    app.mount("/static", VersionedStaticFiles(static_assets()), name="static")

    @app.get("/api/docs", include_in_schema=False, response_class=HTMLResponse)
    def api_docs(request: Request) -> HTMLResponse:
        return render(request, "api_docs.html", {"openapi_url": app.openapi_url})

    routers = (
        health_router,
        viewer_router,  # early: a class rush's page should not be matched against every route before it
        partners_router,
        library_router,
        captions_router,
        captions_content_router,
        media_router,
        media_pages,
        sharing_router,
        delivery_router,
        links_router,
        lti_router,
        lti_picker_router,
        lti_register_router,
        lti_api_router,
        lti_admin_pages,
        analytics_router,
        analytics_data_router,
        analytics_pages,
        analytics_erasure_pages,
        analytics_table_pages,
        insight_api,
        insight_pages,
        reports_router,
        reports_pages,
        partners_pages,
        library_pages,
        captions_pages,
        links_pages,
        ops_pages,
        alarms_api,
        alarms_pages,
    )
    for router in routers:
        app.include_router(router)
    app.add_middleware(
        RequestObserver,
        routes=[*app.router.routes, *(route for router in routers for route in router.routes)],
        trusted_proxies=settings.trusted_proxies,
        clock=built.clock,
        flusher=RequestFlusher(built),
        personal_data=settings.log_personal_data,
    )  # outermost of all: every request, /m/ included, gets its id, metrics, alarm signals and access line
    watch_pool(built.engine)
    return app
