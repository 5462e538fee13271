"""Helpers for analytics tests: events, services' availability, backends per test."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from typing import Any

import redis

from studyshelf.core.ids import new_id
from studyshelf.events import Event

REDIS_URL = os.environ.get("STUDYSHELF_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
OWNER = str(uuid.UUID(int=1))
PARTNER_A = str(uuid.UUID(int=2))
PARTNER_B = str(uuid.UUID(int=3))


def redis_available() -> bool:
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.RedisError:
        return False


def event(type_: str = "view", *, ts: datetime = T0, **fields: Any) -> Event:
    """An event with sensible defaults: a view by viewer v1 of a file in OWNER's library, used by OWNER."""
    values: dict[str, Any] = {
        "id": str(new_id()),
        "ts": ts,
        "type": type_,
        "owner_org": OWNER,
        "partner_org": OWNER,
        "file_id": str(uuid.UUID(int=100)),
        "folder_id": str(uuid.UUID(int=10)),
        "folder_path": (str(uuid.UUID(int=9)), str(uuid.UUID(int=10))),
        "category": "pdf",
        "extension": "pdf",
        "country": "GB",
        "browser": "Chrome",
        "browser_major": "131",
        "os": "Windows",
        "device": "desktop",
        "lms": "moodle",
        "viewer": "v1",
    }
    values.update(fields)
    return Event(**values)
