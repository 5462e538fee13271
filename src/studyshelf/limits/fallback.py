"""Redis first, the database when Redis fails: a limit keeps holding (more slowly) through a Redis outage."""

from __future__ import annotations

import contextlib
import logging

from studyshelf.limits.interface import ClusterLimits, LimitsUnavailable, Verdict

log = logging.getLogger("studyshelf.limits")


class FallbackClusterLimits:
    """Admits through `primary`; when it does not answer, through `fallback`.

    An item admitted in one store during an outage may be admitted once more by the other afterwards: for the
    limits this serves (refusals recorded, not access granted) one more is harmless, and none is ever lost."""

    def __init__(self, primary: ClusterLimits, fallback: ClusterLimits) -> None:
        self.primary = primary
        self.fallback = fallback

    def admit(self, *, seen: str, item: str, window: str, limit: int, seen_ttl: int, window_ttl: int) -> Verdict:
        try:
            return self.primary.admit(
                seen=seen, item=item, window=window, limit=limit, seen_ttl=seen_ttl, window_ttl=window_ttl
            )
        except LimitsUnavailable as exc:
            log.warning("shared limits: Redis did not answer (%s); the database decides", exc)
        return self.fallback.admit(
            seen=seen, item=item, window=window, limit=limit, seen_ttl=seen_ttl, window_ttl=window_ttl
        )

    def withdraw(self, *, seen: str, item: str, window: str) -> None:
        # Only a marked item gives its count back, so taking it back from both stores is exact.
        with contextlib.suppress(LimitsUnavailable):
            self.primary.withdraw(seen=seen, item=item, window=window)
        self.fallback.withdraw(seen=seen, item=item, window=window)

    def close(self) -> None:
        self.primary.close()
        self.fallback.close()
