"""A simulated LMS platform (Moodle- or Canvas-shaped): its own RSA keys, JWKS, OpenID configuration and
registration endpoint, served over real HTTP (uvicorn in a thread), and the messages it sends."""

from __future__ import annotations

import base64
import html
import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
DL_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
CANVAS_HINT_KEY = "canvas-signs-its-own-message-hints-32b"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class Platform:
    """One LMS: Moodle (issuer = its own address) or Canvas (the shared cloud issuer)."""

    family: str  # "moodle" | "canvas"
    base: str  # where the simulator serves this platform, e.g. http://127.0.0.1:PORT/p/moodle1
    client_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    deployment_id: str = "1"
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    kid: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    registrations: list[dict[str, Any]] = field(default_factory=list)
    registration_tokens: list[str | None] = field(default_factory=list)
    launch_extra: dict[str, Any] = field(default_factory=dict)  # claims the auth endpoint adds (custom target)

    @property
    def issuer(self) -> str:
        return "https://canvas.instructure.com" if self.family == "canvas" else self.base

    @property
    def lms_origin(self) -> str:
        """The host whose pages frame the tool."""
        return "https://school.instructure.com" if self.family == "canvas" else self.base.split("/p/")[0]

    @property
    def jwks_url(self) -> str:
        return self.base + "/jwks"

    @property
    def auth_url(self) -> str:
        return self.base + ("/api/lti/authorize_redirect" if self.family == "canvas" else "/mod/lti/auth.php")

    @property
    def token_url(self) -> str:
        return self.base + ("/login/oauth2/token" if self.family == "canvas" else "/mod/lti/token.php")

    def jwk(self) -> dict[str, str]:
        numbers = self.key.public_key().public_numbers()
        return {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid, "n": _b64(numbers.n), "e": _b64(numbers.e)}

    def registration_spec(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "client_id": self.client_id,
            "deployment_ids": [self.deployment_id],
            "auth_url": self.auth_url,
            "token_url": self.token_url,
            "jwks_url": self.jwks_url,
            "name": f"Test {self.family}",
        }

    def login_params(self, target_link_uri: str, *, storage_target: bool = False) -> dict[str, str]:
        """The login initiation as the real platform sends it (field-facts §2.1 and §2.2)."""
        params = {"iss": self.issuer, "target_link_uri": target_link_uri, "client_id": self.client_id}
        if self.family == "moodle":
            params |= {
                "login_hint": "2",
                "lti_message_hint": json.dumps({"cmid": 7, "launchid": "ltilaunch1_" + uuid.uuid4().hex[:8]}),
                "lti_deployment_id": self.deployment_id,
            }
        else:
            params |= {
                "login_hint": uuid.uuid4().hex,
                "lti_message_hint": jwt.encode(
                    {"verifier": uuid.uuid4().hex}, "canvas-internal-secret-of-32-bytes!!", algorithm="HS256"
                ),
                "lti_deployment_id": self.deployment_id,
                "canvas_region": "us-east-1",
                "canvas_environment": "prod",
            }
            if storage_target:
                params["lti_storage_target"] = "post_message_forwarding"
        return params

    def authorize(self, redirect: str) -> dict[str, str]:
        """Check the auth request like Moodle's auth.php does; return its parameters."""
        parts = urlsplit(redirect)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == self.auth_url
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        assert query["scope"] == "openid"
        assert query["response_type"] == "id_token"
        assert query["response_mode"] == "form_post"
        assert query["prompt"] == "none"
        assert query["client_id"] == self.client_id
        assert query["state"]
        assert query["nonce"]
        return query

    def claims(
        self, *, nonce: str, message_type: str = "LtiResourceLinkRequest", extra: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A realistic id_token claim set for this platform."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.client_id,
            "sub": str(uuid.uuid4()) if self.family == "canvas" else "2",
            "iat": now,
            "exp": now + 3600,
            "nonce": nonce,
            CLAIM + "message_type": message_type,
            CLAIM + "version": "1.3.0",
            CLAIM + "deployment_id": self.deployment_id,
            CLAIM + "target_link_uri": "http://testserver/lti/launch",
            CLAIM + "roles": [LEARNER],
            CLAIM + "context": {"id": "c-42", "label": "BIO101", "title": "Biology 101", "type": ["CourseOffering"]},
            CLAIM + "launch_presentation": {
                "document_target": "iframe",
                "return_url": f"{self.lms_origin}/courses/42/external_content/success/external_tool_redirect",
                "locale": "en",
            },
            "name": "Ada Lovelace",
            "email": "ada@example.edu",
        }
        if message_type == "LtiResourceLinkRequest":
            claims[CLAIM + "resource_link"] = {"id": "rl-" + uuid.uuid4().hex[:8], "title": "Week 1"}
        if self.family == "canvas":
            claims["azp"] = self.client_id
            claims[CLAIM + "tool_platform"] = {
                "guid": "x:canvas-lms",
                "product_family_code": "canvas",
                "name": "School",
            }
            claims[CLAIM + "lti11_legacy_user_id"] = "legacy-" + uuid.uuid4().hex[:8]
            claims[CLAIM + "lti1p1"] = {"user_id": claims[CLAIM + "lti11_legacy_user_id"]}
            claims["https://www.instructure.com/placement"] = "link_selection"
        else:
            claims[CLAIM + "tool_platform"] = {
                "guid": "moodle.example",
                "product_family_code": "moodle",
                "name": "Moodle",
            }
            claims[CLAIM + "lis"] = {"person_sourcedid": "", "course_offering_sourcedid": ""}
        claims.update(extra or {})
        return {k: v for k, v in claims.items() if v is not None}

    def sign(self, claims: dict[str, Any], *, kid: str | None = None, key: Any = None, alg: str = "RS256") -> str:
        return jwt.encode(claims, key or self.key, algorithm=alg, headers={"kid": kid or self.kid})

    def deep_linking_settings(self, **overrides: Any) -> dict[str, Any]:
        if self.family == "moodle":
            settings = {
                "deep_link_return_url": f"{self.base}/mod/lti/contentitem_return.php?course=42&id=1&sesskey=abc",
                "accept_types": ["ltiResourceLink"],
                "accept_presentation_document_targets": ["frame", "iframe", "window"],
                "accept_multiple": True,
                "auto_create": False,
                "title": "",
                "text": "",
                "data": "moodle-opaque-data",
            }
        else:
            settings = {
                "deep_link_return_url": f"{self.lms_origin}/courses/42/deep_linking_response?modal=true",
                "accept_types": ["ltiResourceLink"],
                "accept_presentation_document_targets": ["iframe", "window"],
                "accept_multiple": True,
                "data": "canvas-opaque-data",
            }
        settings.update(overrides)
        return settings


