"""Scheduled work of the partners domain."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete

from studyshelf.core.db import affected_rows, unit_of_work
from studyshelf.partners.models import LoginFailure
from studyshelf.services import Services


def prune_login_failures(services: Services, _memo: str) -> str:
    """Forget failed sign-ins older than the throttling window: they no longer count (partners/throttle.py)."""
    since = services.clock.now() - timedelta(seconds=services.settings.login_window_seconds)
    with unit_of_work(services.write_sessions) as db:
        result = db.execute(delete(LoginFailure).where(LoginFailure.at < since))
        removed = affected_rows(result)
    return f"removed {removed} old sign-in failures"
