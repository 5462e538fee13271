"""StudyShelf's RSA signing keys: created on first need, rotated by the CLI, published as a JWKS.

The private key is stored PKCS#8-encrypted under a key derived from STUDYSHELF_SECRET_KEY, so a copy
of the database alone cannot sign as StudyShelf. A rotated-out key stays in the JWKS for a grace
period, so responses signed just before the rotation still verify at the LMS.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select
from sqlalchemy.orm import Session

from studyshelf.core.clock import utcnow
from studyshelf.core.ids import new_secret
from studyshelf.lti.models import ToolKey

KEY_BITS = 2048


def _passphrase(secret_key: str) -> bytes:
    return hmac.new(secret_key.encode(), b"studyshelf-lti-tool-key-v1", hashlib.sha256).hexdigest().encode()


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def public_jwk(private: rsa.RSAPrivateKey, kid: str) -> dict[str, str]:
    numbers = private.public_key().public_numbers()
    return {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid, "n": _b64(numbers.n), "e": _b64(numbers.e)}


def create_key(db: Session, *, secret_key: str) -> ToolKey:
    """Generate a new RSA-2048 key; it becomes the active one."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    kid = new_secret(12)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(_passphrase(secret_key)),
    )
    key = ToolKey(kid=kid, private_pem=pem.decode(), public_jwk=json.dumps(public_jwk(private, kid)))
    db.add(key)
    db.flush()
    return key


def active_key(db: Session) -> ToolKey | None:
    query = select(ToolKey).where(ToolKey.retired_at.is_(None)).order_by(ToolKey.created_at.desc()).limit(1)
    return db.scalars(query).first()


def ensure_key(db: Session, *, secret_key: str) -> ToolKey:
    """The active key, creating the first one when there is none."""
    return active_key(db) or create_key(db, secret_key=secret_key)


def rotate(db: Session, *, secret_key: str) -> ToolKey:
    """Add a new active key; the previous ones retire now and leave the JWKS after the grace period."""
    now = utcnow()
    for old in db.scalars(select(ToolKey).where(ToolKey.retired_at.is_(None))):
        old.retired_at = now
    db.flush()
    return create_key(db, secret_key=secret_key)


def published_keys(db: Session, *, grace_days: int) -> list[ToolKey]:
    """Keys in the JWKS: active ones, and retired ones still inside the grace period (newest first)."""
    cutoff = utcnow() - timedelta(days=grace_days)
    query = select(ToolKey).where((ToolKey.retired_at.is_(None)) | (ToolKey.retired_at > cutoff))
    return list(db.scalars(query.order_by(ToolKey.created_at.desc())))


def list_keys(db: Session) -> list[ToolKey]:
    return list(db.scalars(select(ToolKey).order_by(ToolKey.created_at.desc())))


def jwks(db: Session, *, grace_days: int) -> dict[str, Any]:
    return {"keys": [json.loads(k.public_jwk) for k in published_keys(db, grace_days=grace_days)]}


def signing_key(db: Session, *, secret_key: str) -> tuple[ToolKey, rsa.RSAPrivateKey]:
    """The active key and its private half; a key sealed under an older secret key is replaced."""
    key = ensure_key(db, secret_key=secret_key)
    try:
        return key, private_key(key, secret_key=secret_key)
    except ValueError:  # STUDYSHELF_SECRET_KEY changed since the key was made
        key = rotate(db, secret_key=secret_key)
        return key, private_key(key, secret_key=secret_key)


def private_key(key: ToolKey, *, secret_key: str) -> rsa.RSAPrivateKey:
    loaded = serialization.load_pem_private_key(key.private_pem.encode(), password=_passphrase(secret_key))
    assert isinstance(loaded, rsa.RSAPrivateKey)
    return loaded
