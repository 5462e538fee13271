"""The beacon token: lets a viewer page report its own playback, and nothing else.

It names the link (or, for an LTI launch, no link but the course and resource link), file, version,
the organisations and folders involved, the version's size and a viewer session (the page view's id),
in a token of the key service (core/keys.py, purpose `beacon token`), and expires with the page. A forged
one fails the MAC; one carried past its expiry or to another file is refused; a beacon may not report more
bytes than `size`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from studyshelf.core.keys import KeyRing, Purpose, TokenRefused


class BadBeaconToken(ValueError):
    """The token is malformed, forged or expired."""


@dataclass(frozen=True)
class BeaconClaims:
    link_id: str
    file_id: str
    version_id: str
    owner_org_id: str
    partner_org_id: str
    folder_path: tuple[str, ...]
    content_type: str
    filename: str
    session: str  # the page view's id: its beacons are counted against it (analytics/beacons.py)
    size: int  # the version's bytes: no beacon of this page may report more
    issued: int
    expires: int
    course: str = ""  # an LTI launch's course and resource link ("" for a share link)
    resource_link: str = ""
    referer: str = ""  # the origin that framed or linked the viewer page: the beacons' LMS is the view's
    lms: str = ""  # an LTI launch's platform (moodle, canvas, other)


_FIELDS = tuple(field.name for field in fields(BeaconClaims))


def sign_beacon(keys: KeyRing, claims: BeaconClaims) -> str:
    # A shallow dict: `asdict` deep-copies every value, a cost on each viewer page for nothing (all are immutable).
    data = {name: getattr(claims, name) for name in _FIELDS}
    data["folder_path"] = list(claims.folder_path)
    return keys.encode(Purpose.BEACON_TOKEN, data, claims.expires)


def read_beacon(keys: KeyRing, token: str, *, now: float) -> BeaconClaims:
    try:
        data = keys.decode(Purpose.BEACON_TOKEN, token, now)
    except TokenRefused as exc:
        detail = "has expired" if exc.reason == "expired" else "is not valid"
        raise BadBeaconToken(f"the beacon token {detail}") from exc
    try:
        data["folder_path"] = tuple(data["folder_path"])
        claims = BeaconClaims(**data)
    except (ValueError, TypeError, KeyError) as exc:
        raise BadBeaconToken("the beacon token is not valid") from exc
    return claims
