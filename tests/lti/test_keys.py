"""Tool keys: JWKS at both addresses, rotation with a grace period, private keys never in clear text."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from studyshelf.core.db import unit_of_work
from studyshelf.lti import keys
from studyshelf.lti.models import ToolKey
from studyshelf.services import Services


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


def test_rotation_keeps_the_previous_key_for_the_grace_period(services: Services, app_client: TestClient) -> None:
    old_kid = app_client.get("/lti/jwks").json()["keys"][0]["kid"]
    with unit_of_work(services.write_sessions) as db:
        new = keys.rotate(db, secret_key=services.settings.secret_key)
        new_kid = new.kid
    kids = [k["kid"] for k in app_client.get("/lti/jwks").json()["keys"]]
    assert kids == [new_kid, old_kid]
    with unit_of_work(services.write_sessions) as db:
        old = db.get(ToolKey, old_kid)
        assert old is not None
        assert old.retired_at is not None
        old.retired_at -= timedelta(days=services.settings.lti_key_grace_days, seconds=1)
    assert [k["kid"] for k in app_client.get("/lti/jwks").json()["keys"]] == [new_kid]


def test_private_key_is_stored_encrypted(services: Services) -> None:
    with unit_of_work(services.write_sessions) as db:
        key = keys.ensure_key(db, secret_key=services.settings.secret_key)
        assert "ENCRYPTED PRIVATE KEY" in key.private_pem
        assert keys.private_key(key, secret_key=services.settings.secret_key).key_size == 2048


def test_a_key_sealed_under_an_old_secret_is_replaced(services: Services) -> None:
    with unit_of_work(services.write_sessions) as db:
        old = keys.ensure_key(db, secret_key="an-older-secret-key-that-was-replaced-000")
        key, private = keys.signing_key(db, secret_key=services.settings.secret_key)
        assert key.kid != old.kid
        assert private.key_size == 2048
