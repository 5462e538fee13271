"""Deep Linking 2.0: a picker session per request, and the signed LtiDeepLinkingResponse.

Only `ltiResourceLink` items are returned, and they point back at StudyShelf: media tokens are minted
at view time, never baked into LMS content.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import jwt
from sqlalchemy.orm import Session

from studyshelf.core.clock import as_utc
from studyshelf.core.errors import Invalid, NotFound, PermissionDenied
from studyshelf.core.keys import KeyRing, Purpose, TokenExpired, TokenRefused
from studyshelf.library.listing import children_of
from studyshelf.library.models import File, Folder
from studyshelf.lti import keys as tool_keys
from studyshelf.lti import registrations
from studyshelf.lti.launch import CLAIM, DL_CLAIM, TARGET_PARAM, ValidLaunch
from studyshelf.lti.material import Target, reach
from studyshelf.lti.models import PickerSession, Registration

RESOURCE_LINK_TYPE = "ltiResourceLink"
PICKER_MINUTES = 60
RESPONSE_SECONDS = 300
MAX_ITEMS = 200
FRAME = {"width": 960, "height": 600}


class NotAccepted(Exception):
    """The platform's placement takes no ltiResourceLink items."""

    def __init__(self, accept_types: list[str]) -> None:
        super().__init__(", ".join(accept_types))
        self.accept_types = accept_types


def picker_token(keys: KeyRing, session: PickerSession) -> str:
    """What the picker's pages carry to prove they belong to this session (a key-service token)."""
    return keys.encode(Purpose.LTI_PICKER, str(session.id), as_utc(session.expires_at).timestamp())


def start_picker(db: Session, *, valid: ValidLaunch, now: datetime) -> PickerSession:
    """Open a picker session for a validated LtiDeepLinkingRequest (NotAccepted when links are not wanted)."""
    settings = valid.claims[DL_CLAIM + "deep_linking_settings"]
    accept_types = [str(t) for t in settings.get("accept_types") or []]
    if RESOURCE_LINK_TYPE not in accept_types:
        raise NotAccepted(accept_types)
    return_url = str(settings["deep_link_return_url"])
    registrations.learn_origin(db, registration=valid.registration, url=return_url)
    data = settings.get("data")
    session = PickerSession(
        org_id=valid.registration.org_id,
        registration_id=valid.registration.id,
        deployment_id=valid.deployment_id,
        return_url=return_url[:2000],
        data=data if isinstance(data, str) else None,
        accept_multiple=bool(settings.get("accept_multiple", False)),
        targets=",".join(str(t) for t in settings.get("accept_presentation_document_targets") or [])[:200],
        frame_origins="\n".join(valid.registration.origin_list),
        expires_at=now + timedelta(minutes=PICKER_MINUTES),
    )
    db.add(session)
    db.flush()
    return session


def open_picker(db: Session, *, session_id: uuid.UUID, token: str, keys: KeyRing, now: datetime) -> PickerSession:
    """A live, unused picker session whose token matches, else PermissionDenied / NotFound."""
    session = db.get(PickerSession, session_id)
    if session is None:
        raise NotFound("This selection session is not known. Start again from the LMS.")
    try:
        matches = keys.decode(Purpose.LTI_PICKER, token, now.timestamp()) == str(session_id)
    except TokenExpired:
        matches = True  # the session's own end decides below, with its own message
    except TokenRefused:
        matches = False
    if not matches:
        raise PermissionDenied("This selection session does not match. Start again from the LMS.")
    if session.used_at is not None or session.expires_at <= now:
        raise PermissionDenied("This selection session has ended. Start again from the LMS.")
    return session


@dataclass(frozen=True)
class Choice:
    target: Target
    expand: bool = False  # a folder as one item per file inside it


def _presentation(session: PickerSession) -> dict[str, Any] | None:
    targets = [t for t in session.targets.split(",") if t]
    if not targets or "iframe" in targets:
        return {"iframe": dict(FRAME)}
    if "window" in targets:
        return {"window": {"targetName": "studyshelf"}}
    return None


def _item(base_url: str, target: Target, name: str, session: PickerSession, text: str = "") -> dict[str, Any]:
    item: dict[str, Any] = {
        "type": RESOURCE_LINK_TYPE,
        "title": name[:255],
        "url": f"{base_url}/lti/launch?{urlencode({TARGET_PARAM: str(target)})}",
        "custom": {TARGET_PARAM: str(target)},
    }
    if text:
        item["text"] = text[:1000]
    presentation = _presentation(session)
    if presentation is not None:
        item.update(presentation)
    return item


def content_items(
    db: Session, *, session: PickerSession, choices: list[Choice], title: str, base_url: str, now: datetime
) -> list[dict[str, Any]]:
    """The ltiResourceLink items for the chosen material (re-checked: the partner must still reach it)."""
    items: list[dict[str, Any]] = []
    for choice in choices:
        item = reach(db, org_id=session.org_id, target=choice.target, now=now)
        if not isinstance(item, File | Folder):
            raise Invalid("Some of the chosen material is no longer available. Choose again.")
        if choice.expand and isinstance(item, Folder):
            entries, _cursor = children_of(db, folder=item, limit=MAX_ITEMS)
            items.extend(
                _item(base_url, Target("file", e.id), e.name, session, text=item.name)
                for e in entries
                if e.kind == "file"
            )
        else:
            items.append(_item(base_url, choice.target, item.name, session))
    if not items:
        raise Invalid("Choose at least one file or folder.")
    if len(items) > 1 and not session.accept_multiple:
        raise Invalid("This place in the LMS takes a single item: choose one file or folder.")
    if title.strip() and len(items) == 1:
        items[0]["title"] = title.strip()[:255]
    return items[:MAX_ITEMS]


def response_jwt(
    db: Session,
    *,
    session: PickerSession,
    registration: Registration,
    items: list[dict[str, Any]],
    keys: KeyRing,
    now: datetime,
) -> str:
    """The LtiDeepLinkingResponse, signed RS256 with our active key (its kid is in /lti/jwks)."""
    key, private = tool_keys.signing_key(db, keys=keys, now=now)
    issued = int(now.timestamp())
    claims: dict[str, Any] = {
        "iss": registration.client_id,
        "aud": [registration.issuer],
        "iat": issued,
        "exp": issued + RESPONSE_SECONDS,
        "nonce": uuid.uuid4().hex,
        CLAIM + "deployment_id": session.deployment_id,
        CLAIM + "message_type": "LtiDeepLinkingResponse",
        CLAIM + "version": "1.3.0",
        DL_CLAIM + "content_items": items,
    }
    if session.data is not None:
        claims[DL_CLAIM + "data"] = session.data
    return jwt.encode(claims, private, algorithm="RS256", headers={"kid": key.kid})


def finish(session: PickerSession, now: datetime) -> None:
    session.used_at = now
