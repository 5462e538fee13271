"""Does the Redis behind the event stream keep what it acknowledged? Checked once at start-up.

`publish` returns once Redis has run the XADD, and a viewer's view counts from then on. Whether that entry
survives a crash of the Redis host is Redis's persistence: with AOF and `appendfsync everysec` a crash loses at
most about the last second, with `always` nothing, with RDB snapshots only everything since the last snapshot
(minutes), and with neither everything not yet drained into the warehouse. StudyShelf cannot change that
setting (managed Redis services often refuse CONFIG altogether), so it reads it and warns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

import redis

log = logging.getLogger("studyshelf.events.redis")

DURABLE_FSYNC: Final = frozenset({"everysec", "always"})
CHECKED: Final = ("appendonly", "appendfsync", "save", "maxmemory", "maxmemory-policy")
_ADVICE: Final = "set `appendonly yes` and `appendfsync everysec` (or `always`); docs/operations.md, Redis persistence"


@dataclass(frozen=True)
class RedisPersistence:
    """What a Redis server said about its persistence, and what that means for acknowledged events."""

    durable: bool  # acknowledged events survive a crash of the Redis host, but for at most about a second
    summary: str  # one sentence for the operator


def check_redis_persistence(url: str, *, timeout_seconds: float = 5.0) -> RedisPersistence:
    """Read the persistence (and eviction) settings of the server at `url`; never raises for Redis errors."""
    where = _where(url)
    client = redis.Redis.from_url(
        url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds, decode_responses=True
    )
    try:
        config = {name: str(client.config_get(name).get(name, "")) for name in CHECKED}
    except redis.ResponseError as exc:  # CONFIG renamed away or denied by an ACL (managed services do both)
        return RedisPersistence(False, f"Redis persistence at {where} could not be checked ({exc}): {_ADVICE}.")
    except redis.RedisError as exc:
        return RedisPersistence(
            False, f"Redis persistence at {where} could not be checked (Redis did not answer: {exc}): {_ADVICE}."
        )
    finally:
        client.close()
    return _judge(where, config)


def log_redis_persistence(url: str | None) -> RedisPersistence | None:
    """Check the Redis of STUDYSHELF_REDIS_URL, if set: a warning when it may lose events, else one info line."""
    if not url:
        return None
    found = check_redis_persistence(url)
    log.log(logging.INFO if found.durable else logging.WARNING, found.summary)
    return found


def _judge(where: str, config: dict[str, str]) -> RedisPersistence:
    appendonly, appendfsync, save = config["appendonly"], config["appendfsync"], config["save"]
    described = f"appendonly {appendonly}, appendfsync {appendfsync}, save {save!r}"
    if config["maxmemory"] not in {"", "0"} and config["maxmemory-policy"].startswith("allkeys-"):
        risk = f"maxmemory-policy {config['maxmemory-policy']} may evict the event stream itself when memory is full"
        advice = "use `maxmemory-policy noeviction` (publishing then fails visibly instead)"
        return RedisPersistence(False, f"Redis at {where} may lose acknowledged analytics events: {risk}; {advice}.")
    if appendonly == "yes" and appendfsync in DURABLE_FSYNC:
        loses = "at most about 1 s of" if appendfsync == "everysec" else "no"
        return RedisPersistence(
            True, f"Redis persistence at {where}: {described}; a crash of the Redis host loses {loses} events."
        )
    if appendonly == "yes":
        risk = "the operating system decides when the AOF reaches the disk (often 30 s)"
    elif save.strip():
        risk = "only RDB snapshots are written, so a crash loses every event since the last snapshot (minutes)"
    else:
        risk = "nothing is written to disk, so a crash or restart loses every event not yet in the warehouse"
    return RedisPersistence(
        False,
        f"Redis at {where} may lose acknowledged analytics events ({described}): {risk}; {_ADVICE}.",
    )


def _where(url: str) -> str:
    """host:port/db of the URL, never its password."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    return f"{parts.hostname}:{parts.port or 6379}{parts.path or '/0'}"