class Simulator:
    """Serves every registered platform's JWKS, OpenID configuration and registration endpoint."""

    def __init__(self) -> None:
        self.platforms: dict[str, Platform] = {}
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = Starlette(
            routes=[
                Route("/p/{name}/jwks", self._jwks),
                Route("/p/{name}/.well-known/openid-configuration", self._openid),
                Route("/p/{name}/register", self._register, methods=["POST"]),
                Route("/lms/{name}", self._lms_page),
                Route("/p/{name}/mod/lti/auth.php", self._authorize),
                Route("/p/{name}/api/lti/authorize_redirect", self._authorize),
            ]
        )
        self.extra_pages: dict[str, str] = {}
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the platform simulator did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)

    def platform(self, family: str, *, host: str = "127.0.0.1") -> Platform:
        name = f"{family}{len(self.platforms) + 1}"
        made = Platform(family=family, base=f"http://{host}:{self.port}/p/{name}")
        self.platforms[name] = made
        return made

    def _get(self, request: Request) -> Platform:
        return self.platforms[request.path_params["name"]]

    async def _jwks(self, request: Request) -> Response:
        return JSONResponse({"keys": [self._get(request).jwk()]})

    async def _openid(self, request: Request) -> Response:
        p = self._get(request)
        return JSONResponse(
            {
                "issuer": p.issuer,
                "authorization_endpoint": p.auth_url,
                "token_endpoint": p.token_url,
                "jwks_uri": p.jwks_url,
                "registration_endpoint": p.base + "/register",
                "scopes_supported": ["openid"],
                "response_types_supported": ["id_token"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "https://purl.imsglobal.org/spec/lti-platform-configuration": {
                    "product_family_code": p.family,
                    "version": "4.3",
                    "messages_supported": [{"type": "LtiResourceLinkRequest"}, {"type": "LtiDeepLinkingRequest"}],
                },
            }
        )

    async def _register(self, request: Request) -> Response:
        p = self._get(request)
        auth = request.headers.get("authorization", "")
        p.registration_tokens.append(auth.removeprefix("Bearer ") or None)
        body = await request.json()
        p.registrations.append(body)
        answer = {**body, "client_id": p.client_id}
        tool = dict(body.get("https://purl.imsglobal.org/spec/lti-tool-configuration", {}))
        tool["deployment_id"] = p.deployment_id
        answer["https://purl.imsglobal.org/spec/lti-tool-configuration"] = tool
        return JSONResponse(answer)

    async def _authorize(self, request: Request) -> Response:
        """The platform's auth endpoint: checks the request, then auto-posts id_token + state to redirect_uri."""
        p = self._get(request)
        query = p.authorize(str(request.url))
        token = p.sign(p.claims(nonce=query["nonce"], extra=p.launch_extra))
        fields = {"id_token": token, "state": query["state"]}
        inputs = "".join(f'<input type="hidden" name="{k}" value="{html.escape(v)}">' for k, v in fields.items())
        page = (
            f'<form id="f" method="post" action="{html.escape(query["redirect_uri"])}">{inputs}</form>'
            '<script>document.getElementById("f").submit()</script>'
        )
        return HTMLResponse(page)

    async def _lms_page(self, request: Request) -> Response:
        return HTMLResponse(self.extra_pages.get(request.path_params["name"], "<p>no page</p>"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
