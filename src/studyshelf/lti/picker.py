"""The deep-linking content picker, shown in the LMS frame: browse or search, choose, send back a signed JWT."""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from studyshelf.core.db import unit_of_work
from studyshelf.core.errors import StudyShelfError
from studyshelf.delivery.embed import origin_of
from studyshelf.delivery.viewing import badge_of
from studyshelf.library.listing import children_of
from studyshelf.library.models import File, Folder
from studyshelf.library.sniff import category
from studyshelf.lti import deep_linking
from studyshelf.lti.material import Target, parse_target, reach, roots, search
from studyshelf.lti.models import PickerSession, Registration
from studyshelf.lti.web import base_url, error_page, headers
from studyshelf.partners.deps import Now, ServicesDep
from studyshelf.web.render import render

router = APIRouter(include_in_schema=False)


def _row(kind: str, item_id: uuid.UUID, name: str, content_type: str | None, note: str = "") -> dict[str, Any]:
    shown = "folder" if kind == "folder" else category(content_type or "")
    return {"kind": kind, "id": item_id, "name": name, "badge": badge_of(shown), "note": note}


def _content_type(item: File | Folder) -> str | None:
    return item.current_version.content_type if isinstance(item, File) and item.current_version else None


def _frames(session: PickerSession) -> list[str]:
    return [o for o in session.frame_origins.split("\n") if o]


@router.get("/lti/pick/{session_id}")
def pick(
    session_id: uuid.UUID,
    request: Request,
    services: ServicesDep,
    now: Now,
    t: str = "",
    folder: uuid.UUID | None = None,
    q: str = "",
) -> Response:
    """The picker: the partner's library and what is shared with it; folders open, names are searchable."""
    try:
        with unit_of_work(services.read_sessions) as db:
            session = deep_linking.open_picker(db, session_id=session_id, token=t, keys=services.keys, now=now)
            current: Folder | None = None
            if q.strip():
                rows = [
                    _row(k, i.id, i.name, _content_type(i))
                    for k, i in search(db, org_id=session.org_id, text=q, now=now)
                ]
            elif folder is not None:
                reached = reach(db, org_id=session.org_id, target=Target("folder", folder), now=now)
                if not isinstance(reached, Folder):
                    return error_page(
                        request, status=404, headline="Not found", message="That folder is not available."
                    )
                current = reached
                entries, _cursor = children_of(db, folder=reached, limit=500)
                rows = [_row(e.kind, e.id, e.name, e.content_type) for e in entries]
            else:
                rows = [
                    _row(
                        r.kind,
                        r.folder_or_file.id,
                        r.folder_or_file.name,
                        _content_type(r.folder_or_file),
                        r.owner_note,
                    )
                    for r in roots(db, org_id=session.org_id, now=now)
                ]
            context = {
                "title": "Choose material",
                "session": session,
                "token": t,
                "rows": rows,
                "folder": current,
                "query": q,
                "home_url": f"/lti/pick/{session_id}?" + urlencode({"t": t}),
                "open_url": f"/lti/pick/{session_id}?" + urlencode({"t": t}) + "&folder=",
            }
            return render(request, "lti/picker.html", context, headers=headers(frames=_frames(session)))
    except StudyShelfError as exc:
        return error_page(request, status=exc.status, headline=exc.title, message=exc.detail)


@router.post("/lti/pick/{session_id}")
def choose(
    session_id: uuid.UUID,
    request: Request,
    services: ServicesDep,
    now: Now,
    t: Annotated[str, Form()] = "",
    item: Annotated[list[str] | None, Form()] = None,
    expand: Annotated[list[str] | None, Form()] = None,
    title: Annotated[str, Form(max_length=255)] = "",
) -> Response:
    """Sign the chosen items into an LtiDeepLinkingResponse and auto-post it back to the LMS."""
    settings = services.settings
    try:
        with unit_of_work(services.write_sessions) as db:
            session = deep_linking.open_picker(db, session_id=session_id, token=t, keys=services.keys, now=now)
            expanded = set(expand or [])
            targets = [found for value in item or [] if (found := parse_target(value)) is not None]
            choices = [deep_linking.Choice(target, expand=str(target.id) in expanded) for target in targets]
            items = deep_linking.content_items(
                db, session=session, choices=choices, title=title, base_url=base_url(settings), now=now
            )
            registration = db.get(Registration, session.registration_id)
            assert registration is not None
            token = deep_linking.response_jwt(
                db, session=session, registration=registration, items=items, keys=services.keys, now=now
            )
            deep_linking.finish(session, now=now)
            action, frames = session.return_url, _frames(session)
    except StudyShelfError as exc:
        return error_page(request, status=exc.status, headline=exc.title, message=exc.detail)
    context = {
        "title": "Adding to the course…",
        "headline": "Adding to the course…",
        "action": action,
        "fields": {"JWT": token},
    }
    target = origin_of(action)
    return render(
        request, "lti/autopost.html", context, headers=headers(frames=frames, form_targets=[target] if target else [])
    )
