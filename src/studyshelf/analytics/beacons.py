"""Client beacons: validated, bound to a viewer page by its token, limited per viewer session.

A forged or expired token is refused (403); a body that is too large (413), not our schema or at a time
the page could not have sent it (422) is refused; a repeated `seq` of a session is a replay (409); more
than the allowed rate per session is refused (429). Nothing refused is stored. Limits are per process:
with several web processes a session can send up to N times the rate, and replays that reach another
process are still counted once (the event id is derived from session and seq, and the warehouse keeps ids
once).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from datetime import UTC, datetime

from pydantic import ValidationError

from studyshelf.analytics.enrich import Enricher
from studyshelf.analytics.schemas import BeaconIn
from studyshelf.core.errors import Conflict, Invalid, PermissionDenied, TooManyRequests, Unavailable
from studyshelf.events import EventStream, EventStreamError, Hit
from studyshelf.events.beacon import BadBeaconToken, read_beacon
from studyshelf.events.schema import ClientFacts

MAX_BODY = 4096
CLOCK_SKEW_MS = 60_000
MAX_AGE_MS = 24 * 3600 * 1000
_SESSIONS_MAX = 100_000


class BeaconGuard:
    """Per viewer session: a fixed one-minute window of at most `per_minute` beacons, and the seqs seen."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._lock = threading.Lock()
        self._sessions: dict[str, tuple[float, int, set[int]]] = {}

    def admit(self, session: str, seq: int, now: float) -> None:
        with self._lock:
            if len(self._sessions) >= _SESSIONS_MAX:
                self._sessions = {k: v for k, v in self._sessions.items() if now - v[0] < 600}
            start, count, seen = self._sessions.get(session, (now, 0, set()))
            if seq in seen:
                raise Conflict("This event was reported already.")
            if now - start >= 60:
                start, count = now, 0
            if count >= self.per_minute:
                raise TooManyRequests("Too many events from this viewer; slow down.")
            seen.add(seq)
            self._sessions[session] = (start, count + 1, seen)


def beacon_event_id(session: str, seq: int, t_ms: int) -> str:
    """A UUIDv7-shaped id fixed by (session, seq): a replay carries the same id, so it is stored once."""
    digest = int.from_bytes(hashlib.sha256(f"{session}|{seq}".encode()).digest()[:10], "big")
    value = (t_ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | ((digest >> 62) & 0xFFF) << 64
    value |= 0b10 << 62 | digest & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


def parse(body: bytes) -> BeaconIn:
    if len(body) > MAX_BODY:
        raise Invalid("The event is too large.")
    try:
        return BeaconIn.model_validate(json.loads(body))
    except (ValueError, ValidationError) as exc:
        raise Invalid("The event does not match the beacon schema.") from exc


def accept(
    body: bytes,
    *,
    secret: str,
    guard: BeaconGuard,
    enricher: Enricher,
    events: EventStream,
    client: ClientFacts,
    now: float | None = None,
) -> None:
    """Check one beacon and store it durably, or raise the 4xx (or 503) that says why not."""
    now = time.time() if now is None else now
    beacon = parse(body)
    try:
        claims = read_beacon(secret, beacon.token, now=now)
    except BadBeaconToken as exc:
        raise PermissionDenied("This viewer page has expired; reload it.") from exc
    now_ms = int(now * 1000)
    earliest = max(claims.issued * 1000, now_ms - MAX_AGE_MS) - CLOCK_SKEW_MS
    if not earliest <= beacon.t <= now_ms + CLOCK_SKEW_MS:
        raise Invalid("The event's time is outside the life of its viewer page.")
    if beacon.type == "load_fail" and beacon.error_class is None:
        raise Invalid("A load_fail needs an error_class.")
    guard.admit(claims.session, beacon.seq, now)
    hit = Hit(
        type=beacon.type,
        at=datetime.fromtimestamp(beacon.t / 1000, UTC),
        link_id=claims.link_id or None,
        owner_org_id=claims.owner_org_id,
        partner_org_id=claims.partner_org_id,
        file_id=claims.file_id,
        version_id=claims.version_id,
        folder_path=claims.folder_path,
        content_type=claims.content_type,
        filename=claims.filename,
        session=claims.session,
        course=claims.course,
        resource_link=claims.resource_link,
        bytes=beacon.bytes or 0,
        load_ms=beacon.load_ms,
        error_class=beacon.error_class or "",
        event_id=beacon_event_id(claims.session, beacon.seq, beacon.t),
        client_ip=client["client_ip"],
        user_agent=client["user_agent"],
        referer=claims.referer,  # the beacon itself comes from our viewer page; the view's referrer says where
        lms=claims.lms,
    )
    try:
        events.publish([enricher.enrich(hit)])
    except EventStreamError as exc:
        raise Unavailable("The event could not be stored; try again.") from exc
