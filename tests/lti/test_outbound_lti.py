"""Dynamic registration and platform JWKS go through the outbound client: what a platform answers is never
shown, internal addresses are off limits unless the operator allowed them, and a redirect is not followed."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from studyshelf.app import create_app
from studyshelf.core.outbound import OutboundClient
from studyshelf.lti.platform_keys import JwksUnavailable, PlatformKeys
from studyshelf.services import Services, build_services
from tests.lti.conftest import Campus, registration_url
from tests.lti.platform import Simulator

SECRET = "root:x:0:0:internal-metadata-token-7f3a"


@dataclass
class FakePlatform:
    """An LMS on loopback whose registration endpoint fails with a body that must never be shown."""

    base: str = ""
    hits: list[str] = field(default_factory=list)
    redirect_config_to: str = ""

    @property
    def config_url(self) -> str:
        return self.base + "/.well-known/openid-configuration"


@pytest.fixture
def fake() -> Iterator[FakePlatform]:
    state = FakePlatform()

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            state.hits.append(f"GET {self.path}")
            if state.redirect_config_to:
                self._send(302, b"", {"Location": state.redirect_config_to})
                return
            config = {
                "issuer": state.base,
                "authorization_endpoint": state.base + "/auth",
                "jwks_uri": state.base + "/jwks",
                "registration_endpoint": state.base + "/register",
            }
            self._send(200, json.dumps(config).encode(), {"Content-Type": "application/json"})

        def do_POST(self) -> None:
            state.hits.append(f"POST {self.path}")
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._send(500, f"<pre>{SECRET}</pre>".encode(), {"Content-Type": "text/html"})

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def _register_query(campus: Campus, config_url: str) -> dict[str, str]:
    url = registration_url(campus)
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    return query | {"openid_configuration": config_url}


def test_the_error_page_never_shows_what_the_platform_answered(campus: Campus, fake: FakePlatform) -> None:
    response = campus.lms.get("/lti/register", params=_register_query(campus, fake.config_url))
    assert fake.hits == ["GET /.well-known/openid-configuration", "POST /register"]
    assert 400 <= response.status_code < 500
    assert "could not reach the platform: HTTP 500" in response.text
    assert SECRET not in response.text
    assert "internal-metadata" not in response.text


def test_a_redirect_from_the_platform_is_not_followed(campus: Campus, fake: FakePlatform) -> None:
    fake.redirect_config_to = "http://127.0.0.11:9/elsewhere"
    response = campus.lms.get("/lti/register", params=_register_query(campus, fake.config_url))
    assert "HTTP 302" in response.text
    assert fake.hits == ["GET /.well-known/openid-configuration"]


def test_by_default_registration_cannot_reach_an_internal_address(
    campus: Campus, fake: FakePlatform, services: Services
) -> None:
    strict = build_services(services.settings.model_copy(update={"outbound_allowed_networks": []}))
    try:
        lms = TestClient(create_app(services=strict), base_url="http://testserver")
        response = lms.get("/lti/register", params=_register_query(campus, fake.config_url))
        assert "address not allowed" in response.text
        assert fake.hits == []
    finally:
        strict.warehouse.close()
        strict.events.close()
        strict.engine.dispose()


def test_a_platform_key_set_on_an_internal_address_is_fetched_only_when_allowed(simulator: Simulator) -> None:
    platform = simulator.platform("moodle")  # serves its JWKS on 127.0.0.1
    with pytest.raises(JwksUnavailable, match="could not reach the platform's key set: address not allowed"):
        PlatformKeys().key_for(OutboundClient(), platform.jwks_url, platform.kid, max_age=300)
    allowed = OutboundClient(allowed_networks=["127.0.0.1/32"])
    assert PlatformKeys().key_for(allowed, platform.jwks_url, platform.kid, max_age=300) is not None
