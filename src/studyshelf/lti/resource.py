"""Resource-link launches: check the partner still reaches the material, record the launch (and the titles of its
course and resource link, for analytics), show the viewer."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import jwt
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from studyshelf.analytics import course_names
from studyshelf.core.errors import NotFound
from studyshelf.core.keys import KeyRing, Purpose
from studyshelf.library.models import File, Folder
from studyshelf.lti import registrations
from studyshelf.lti.launch import CLAIM, LINK_HISTORY_PARAM, TARGET_PARAM, LaunchRefused, ValidLaunch
from studyshelf.lti.material import Target, reach, target_from_launch
from studyshelf.lti.models import Launch
from studyshelf.web.i18n import N_

SCOPE_PREFIX = "lti-"
HISTORY_LIMIT = 20  # copies of copies: the nearest ancestors are enough
_INSTRUCTOR = ("#Instructor", "#ContentDeveloper", "#Administrator", "#TeachingAssistant", "membership/Instructor#")


class MaterialGone(LaunchRefused):
    status = 404
    title = N_("This material was removed")


class AccessEnded(LaunchRefused):
    status = 403
    title = N_("This material is no longer shared")


def role_class(roles: object) -> str:
    """learner, instructor or other, from the LTI roles of the context (membership) and institution."""
    values = [r for r in roles if isinstance(r, str)] if isinstance(roles, list) else []
    if any(r.endswith(_INSTRUCTOR) or "membership/Instructor#" in r for r in values):
        return "instructor"
    if any(r.endswith("#Learner") or "membership/Learner#" in r for r in values):
        return "learner"
    return "other"


def pseudonym(keys: KeyRing, *, issuer: str, client_id: str, sub: str) -> str:
    """A keyed hash of the LMS user: stable per platform, meaningless without our secret (stored with launches,
    so its purpose stays on the legacy derivation, core/keys.py)."""
    return keys.mac(Purpose.LEARNER_PSEUDONYM, f"{issuer}|{client_id}|{sub}".encode()).hex()[:40]


def scope_id(launch_id: uuid.UUID) -> str:
    return SCOPE_PREFIX + launch_id.hex


def launch_from_scope(db: Session, scope: str) -> Launch:
    try:
        launch_id = uuid.UUID(scope.removeprefix(SCOPE_PREFIX)) if scope.startswith(SCOPE_PREFIX) else None
    except ValueError:
        launch_id = None
    launch = db.get(Launch, launch_id) if launch_id is not None else None
    if launch is None:
        raise NotFound("This course launch is not known.")
    return launch


def frame_origins(db: Session, valid: ValidLaunch) -> list[str]:
    """Who may frame what this launch shows: the platform's origins and the host its signed return URL names."""
    presentation = valid.claims.get(CLAIM + "launch_presentation")
    return_url = presentation.get("return_url") if isinstance(presentation, dict) else None
    registrations.learn_origin(
        db, registration=valid.registration, url=return_url if isinstance(return_url, str) else None
    )
    return valid.registration.origin_list


