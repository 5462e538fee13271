"""StudyShelf's RSA signing keys: created on first need, rotated by the CLI, published as a JWKS.

The private key is stored PKCS#8-encrypted under a passphrase from the key service (core/keys.py, purpose
`lti tool key`), derived from the install secret, so a copy of the database alone cannot sign as StudyShelf.
A key sealed under the passphrase of before the key service (key id `legacy`) is read and sealed again.

Rotation pre-publishes (1EdTech Security Framework, key rotation): the next key enters the JWKS at once
but signs only once every platform's cached copy of the JWKS has expired (`switch_delay`: the JWKS's
own max-age plus a margin), so a platform that caches without refetching on an unknown kid never sees
a signature it cannot check. The key it replaces keeps signing until then, and stays in the JWKS for the
grace period after it stopped, so responses signed just before the switch still verify.

A key's state: `published` (in the JWKS, not signing yet), `signing`, `retiring` (stopped signing,
still published), `retired` (gone from the JWKS).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select
from sqlalchemy.orm import Session

from studyshelf.core.errors import Conflict
from studyshelf.core.ids import new_secret
from studyshelf.core.keys import KeyRing, Purpose
from studyshelf.lti.models import ToolKey

KEY_BITS = 2048
# Beyond the JWKS max-age: clock skew, and a copy fetched from a shared cache just before it expired.
SWITCH_MARGIN = timedelta(seconds=60)
KeyState = Literal["published", "signing", "retiring", "retired"]


def _passphrase(keys: KeyRing, kid: str | None = None) -> bytes:
    """The private keys' passphrase: the current one, or the accepted older one `kid`."""
    return keys.mac(Purpose.LTI_TOOL_KEY, b"", kid=kid).hex().encode()


def _seal(private: rsa.RSAPrivateKey, keys: KeyRing) -> str:
    encryption = serialization.BestAvailableEncryption(_passphrase(keys))
    return private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption).decode()


def _unseal(key: ToolKey, keys: KeyRing, now: datetime) -> tuple[rsa.RSAPrivateKey, str]:
    """The private half and the key id of the passphrase that opened it; ValueError when none does."""
    for kid in keys.accepted_kids(Purpose.LTI_TOOL_KEY, now.timestamp()):
        try:
            loaded = serialization.load_pem_private_key(key.private_pem.encode(), password=_passphrase(keys, kid))
        except ValueError:
            continue
        assert isinstance(loaded, rsa.RSAPrivateKey)
        return loaded, kid
    raise ValueError(f"LTI key {key.kid} was sealed under another install secret")


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def public_jwk(private: rsa.RSAPrivateKey, kid: str) -> dict[str, str]:
    numbers = private.public_key().public_numbers()
    return {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid, "n": _b64(numbers.n), "e": _b64(numbers.e)}


def switch_delay(jwks_cache_seconds: int) -> timedelta:
    """How long a pre-published key waits before it signs: the JWKS's max-age, plus a margin."""
    return timedelta(seconds=jwks_cache_seconds) + SWITCH_MARGIN


