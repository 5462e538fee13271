"""Client beacons: validated, bound to a counted page view by its token, limited per page view.

A forged or expired token is refused (403); a body that is too large (413), not our schema or at a time
the page could not have sent it (422) is refused; so is a figure no page could report (422
`beacon-out-of-range`: a load time over MAX_LOAD_MS, more bytes than the file's size, which the token
carries). Each page view may send `beacon_events_per_view` beacons in all, across every process: the
server makes a `beacon_views` row when it counts the view, and each beacon takes one from it with a
conditional UPDATE; a token whose view has no row is refused (403 `beacon-view-unknown`), one whose view
has sent its share too (429 `beacon-view-limit`). Before that, each process keeps a cheap first line: a
repeated `seq` is a replay (409) and a session may send `beacon_rate_per_minute` (429). A replay that
reaches another process is still stored once (the event id is derived from session and seq, and the
warehouse keeps ids once). Nothing refused is stored.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy import delete, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from studyshelf.analytics.enrich import Enricher
from studyshelf.analytics.models import BeaconView
from studyshelf.analytics.schemas import BeaconIn
from studyshelf.core.db import affected_rows, unit_of_work
from studyshelf.core.errors import Conflict, Invalid, PermissionDenied, TooManyRequests, Unavailable
from studyshelf.core.ids import uuid7_str
from studyshelf.core.keys import KeyRing
from studyshelf.events import EventStream, EventStreamError, Hit
from studyshelf.events.beacon import BadBeaconToken, read_beacon
from studyshelf.events.schema import ClientFacts

BEACON_LOADS = Counter(
    "studyshelf_beacon_loads_total", "Viewer beacons accepted, by outcome: load_ok, load_fail", ["outcome"]
)
MAX_BODY = 4096
CLOCK_SKEW_MS = 60_000
MAX_AGE_MS = 24 * 3600 * 1000
# The page reports a timeout after 30 s and its retries take seconds (a first frame that waits for the
# learner's play may come later): past ten minutes a load time says nothing but that it is made up.
MAX_LOAD_MS = 10 * 60 * 1000
_SESSIONS_MAX = 100_000


class OutOfRange(Invalid):
    type_slug = "beacon-out-of-range"
    title = "No viewer page reports this"


class ViewUnknown(PermissionDenied):
    type_slug = "beacon-view-unknown"
    title = "The page view was not counted"


class ViewSpent(TooManyRequests):
    type_slug = "beacon-view-limit"
    title = "This page view has reported all it may"


@dataclass(frozen=True)
class BeaconViews:
    """The page views the server counted (in the app database), each with the beacons it may still send."""

    sessions: sessionmaker[Session]
    per_view: int

    def open(self, session: str, *, at: datetime) -> None:
        """Let the page view `session`, just counted, send its beacons."""
        with unit_of_work(self.sessions) as db:
            db.add(BeaconView(session=session, events=0, counted_at=at))

    def take(self, session: str) -> None:
        """Take one beacon of the view, atomically across processes, or raise why it may not send one."""
        with unit_of_work(self.sessions) as db:
            query = update(BeaconView).where(BeaconView.session == session, BeaconView.events < self.per_view)
            taken = affected_rows(db.execute(query.values(events=BeaconView.events + 1)))
            known = taken == 1 or db.scalar(select(BeaconView.session).where(BeaconView.session == session))
        if taken == 1:
            return
        if not known:
            raise ViewUnknown("This page view was never counted; reload the page.")
        raise ViewSpent("This page view has sent all its events.")


def prune_views(db: Session, *, before: datetime) -> int:
    """Forget page views counted before `before` (their tokens have expired); return how many."""
    result = db.execute(delete(BeaconView).where(BeaconView.counted_at < before))
    return affected_rows(result)


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
    return uuid7_str(t_ms, digest)


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
    keys: KeyRing,
    guard: BeaconGuard,
    views: BeaconViews,
    enricher: Enricher,
    events: EventStream,
    client: ClientFacts,
    now: float,
) -> None:
    """Check one beacon and store it durably, or raise the 4xx (or 503) that says why not."""
    beacon = parse(body)
    try:
        claims = read_beacon(keys, beacon.token, now=now)
    except BadBeaconToken as exc:
        raise PermissionDenied("This viewer page has expired; reload it.") from exc
    now_ms = int(now * 1000)
    earliest = max(claims.issued * 1000, now_ms - MAX_AGE_MS) - CLOCK_SKEW_MS
    if not earliest <= beacon.t <= now_ms + CLOCK_SKEW_MS:
        raise Invalid("The event's time is outside the life of its viewer page.")
    if beacon.type == "load_fail" and beacon.error_class is None:
        raise Invalid("A load_fail needs an error_class.")
    if beacon.load_ms is not None and beacon.load_ms > MAX_LOAD_MS:
        raise OutOfRange(f"A load time over {MAX_LOAD_MS // 60_000} minutes is not a load time.", field="load_ms")
    if beacon.bytes is not None and beacon.bytes > claims.size:
        raise OutOfRange("A viewer page cannot report more bytes than its file has.", field="bytes")
    guard.admit(claims.session, beacon.seq, now)  # in this process first: replays and floods cost no write
    try:
        views.take(claims.session)
    except SQLAlchemyError as exc:
        raise Unavailable("The event could not be checked; try again.") from exc
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
    BEACON_LOADS.labels(beacon.type).inc()
