"""Limits that hold across instances; build_cluster_limits() and build_shared_limits() are where they are chosen."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from studyshelf.limits.database import DatabaseClusterLimits
from studyshelf.limits.fallback import FallbackClusterLimits
from studyshelf.limits.interface import ClusterLimits, LimitsUnavailable, Verdict
from studyshelf.settings import Settings

__all__ = [
    "ClusterLimits",
    "DatabaseClusterLimits",
    "LimitsUnavailable",
    "Verdict",
    "build_cluster_limits",
    "build_shared_limits",
]


def build_cluster_limits(settings: Settings) -> ClusterLimits | None:
    """Redis when STUDYSHELF_REDIS_URL is set; else None, and the database alone keeps the limits."""
    if not settings.redis_url:
        return None
    from studyshelf.limits.redis_limits import RedisClusterLimits

    return RedisClusterLimits(settings.redis_url, prefix=settings.redis_key_prefix)


def build_shared_limits(settings: Settings, sessions: sessionmaker[Session]) -> ClusterLimits:
    """Limits for every instance: in the app database, or in Redis first when it is set (the database when
    Redis does not answer)."""
    database = DatabaseClusterLimits(sessions)
    redis = build_cluster_limits(settings)
    return database if redis is None else FallbackClusterLimits(redis, database)
