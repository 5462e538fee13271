"""Identifiers and secrets."""

from __future__ import annotations

import hashlib
import os
import secrets
import time
import uuid


def new_id() -> uuid.UUID:
    """Return a time-ordered UUIDv7, so new rows land at the end of indexes."""
    unix_ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (unix_ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return uuid.UUID(int=value)


def new_secret(nbytes: int = 32) -> str:
    """Return a URL-safe random secret."""
    return secrets.token_urlsafe(nbytes)


def sha256_hex(value: str) -> str:
    """Hash a secret for storage; secrets with 256 bits of entropy need no slow hash."""
    return hashlib.sha256(value.encode()).hexdigest()
