"""Client addresses and HTTPS behind trusted proxies, baseline security headers, secret-key refusal."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from starlette.types import Scope

from studyshelf.settings import Settings
from studyshelf.web.security import client_ip, is_https

TRUSTED = ["10.0.0.0/8", "2001:db8::/32"]


def scope(peer: str | None, *, scheme: str = "http", headers: dict[str, str] | None = None) -> Scope:
    return {
        "type": "http",
        "scheme": scheme,
        "client": (peer, 1234) if peer else None,
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()],
    }


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "trusted", "expected"),
    [
        ("192.0.2.1", None, TRUSTED, "192.0.2.1"),
        ("192.0.2.1", "198.51.100.1", TRUSTED, "192.0.2.1"),  # an untrusted peer cannot claim another address
        ("10.0.0.1", "198.51.100.1", TRUSTED, "198.51.100.1"),
        ("10.0.0.1", "198.51.100.1, 10.0.0.2", TRUSTED, "198.51.100.1"),  # skip our own proxies
        ("10.0.0.1", "6.6.6.6, 198.51.100.1", TRUSTED, "198.51.100.1"),  # the left-most hop is the client's to forge
        ("10.0.0.1", "198.51.100.1", [], "10.0.0.1"),
        ("10.0.0.1", None, TRUSTED, "10.0.0.1"),
        ("2001:db8::1", "2001:db9::5", TRUSTED, "2001:db9::5"),
        ("testclient", "198.51.100.1", TRUSTED, "testclient"),
        (None, None, TRUSTED, "unknown"),
    ],
)
def test_client_ip(peer: str | None, forwarded_for: str | None, trusted: list[str], expected: str) -> None:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else None
    assert client_ip(scope(peer, headers=headers), trusted) == expected


@pytest.mark.parametrize(
    ("peer", "scheme", "proto", "trusted", "expected"),
    [
        ("192.0.2.1", "https", None, [], True),
        ("192.0.2.1", "http", None, TRUSTED, False),
        ("192.0.2.1", "http", "https", TRUSTED, False),  # not from a trusted proxy
        ("10.9.9.9", "http", "https", TRUSTED, True),
        ("10.9.9.9", "http", "HTTPS", TRUSTED, True),
        ("10.9.9.9", "http", "http", TRUSTED, False),
        ("10.9.9.9", "http", "https", [], False),
        ("testclient", "http", "https", TRUSTED, False),
    ],
)
def test_is_https(peer: str, scheme: str, proto: str | None, trusted: list[str], expected: bool) -> None:
    headers = {"X-Forwarded-Proto": proto} if proto else None
    assert is_https(scope(peer, scheme=scheme, headers=headers), trusted) is expected


@pytest.mark.parametrize("path", ["/healthz", "/api/v1/me", "/api/openapi.json", "/no/such/page"])
def test_security_headers_on_every_response(app_client: TestClient, path: str) -> None:
    response = app_client.get(path)
    assert "frame-ancestors 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert response.headers["x-request-id"]


def test_production_refuses_a_short_secret(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="at least 32"):
        Settings(environment="production", data_dir=tmp_path, secret_key="short")
    assert Settings(environment="production", data_dir=tmp_path, secret_key="x" * 48).secret_key == "x" * 48


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STUDYSHELF_ENVIRONMENT", "production")
    monkeypatch.setenv("STUDYSHELF_SECRET_KEY", "too-short")
    with pytest.raises(ValidationError):
        Settings(data_dir=tmp_path)
    monkeypatch.setenv("STUDYSHELF_SECRET_KEY", "k" * 40)
    monkeypatch.setenv("STUDYSHELF_MAX_UPLOAD_BYTES", "1234")
    settings = Settings(data_dir=tmp_path)
    assert settings.max_upload_bytes == 1234
    assert settings.secret_key == "k" * 40


def test_https_base_url_means_secure_cookies(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path, base_url="https://shelf.example").secure_cookies
    assert not Settings(data_dir=tmp_path, base_url="http://127.0.0.1:8000").secure_cookies