def create_key(db: Session, *, keys: KeyRing, signs_from: datetime | None = None, now: datetime) -> ToolKey:
    """Generate a new RSA-2048 key, published at once and signing from `signs_from` (default now)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    kid = new_secret(12)
    key = ToolKey(
        kid=kid,
        private_pem=_seal(private, keys),
        public_jwk=json.dumps(public_jwk(private, kid)),
        created_at=now,
        signs_from=signs_from or now,
    )
    db.add(key)
    db.flush()
    return key


def active_key(db: Session, now: datetime) -> ToolKey | None:
    """The key that signs now: the latest to have started signing, and not yet retired."""
    query = (
        select(ToolKey)
        .where(ToolKey.signs_from <= now, (ToolKey.retired_at.is_(None)) | (ToolKey.retired_at > now))
        .order_by(ToolKey.signs_from.desc(), ToolKey.created_at.desc())
        .limit(1)
    )
    return db.scalars(query).first()


def ensure_key(db: Session, *, keys: KeyRing, now: datetime) -> ToolKey:
    """The active key, creating the first one when there is none."""
    return active_key(db, now=now) or create_key(db, keys=keys, now=now)


def rotate(db: Session, *, keys: KeyRing, jwks_cache_seconds: int, immediately: bool = False, now: datetime) -> ToolKey:
    """Publish a new key that signs once cached JWKS have expired; the keys it replaces retire at that moment.

    `immediately` is the emergency path (a leaked key, a lost secret): the new key signs at once, and a platform
    holding a cached JWKS may refuse deep-linking responses until its copy expires.
    """
    current = [k for k in db.scalars(select(ToolKey)) if k.retired_at is None or k.retired_at > now]
    waiting = [k for k in current if k.signs_from > now]
    if waiting and not immediately:
        raise Conflict(f"Key {waiting[0].kid} is already published and signs from {_when(waiting[0].signs_from)}.")
    signs_from = now if immediately or not current else now + switch_delay(jwks_cache_seconds)
    for old in current:
        old.retired_at = signs_from
    db.flush()
    return create_key(db, keys=keys, signs_from=signs_from, now=now)


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True)
class KeyStatus:
    kid: str
    created_at: datetime
    state: KeyState
    changes_at: datetime | None  # when the state changes next (None: not by itself)
    next_state: KeyState | None


def key_status(key: ToolKey, *, grace_days: int, now: datetime) -> KeyStatus:
    """Where a key stands now, and when that changes."""
    leaves = key.retired_at + timedelta(days=grace_days) if key.retired_at is not None else None
    if key.retired_at is not None and key.retired_at <= now:
        if leaves is not None and leaves > now:
            return KeyStatus(key.kid, key.created_at, "retiring", leaves, "retired")
        return KeyStatus(key.kid, key.created_at, "retired", None, None)
    if key.signs_from > now:
        return KeyStatus(key.kid, key.created_at, "published", key.signs_from, "signing")
    return KeyStatus(key.kid, key.created_at, "signing", key.retired_at, "retiring" if key.retired_at else None)


def published_keys(db: Session, *, grace_days: int, now: datetime) -> list[ToolKey]:
    """Keys in the JWKS: waiting, signing, and retired ones still inside the grace period (newest first)."""
    cutoff = now - timedelta(days=grace_days)
    query = select(ToolKey).where((ToolKey.retired_at.is_(None)) | (ToolKey.retired_at > cutoff))
    return list(db.scalars(query.order_by(ToolKey.signs_from.desc(), ToolKey.created_at.desc())))


def list_keys(db: Session) -> list[ToolKey]:
    return list(db.scalars(select(ToolKey).order_by(ToolKey.signs_from.desc(), ToolKey.created_at.desc())))


def jwks(db: Session, *, grace_days: int, now: datetime) -> dict[str, Any]:
    return {"keys": [json.loads(k.public_jwk) for k in published_keys(db, grace_days=grace_days, now=now)]}


def signing_key(db: Session, *, keys: KeyRing, now: datetime) -> tuple[ToolKey, rsa.RSAPrivateKey]:
    """The active key and its private half; a key sealed under an older secret key is replaced, one sealed
    under an older passphrase of this install is sealed again under the current one."""
    key = ensure_key(db, keys=keys, now=now)
    try:
        private, passphrase_kid = _unseal(key, keys, now=now)
    except ValueError:  # STUDYSHELF_SECRET_KEY changed since the key was made
        key = rotate(db, keys=keys, jwks_cache_seconds=0, immediately=True, now=now)
        return key, private_key(key, keys=keys, now=now)
    if passphrase_kid != keys.current_kid(Purpose.LTI_TOOL_KEY):
        key.private_pem = _seal(private, keys)
        db.flush()
    return key, private


def private_key(key: ToolKey, *, keys: KeyRing, now: datetime) -> rsa.RSAPrivateKey:
    return _unseal(key, keys, now=now)[0]
