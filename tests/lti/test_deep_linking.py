"""Deep Linking 2.0: the picker in the LMS frame and the signed LtiDeepLinkingResponse, verified with our JWKS."""

from __future__ import annotations

from typing import Any

import httpx
import jwt
import pytest

from tests.html import attr, form_fields, parse_html
from tests.library.support import uploaded
from tests.lti.conftest import LAUNCH, Campus, launch, login, register
from tests.lti.platform import CLAIM, DL_CLAIM, INSTRUCTOR, Platform, Simulator

DL = "LtiDeepLinkingRequest"


def _picker(campus: Campus, platform: Platform, **settings: Any) -> httpx.Response:
    started = login(campus.lms, platform)
    claims = platform.claims(
        nonce=started.nonce,
        message_type=DL,
        extra={
            CLAIM + "roles": [INSTRUCTOR],
            DL_CLAIM + "deep_linking_settings": platform.deep_linking_settings(**settings),
        },
    )
    return launch(campus.lms, platform, platform.sign(claims), started.state, follow=False)


def _form(html: str) -> tuple[str, str]:
    form = parse_html(html).one('form[method="post"]')
    return attr(form, "action"), form_fields(form)["t"]


def _verify(campus: Campus, platform: Platform, html: str) -> dict[str, Any]:
    """The auto-posted JWT, verified against StudyShelf's published JWKS as the LMS does."""
    token = parse_html(html).attr('input[name="JWT"]', "value")
    jwks = campus.lms.get("/lti/jwks").json()
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == kid)).key
    claims: dict[str, Any] = jwt.decode(token, key, algorithms=["RS256"], audience=platform.issuer)
    assert claims["iss"] == platform.client_id
    assert claims[CLAIM + "message_type"] == "LtiDeepLinkingResponse"
    assert claims[CLAIM + "version"] == "1.3.0"
    assert claims[CLAIM + "deployment_id"] == platform.deployment_id
    assert claims["nonce"]
    return claims


@pytest.mark.parametrize("family", ["moodle", "canvas"])
def test_deep_linking_round_trip(family: str, campus: Campus, simulator: Simulator) -> None:
    platform = simulator.platform(family)
    register(campus, platform)
    picker = _picker(campus, platform)
    assert picker.status_code == 303
    page = campus.lms.get(picker.headers["location"])
    assert page.status_code == 200
    assert "Biology" in page.text  # the shared course folder is one of the roots
    assert platform.lms_origin in page.headers["content-security-policy"]
    action, token = _form(page.text)
    answer = campus.lms.post(action, data={"t": token, "item": f"file:{campus.notes['id']}", "title": "Read first"})
    assert answer.status_code == 200
    settings = platform.deep_linking_settings()
    assert settings["deep_link_return_url"] in [attr(form, "action") for form in parse_html(answer).select("form")]
    claims = _verify(campus, platform, answer.text)
    assert claims[DL_CLAIM + "data"] == settings["data"]
    (item,) = claims[DL_CLAIM + "content_items"]
    assert item["type"] == "ltiResourceLink"
    assert item["title"] == "Read first"
    assert item["custom"] == {"studyshelf_target": f"file:{campus.notes['id']}"}
    assert item["url"].startswith(LAUNCH)
    assert item["iframe"]["width"] > 0
    assert "/m/" not in str(item)  # no media token baked into LMS content
    reused = campus.lms.post(action, data={"t": token, "item": f"file:{campus.notes['id']}"})
    assert reused.status_code == 403


def test_folder_expands_to_one_item_per_file_and_search_finds_names(campus: Campus, simulator: Simulator) -> None:
    uploaded(campus.publisher, campus.course["id"], "quiz.txt", b"quiz")
    platform = simulator.platform("moodle")
    register(campus, platform)
    page = campus.lms.get(_picker(campus, platform).headers["location"])
    action, token = _form(page.text)
    found = campus.lms.get(action, params={"t": token, "q": "QUIZ"})
    assert "quiz.txt" in found.text
    assert "notes.txt" not in found.text
    inside = campus.lms.get(action, params={"t": token, "folder": campus.course["id"]})
    assert "notes.txt" in inside.text
    answer = campus.lms.post(
        action, data={"t": token, "item": f"folder:{campus.course['id']}", "expand": campus.course["id"]}
    )
    items = _verify(campus, platform, answer.text)[DL_CLAIM + "content_items"]
    assert sorted(i["title"] for i in items) == ["notes.txt", "quiz.txt"]


def test_single_item_placement_refuses_several(campus: Campus, simulator: Simulator) -> None:
    platform = simulator.platform("canvas")
    register(campus, platform)
    page = campus.lms.get(_picker(campus, platform, accept_multiple=False).headers["location"])
    assert parse_html(page).select_one('input[type="radio"]')
    action, token = _form(page.text)
    answer = campus.lms.post(
        action, data={"t": token, "item": [f"file:{campus.notes['id']}", f"folder:{campus.course['id']}"]}
    )
    assert answer.status_code == 422
    assert "single item" in answer.text


def test_placement_without_resource_links_gets_a_clear_message(campus: Campus, simulator: Simulator) -> None:
    platform = simulator.platform("canvas")
    register(campus, platform)
    response = _picker(campus, platform, accept_types=["file"])
    assert response.status_code == 400
    assert "ltiResourceLink" in response.text


def test_picker_token_is_required(campus: Campus, simulator: Simulator) -> None:
    platform = simulator.platform("moodle")
    register(campus, platform)
    location = _picker(campus, platform).headers["location"]
    assert campus.lms.get(location.split("?")[0] + "?t=forged").status_code == 403
