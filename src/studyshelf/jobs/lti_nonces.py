"""The `lti.nonces` job: forget spent LTI nonces once the tokens that carried them have expired.

The jobs layer sits below `lti`, so this names the table rather than importing its model; the test
(tests/lti/test_nonce_job.py) checks the names against `studyshelf.lti.models`.
"""

from __future__ import annotations

from sqlalchemy import column, delete, table

from studyshelf.core.clock import utcnow
from studyshelf.core.db import UtcDateTime, affected_rows, unit_of_work
from studyshelf.services import Services

NONCES = table("lti_nonces", column("expires_at", UtcDateTime()))


def prune_spent_nonces(services: Services, _memo: str) -> str:
    """Delete nonces past their expiry: a token that old is refused by its exp anyway."""
    with unit_of_work(services.write_sessions) as db:
        result = db.execute(delete(NONCES).where(NONCES.c.expires_at < utcnow()))
        removed = affected_rows(result)
    return f"removed {removed} spent nonces"
