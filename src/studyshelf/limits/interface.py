"""Limits shared by every instance: an item admitted once, and a count per window up to a limit."""

from __future__ import annotations

import enum
from typing import Protocol


class LimitsUnavailable(Exception):
    """The shared store did not answer (or the answer was lost): the caller decides without it."""


class Verdict(enum.Enum):
    ADMITTED = "admitted"
    REPEATED = "repeated"  # the item was admitted before
    OVER_LIMIT = "over-limit"  # the window has counted its limit already


class ClusterLimits(Protocol):
    def admit(self, *, seen: str, item: str, window: str, limit: int, seen_ttl: int, window_ttl: int) -> Verdict:
        """At once for every instance: REPEATED if `item` is in the set `seen`, OVER_LIMIT if the counter
        `window` has reached `limit`; else add `item` to `seen`, count it in `window` and say ADMITTED.
        The keys expire `seen_ttl` and `window_ttl` seconds after their last change."""
        ...

    def withdraw(self, *, seen: str, item: str, window: str) -> None:
        """Take back an admission whose work failed afterwards (the item may come again, the count drops)."""
        ...

    def close(self) -> None: ...
