"""The scheduler's outbox job: retries what the after-commit drains could not send."""

from __future__ import annotations

from studyshelf.notify.service import drain, prune
from studyshelf.services import Services


def drain_outbox(services: Services, _memo: str) -> str:
    sent, failed = drain(services)
    pruned = prune(services)
    return f"{sent} notifications sent, {failed} failed, {pruned} old ones forgotten"
