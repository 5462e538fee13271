"""The `lti.nonces` job: forget spent LTI nonces once the tokens that carried them have expired."""

from __future__ import annotations

from sqlalchemy import delete

from studyshelf.core.db import affected_rows, unit_of_work
from studyshelf.lti.models import UsedNonce
from studyshelf.services import Services


def prune_spent_nonces(services: Services, _memo: str) -> str:
    """Delete nonces past their expiry: a token that old is refused by its exp anyway."""
    with unit_of_work(services.write_sessions) as db:
        result = db.execute(delete(UsedNonce).where(UsedNonce.expires_at < services.clock.now()))
        removed = affected_rows(result)
    return f"removed {removed} spent nonces"