def accept_resource_launch(
    db: Session, *, valid: ValidLaunch, keys: KeyRing, now: datetime
) -> tuple[Launch, File | Folder]:
    """Check the material is still reachable by the partner and record the launch (no names, no e-mails)."""
    claims = valid.claims
    registration = valid.registration
    custom = claims.get(CLAIM + "custom")
    target = target_from_launch(custom, claims.get(CLAIM + "target_link_uri"), TARGET_PARAM) or copied_target(
        db, registration_id=registration.id, custom=custom
    )
    if target is None:
        raise LaunchRefused(N_("This activity does not name any StudyShelf material. Choose the material again."))
    item = reach(db, org_id=registration.org_id, target=target, now=now)
    if item is None:
        raise MaterialGone(N_("This material is no longer in the library. Ask your teacher to choose it again."))
    if item is False:
        raise AccessEnded(N_("Your institution's access to this material has ended."))
    assert isinstance(item, File | Folder)
    context = _object(claims, "context")
    platform = _object(claims, "tool_platform")
    resource = claims[CLAIM + "resource_link"]
    legacy = claims.get(CLAIM + "lti11_legacy_user_id")
    launch = Launch(
        org_id=registration.org_id,
        registration_id=registration.id,
        deployment_id=valid.deployment_id[:300],
        product_family=str(platform.get("product_family_code") or registration.product_family)[:64],
        context_id=str(context.get("id") or "")[:300],
        context_title=str(context.get("title") or "")[:300],
        resource_link_id=str(resource["id"])[:300],
        role_class=role_class(claims.get(CLAIM + "roles")),
        learner=pseudonym(keys, issuer=registration.issuer, client_id=registration.client_id, sub=str(claims["sub"])),
        lti11_user_id=str(legacy)[:300] if isinstance(legacy, str) else "",
        target_type=target.kind,
        target_id=target.id,
        frame_origins="\n".join(frame_origins(db, valid)),
        locale=presentation_locale(claims),
    )
    db.add(launch)
    db.flush()
    course_names.learn(
        db,
        org_id=registration.org_id,
        course=launch.context_id,
        course_title=launch.context_title,
        course_label=str(context.get("label") or ""),
        resource_link=launch.resource_link_id,
        link_title=str(resource.get("title") or ""),
        platform=registration.name or str(platform.get("name") or ""),
        now=now,
    )
    return launch, item


def history(custom: object, param: str) -> list[str]:
    """The ids a history custom parameter lists (Canvas: comma-separated, most recent first); none when the
    platform sent the variable unexpanded."""
    value = custom.get(param) if isinstance(custom, dict) else None
    if not isinstance(value, str) or value.startswith("$"):
        return []
    return [part.strip()[:300] for part in value.split(",") if part.strip()][:HISTORY_LIMIT]


def copied_target(db: Session, *, registration_id: uuid.UUID, custom: object) -> Target | None:
    """The material of the link this one was copied from (course copy), as launched before through the same
    registration: never another partner's placement."""
    earlier = history(custom, LINK_HISTORY_PARAM)
    for link_id in earlier:
        launch = db.scalars(
            select(Launch)
            .where(Launch.registration_id == registration_id, Launch.resource_link_id == link_id)
            .order_by(Launch.at.desc())
            .limit(1)
        ).first()
        if launch is not None:
            return launch_target(launch)
    return None


def presentation_locale(claims: dict[str, Any]) -> str:
    """The learner's language the platform asks for (`launch_presentation.locale`, e.g. `de-DE`), or ""."""
    locale = _object(claims, "launch_presentation").get("locale")
    return locale.strip()[:35] if isinstance(locale, str) else ""


def claimed_locale(id_token: str) -> str:
    """The locale an id_token asks for, read without checking it: only to word a refusal in the learner's
    language, never to decide anything."""
    try:
        claims = jwt.decode(id_token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return ""
    return presentation_locale(claims) if isinstance(claims, dict) else ""


def _object(claims: dict[str, Any], name: str) -> dict[str, Any]:
    value = claims.get(CLAIM + name)
    return value if isinstance(value, dict) else {}


def placement_views(db: Session, launch: Launch) -> int:
    """Launches of this placement (same platform, resource link and material)."""
    query = (
        select(func.count())
        .select_from(Launch)
        .where(
            Launch.registration_id == launch.registration_id,
            Launch.resource_link_id == launch.resource_link_id,
            Launch.target_id == launch.target_id,
        )
    )
    return int(db.scalar(query) or 0)


def launch_target(launch: Launch) -> Target:
    return Target(launch.target_type, launch.target_id)


def launch_summary(launch: Launch) -> dict[str, Any]:
    return {"context": launch.context_title, "role": launch.role_class, "family": launch.product_family}
