"""The beacon token: lets a viewer page report its own playback, and nothing else.

It names the link (or, for an LTI launch, no link but the course and resource link), file, version,
the organisations and folders involved, the version's size and a viewer session (the page view's id),
under an HMAC with the secret key, and expires with the page. A forged one fails the MAC; one carried
past its expiry or to another file is refused; a beacon may not report more bytes than `size`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import asdict, dataclass


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


def _mac(secret: str, body: str) -> str:
    key = hashlib.sha256(f"beacon|{secret}".encode()).digest()
    return base64.urlsafe_b64encode(hmac.new(key, body.encode(), hashlib.sha256).digest()[:24]).decode().rstrip("=")


def sign_beacon(secret: str, claims: BeaconClaims) -> str:
    data = asdict(claims)
    data["folder_path"] = list(claims.folder_path)
    body = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")
    return f"{body}.{_mac(secret, body)}"


def read_beacon(secret: str, token: str, *, now: float) -> BeaconClaims:
    body, _, mac = token.partition(".")
    if not body or not mac or not hmac.compare_digest(_mac(secret, body), mac):
        raise BadBeaconToken("the beacon token is not valid")
    try:
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        data["folder_path"] = tuple(data["folder_path"])
        claims = BeaconClaims(**data)
    except (ValueError, TypeError, KeyError) as exc:
        raise BadBeaconToken("the beacon token is not valid") from exc
    if claims.expires < now:
        raise BadBeaconToken("the beacon token has expired")
    return claims
