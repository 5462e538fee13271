"""Tool keys: JWKS at both addresses, rotation by pre-publication with a grace period, private keys sealed."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient

from studyshelf.core.db import unit_of_work
from studyshelf.core.errors import Conflict
from studyshelf.core.keys import KeyRing, Purpose
from studyshelf.lti import keys
from studyshelf.services import Services
from tests.lti.conftest import Clock


def test_jwks_publishes_one_rsa_key_at_both_addresses(app_client: TestClient) -> None:
    first = app_client.get("/lti/jwks")
    assert first.status_code == 200
    (key,) = first.json()["keys"]
    assert key["kty"] == "RSA"
    assert key["alg"] == "RS256"
    assert key["use"] == "sig"
    assert key["kid"]
    assert "d" not in key
    assert app_client.get("/.well-known/jwks.json").json() == first.json()


def _kids(client: TestClient) -> list[str]:
    return [k["kid"] for k in client.get("/lti/jwks").json()["keys"]]


def _signing(services: Services) -> str:
    with unit_of_work(services.write_sessions) as db:
        key, _private = keys.signing_key(db, keys=services.keys, now=services.clock.now())
        return key.kid


def test_rotation_publishes_first_then_signs_then_retires(
    services: Services, app_client: TestClient, clock: Clock
) -> None:
    settings = services.settings
    first = app_client.get("/lti/jwks")
    assert first.headers["cache-control"] == f"public, max-age={settings.lti_jwks_cache_seconds}"
    (old_kid,) = _kids(app_client)
    with unit_of_work(services.write_sessions) as db:
        new_kid = keys.rotate(
            db, keys=services.keys, jwks_cache_seconds=settings.lti_jwks_cache_seconds, now=services.clock.now()
        ).kid
    assert _kids(app_client) == [new_kid, old_kid]  # published at once
    assert _signing(services) == old_kid  # a platform's cached JWKS lacks the new key: the old one still signs
    clock.advance(timedelta(seconds=settings.lti_jwks_cache_seconds))
    assert _signing(services) == old_kid  # cached copies may just be expiring
    clock.advance(keys.SWITCH_MARGIN)
    assert _signing(services) == new_kid
    assert _kids(app_client) == [new_kid, old_kid]  # responses signed just before the switch still verify
    clock.advance(timedelta(days=settings.lti_key_grace_days) - timedelta(seconds=1))
    assert _kids(app_client) == [new_kid, old_kid]
    clock.advance(timedelta(seconds=2))
    assert _kids(app_client) == [new_kid]


def test_a_second_rotation_waits_for_the_first_unless_forced(services: Services, clock: Clock) -> None:
    ring, cache = services.keys, services.settings.lti_jwks_cache_seconds
    with unit_of_work(services.write_sessions) as db:
        first = keys.ensure_key(db, keys=ring, now=services.clock.now()).kid
        waiting = keys.rotate(db, keys=ring, jwks_cache_seconds=cache, now=services.clock.now()).kid
        with pytest.raises(Conflict):
            keys.rotate(db, keys=ring, jwks_cache_seconds=cache, now=services.clock.now())
        urgent = keys.rotate(db, keys=ring, jwks_cache_seconds=cache, immediately=True, now=services.clock.now()).kid
        assert keys.signing_key(db, keys=ring, now=services.clock.now())[0].kid == urgent
        states = {k.kid: keys.key_status(k, grace_days=7, now=services.clock.now()).state for k in keys.list_keys(db)}
    assert states == {first: "retiring", waiting: "retiring", urgent: "signing"}


def test_private_key_is_stored_encrypted(services: Services) -> None:
    with unit_of_work(services.write_sessions) as db:
        key = keys.ensure_key(db, keys=services.keys, now=services.clock.now())
        assert "ENCRYPTED PRIVATE KEY" in key.private_pem
        assert keys.private_key(key, keys=services.keys, now=services.clock.now()).key_size == 2048


def test_a_key_sealed_under_an_old_secret_is_replaced(services: Services) -> None:
    with unit_of_work(services.write_sessions) as db:
        old = keys.ensure_key(
            db, keys=KeyRing.for_install("an-older-secret-key-that-was-replaced-000"), now=services.clock.now()
        )
        key, private = keys.signing_key(db, keys=services.keys, now=services.clock.now())
        assert key.kid != old.kid
        assert private.key_size == 2048


def test_a_key_sealed_under_the_passphrase_of_before_the_key_service_is_kept_and_sealed_again(
    services: Services,
) -> None:
    secret = services.settings.secret_key
    old_passphrase = hmac.new(secret.encode(), b"studyshelf-lti-tool-key-v1", hashlib.sha256).hexdigest().encode()
    with unit_of_work(services.write_sessions) as db:
        key = keys.ensure_key(db, keys=services.keys, now=services.clock.now())
        private = keys.private_key(key, keys=services.keys, now=services.clock.now())
        key.private_pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(old_passphrase),
        ).decode()
        db.flush()
        signing, unsealed = keys.signing_key(db, keys=services.keys, now=services.clock.now())
        assert signing.kid == key.kid  # platforms keep verifying: no emergency rotation
        assert unsealed.private_numbers() == private.private_numbers()
        with pytest.raises(ValueError, match="password"):
            serialization.load_pem_private_key(signing.private_pem.encode(), password=old_passphrase)
        current = services.keys.mac(Purpose.LTI_TOOL_KEY, b"").hex().encode()
        assert serialization.load_pem_private_key(signing.private_pem.encode(), password=current) is not None
