"""LTI Dynamic Registration 1.0: read the platform's OpenID configuration, register, store the result."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from studyshelf.core.errors import Invalid
from studyshelf.core.outbound import OutboundClient, OutboundError, OutboundResponse
from studyshelf.delivery.embed import origin_of
from studyshelf.lti.models import Registration
from studyshelf.lti.registrations import RegistrationSpec, check_url, create_registration
from studyshelf.lti.tool_config import client_registration
from studyshelf.settings import Settings

PLATFORM_CONFIG = "https://purl.imsglobal.org/spec/lti-platform-configuration"
TOOL_CONFIG = "https://purl.imsglobal.org/spec/lti-tool-configuration"


def _json(response: OutboundResponse, what: str) -> dict[str, Any]:
    # Only the shape of the answer is ever reported, never its text: it is whatever the URL returned.
    try:
        body = response.json()
    except ValueError as exc:
        raise Invalid(f"The platform's {what} answer is not JSON.") from exc
    if not isinstance(body, dict):
        raise Invalid(f"The platform's {what} answer is not a JSON object.")
    return body


def fetch_configuration(settings: Settings, client: OutboundClient, url: str) -> dict[str, Any]:
    """The platform's OpenID configuration, checked: its issuer shares the configuration URL's origin."""
    loopback = settings.environment != "production"
    url = check_url(url, what="openid_configuration", allow_loopback_http=loopback)
    try:
        config = _json(client.get(url, what="the platform"), "OpenID configuration request")
    except OutboundError as exc:
        raise Invalid(f"Could not read the platform's configuration ({exc}).") from exc
    for name in ("issuer", "authorization_endpoint", "registration_endpoint", "jwks_uri"):
        if not isinstance(config.get(name), str):
            raise Invalid(f"The platform's configuration lacks {name}.")
    issuer = check_url(config["issuer"], what="issuer", allow_loopback_http=loopback)
    if origin_of(issuer) != origin_of(url) and origin_of(issuer) != "https://canvas.instructure.com":
        raise Invalid("The platform's issuer does not match the address of its configuration.")
    return config


def register(
    db: Session,
    *,
    settings: Settings,
    client: OutboundClient,
    org_id: uuid.UUID,
    openid_configuration: str,
    registration_token: str | None,
) -> Registration:
    """Register StudyShelf with the platform and keep the registration for the organisation.

    Both requests go out before the session's first statement, so no write lock is held while waiting."""
    config = fetch_configuration(settings, client, openid_configuration)
    loopback = settings.environment != "production"
    endpoint = check_url(config["registration_endpoint"], what="registration_endpoint", allow_loopback_http=loopback)
    headers = {"Authorization": f"Bearer {registration_token}"} if registration_token else {}
    try:
        response = client.post_json(endpoint, client_registration(settings), what="the platform", headers=headers)
    except OutboundError as exc:
        raise Invalid(f"Could not register with the platform ({exc}).") from exc
    answer = _json(response, "registration")
    client_id = answer.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        raise Invalid("The platform's registration answer has no client_id.")
    tool = answer.get(TOOL_CONFIG) if isinstance(answer.get(TOOL_CONFIG), dict) else {}
    deployment = tool.get("deployment_id") if isinstance(tool, dict) else None
    platform = config.get(PLATFORM_CONFIG) if isinstance(config.get(PLATFORM_CONFIG), dict) else {}
    family = str(platform.get("product_family_code") or "") if isinstance(platform, dict) else ""
    spec = RegistrationSpec(
        issuer=config["issuer"],
        client_id=client_id,
        auth_url=config["authorization_endpoint"],
        jwks_url=config["jwks_uri"],
        token_url=str(config.get("token_endpoint") or ""),
        deployment_ids=[str(deployment)] if deployment else [],
        name=f"{family.title() or 'LMS'} at {origin_of(config['issuer']) or config['issuer']}",
        product_family=family,
    )
    return create_registration(db, principal=None, org_id=org_id, spec=spec, allow_loopback_http=loopback, dynamic=True)
