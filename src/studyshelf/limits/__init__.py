"""Limits that hold across instances; build_cluster_limits() is the one place that chooses."""

from __future__ import annotations

from studyshelf.limits.interface import ClusterLimits, LimitsUnavailable, Verdict
from studyshelf.settings import Settings

__all__ = ["ClusterLimits", "LimitsUnavailable", "Verdict", "build_cluster_limits"]


def build_cluster_limits(settings: Settings) -> ClusterLimits | None:
    """Redis when STUDYSHELF_REDIS_URL is set; else None, and the database alone keeps the limits."""
    if not settings.redis_url:
        return None
    from studyshelf.limits.redis_limits import RedisClusterLimits

    return RedisClusterLimits(settings.redis_url, prefix=settings.redis_key_prefix)
