"""Registering platforms: manual (API), dynamic registration round trip, and the admin's tool configuration."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from studyshelf.core.db import unit_of_work
from studyshelf.delivery.links import get_policy, policy_origins
from studyshelf.partners.models import Role
from studyshelf.services import Services
from tests.conftest import World
from tests.html import parse_html
from tests.lti.conftest import Campus, register, registration_url
from tests.lti.platform import Simulator


def _registration_url(campus: Campus) -> str:
    response = campus.admin.client.get("/api/v1/lti/tool-configuration", params={"org_id": str(campus.university.id)})
    assert response.status_code == 200
    body = response.json()
    assert body["manual"]["oidc_login_url"] == "http://testserver/lti/login"
    assert body["manual"]["jwks_url"] == "http://testserver/lti/jwks"
    assert body["canvas_developer_key"]["oidc_initiation_url"] == "http://testserver/lti/login"
    assert body["canvas_developer_key"]["extensions"][0]["privacy_level"] == "anonymous"
    assert body["canvas_developer_key"]["custom_fields"] == {
        "resource_link_history": "$ResourceLink.id.history",
        "context_history": "$Context.id.history",
    }
    assert "registration_url" not in body  # a GET mints no bearer link: POST /registration-invites does
    return registration_url(campus)


def test_dynamic_registration_round_trip(campus: Campus, simulator: Simulator, services: Services) -> None:
    platform = simulator.platform("moodle")
    url = _registration_url(campus)
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    query |= {"openid_configuration": platform.base + "/.well-known/openid-configuration", "registration_token": "tok"}
    response = campus.lms.get("/lti/register", params=query)
    assert response.status_code == 200, response.text
    assert parse_html(response).select_one("[data-lti-close]")
    assert platform.registration_tokens == ["tok"]
    (sent,) = platform.registrations
    tool = sent["https://purl.imsglobal.org/spec/lti-tool-configuration"]
    assert tool["target_link_uri"] == "http://testserver/lti/launch"
    assert {m["type"] for m in tool["messages"]} == {"LtiResourceLinkRequest", "LtiDeepLinkingRequest"}
    assert tool["custom_parameters"]["resource_link_history"] == "$ResourceLink.id.history"
    assert sent["initiate_login_uri"] == "http://testserver/lti/login"
    assert sent["redirect_uris"] == ["http://testserver/lti/launch"]
    listed = campus.admin.client.get("/api/v1/lti/registrations", params={"org_id": str(campus.university.id)})
    (stored,) = listed.json()
    assert stored["client_id"] == platform.client_id
    assert stored["deployment_ids"] == [platform.deployment_id]
    assert stored["dynamic"] is True
    with unit_of_work(services.read_sessions) as db:
        assert platform.lms_origin in policy_origins(get_policy(db, org_id=campus.university.id))


def test_manual_registration_rules(campus: Campus, simulator: Simulator, world: World) -> None:
    platform = simulator.platform("canvas")
    register(campus, platform)
    again = campus.admin.client.post(
        "/api/v1/lti/registrations",
        json={"org_id": str(campus.university.id), **platform.registration_spec()},
        headers=campus.admin.headers(),
    )
    assert again.status_code == 409
    insecure = {**platform.registration_spec(), "client_id": "other", "jwks_url": "http://lms.example/jwks"}
    refused = campus.admin.client.post(
        "/api/v1/lti/registrations",
        json={"org_id": str(campus.university.id), **insecure},
        headers=campus.admin.headers(),
    )
    assert refused.status_code == 422
    outsider = world.member(campus.university, Role.VIEWER)
    forbidden = outsider.client.get("/api/v1/lti/registrations", params={"org_id": str(campus.university.id)})
    assert forbidden.status_code == 403
