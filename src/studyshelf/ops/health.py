"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import hmac
import ipaddress
import math

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from studyshelf.core.errors import PermissionDenied
from studyshelf.core.outbound import parse_networks
from studyshelf.events import EventStreamError
from studyshelf.media.tools import Tools
from studyshelf.ops.backup_health import BackupMonitor, export_metrics
from studyshelf.ops.metrics import EVENT_BUFFER_DEPTH, exposition
from studyshelf.services import Services
from studyshelf.settings import Settings
from studyshelf.web.security import client_ip

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request, response: Response) -> dict[str, str]:
    """The process can reach its database and blob store; the analytics warehouse and event buffer are reported."""
    services: Services = request.app.state.services
    checks: dict[str, str] = {}
    try:
        with services.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - readiness reports any failure
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        services.blobs.exists("0" * 64)
        checks["storage"] = "ok"
    except Exception as exc:  # noqa: BLE001 - a health probe reports any failure as unhealthy, never raises
        checks["storage"] = f"error: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    # Analytics and backups never make the process unready (learners are still served): a warehouse that is
    # down leaves events in the buffer, a backup that lags loses nothing yet; the answer says "degraded".
    extra = _analytics_checks(services)
    degraded = any(v.startswith("error") for v in extra.values())
    monitor: BackupMonitor | None = request.app.state.backup_monitor
    if monitor is not None:
        backup = monitor.health()
        extra["backup"] = backup.summary
        degraded = degraded or backup.degraded
    if services.settings.media_processing:
        gaps = Tools.find(services.settings).missing()
        extra["media"] = "warning: " + "; ".join(gaps) if gaps else "ok"
        degraded = degraded or bool(gaps)  # originals are still served, unprocessed
    response.status_code = 200 if ready else 503
    return {"status": "unavailable" if not ready else "degraded" if degraded else "ok", **checks, **extra}


def _analytics_checks(services: Services) -> dict[str, str]:
    checks: dict[str, str] = {}
    try:
        services.warehouse.ping()
        checks["warehouse"] = "ok"
    except Exception as exc:  # noqa: BLE001 - readiness reports any failure
        checks["warehouse"] = f"error: {type(exc).__name__}"
    try:
        checks["event_buffer"] = f"ok: {services.events.backlog()} buffered"
    except Exception as exc:  # noqa: BLE001 - a health probe reports any failure as unhealthy, never raises
        checks["event_buffer"] = f"error: {type(exc).__name__}"
    return checks


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus exposition of every worker's metrics, to allowed networks or the metrics token's holder."""
    services: Services = request.app.state.services
    _check_metrics_access(request, services.settings)
    monitor: BackupMonitor | None = request.app.state.backup_monitor
    export_metrics(monitor.health() if monitor else None)
    try:
        EVENT_BUFFER_DEPTH.set(services.events.backlog())
    except EventStreamError:
        EVENT_BUFFER_DEPTH.set(math.nan)  # the buffer is down: /readyz says so; the scrape still answers
    return Response(exposition(), media_type=CONTENT_TYPE_LATEST)


def _check_metrics_access(request: Request, settings: Settings) -> None:
    """Allowed: a client address (behind trusted proxies, the forwarded one) in STUDYSHELF_METRICS_ALLOW, or
    `Authorization: Bearer <STUDYSHELF_METRICS_TOKEN>`."""
    address = client_ip(request.scope, settings.trusted_proxies)
    try:
        if any(ipaddress.ip_address(address) in network for network in parse_networks(settings.metrics_allow)):
            return
    except ValueError:
        pass  # not an address (a test client's name): only the token can open it
    scheme, _, offered = request.headers.get("authorization", "").partition(" ")
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else ""
    if token and scheme.lower() == "bearer" and hmac.compare_digest(offered.strip().encode(), token.encode()):
        return
    raise PermissionDenied(
        "Metrics are open to the monitoring networks (STUDYSHELF_METRICS_ALLOW) or with the metrics token."
    )
