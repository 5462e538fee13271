"""The operator's Backups page: backup health for the platform admins (last replicated point, lag, oldest
restorable point, last verify)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from studyshelf.ops.backup_health import BackupMonitor
from studyshelf.partners.deps import ServicesDep
from studyshelf.partners.pages import PagePrincipal
from studyshelf.partners.permissions import require_platform_operator
from studyshelf.web.render import render

router = APIRouter(include_in_schema=False)


@router.get("/settings/backups", response_class=HTMLResponse)
def backups_page(request: Request, principal: PagePrincipal, services: ServicesDep) -> Response:
    require_platform_operator(principal)
    monitor: BackupMonitor | None = request.app.state.backup_monitor
    context = {
        "title": "Backups",
        "nav": "backups",
        "configured": monitor is not None,
        "health": monitor.health() if monitor else None,
        "engine": "pgBackRest (PostgreSQL)" if not services.settings.is_embedded_database else "Litestream (SQLite)",
    }
    return render(request, "ops/backups.html", context)
