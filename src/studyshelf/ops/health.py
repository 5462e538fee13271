"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from studyshelf.ops.backup_health import BackupMonitor, export_metrics
from studyshelf.services import Services

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
    monitor: BackupMonitor | None = request.app.state.backup_monitor
    export_metrics(monitor.health() if monitor else None)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
