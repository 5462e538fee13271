"""Who is asking: a user, through a browser session or an API token."""

from __future__ import annotations

from dataclasses import dataclass

from studyshelf.partners.models import ApiToken, User, WebSession


@dataclass(frozen=True)
class Principal:
    user: User
    session: WebSession | None = None
    token: ApiToken | None = None
    request_id: str = ""
