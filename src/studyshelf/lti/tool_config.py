"""What a partner admin copies into the LMS: our URLs and the Canvas developer-key JSON (registration URLs: invites)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from studyshelf.lti.launch import CONTEXT_HISTORY_PARAM, DEEP_LINKING, LINK_HISTORY_PARAM, RESOURCE_LINK
from studyshelf.lti.web import jwks_url, launch_url, login_url
from studyshelf.settings import Settings

TOOL_NAME = "StudyShelf"
CLAIMS = ["iss", "sub"]  # no name or e-mail: StudyShelf never needs them
# Canvas fills these in a copied course: a link whose own custom parameters were lost is found by its history.
COPY_HISTORY_FIELDS = {LINK_HISTORY_PARAM: "$ResourceLink.id.history", CONTEXT_HISTORY_PARAM: "$Context.id.history"}


def manual_values(settings: Settings) -> dict[str, str]:
    """The values an LMS admin types in for a manual set-up."""
    return {
        "oidc_login_url": login_url(settings),
        "target_link_uri": launch_url(settings),
        "redirect_uris": launch_url(settings),
        "jwks_url": jwks_url(settings),
        "deep_linking_url": launch_url(settings),
        "domain": urlsplit(settings.base_url).netloc,
    }


def canvas_developer_key(settings: Settings) -> dict[str, Any]:
    """The JSON for Canvas: Admin → Developer Keys → + Developer Key → + LTI Key → Paste JSON."""
    launch = launch_url(settings)
    return {
        "title": TOOL_NAME,
        "description": "Study materials from StudyShelf: documents, video, audio and images.",
        "oidc_initiation_url": login_url(settings),
        "target_link_uri": launch,
        "public_jwk_url": jwks_url(settings),
        "scopes": [],
        "extensions": [
            {
                "platform": "canvas.instructure.com",
                "privacy_level": "anonymous",
                "domain": urlsplit(settings.base_url).hostname,
                "tool_id": "studyshelf",
                "settings": {
                    "placements": [
                        {
                            "placement": "link_selection",
                            "message_type": DEEP_LINKING,
                            "target_link_uri": launch,
                            "text": TOOL_NAME,
                        },
                        {
                            "placement": "editor_button",
                            "message_type": DEEP_LINKING,
                            "target_link_uri": launch,
                            "text": TOOL_NAME,
                        },
                    ]
                },
            }
        ],
        "custom_fields": COPY_HISTORY_FIELDS,
    }


def client_registration(settings: Settings) -> dict[str, Any]:
    """The OpenID client registration with the LTI tool configuration (Dynamic Registration 1.0)."""
    launch = launch_url(settings)
    return {
        "application_type": "web",
        "response_types": ["id_token"],
        "grant_types": ["implicit", "client_credentials"],
        "initiate_login_uri": login_url(settings),
        "redirect_uris": [launch],
        "client_name": TOOL_NAME,
        "jwks_uri": jwks_url(settings),
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": "",
        "https://purl.imsglobal.org/spec/lti-tool-configuration": {
            "domain": urlsplit(settings.base_url).netloc,
            "description": "Study materials from StudyShelf.",
            "target_link_uri": launch,
            "claims": CLAIMS,
            "custom_parameters": COPY_HISTORY_FIELDS,
            "messages": [
                {"type": RESOURCE_LINK, "target_link_uri": launch},
                {"type": DEEP_LINKING, "target_link_uri": launch, "label": "Add StudyShelf material"},
            ],
        },
    }
