"""Client beacons: validated, bound to a counted page view by its token, limited per page view.

A forged or expired token is refused (403); a body that is too large (413), not our schema or at a time
the page could not have sent it (422) is refused; so is a figure no page could report (422
`beacon-out-of-range`: a load time over MAX_LOAD_MS, more bytes than the file's size, which the token
carries). Every limit of a page view holds across every process and instance: the server makes a
`beacon_views` row when it counts the view, and each beacon is stored only through one conditional
UPDATE of that row that refuses a repeated `seq` (409, a replay), a view that has sent
`beacon_events_per_view` already (429 `beacon-view-limit`) and a minute that has had `beacon_rate_per_minute`
(429); a token whose view has no row is refused (403 `beacon-view-unknown`). With Redis, a script there
refuses replays and floods first (`limits/`), so they cost no database write; when Redis fails, the
database alone decides, exactly as without it. Each process also remembers what it stored itself and
refuses a repeat of that at once: it can only refuse what the cluster would. A beacon whose event could
not be stored gives its allowance back. Nothing refused is stored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy import case, delete, or_, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from studyshelf.analytics.enrich import Enricher
from studyshelf.analytics.models import BeaconView
from studyshelf.analytics.schemas import BeaconIn
from studyshelf.core.clock import CLOCK_SKEW
from studyshelf.core.db import affected_rows, unit_of_work
from studyshelf.core.errors import Conflict, Invalid, PermissionDenied, StudyShelfError, TooManyRequests, Unavailable
from studyshelf.core.ids import uuid7_str
from studyshelf.core.keys import KeyRing
from studyshelf.events import EventStream, EventStreamError, Hit
from studyshelf.events.beacon import BadBeaconToken, read_beacon
from studyshelf.events.schema import ClientFacts
from studyshelf.limits import ClusterLimits, LimitsUnavailable, Verdict

BEACON_LOADS = Counter(
    "studyshelf_beacon_loads_total", "Viewer beacons accepted, by type: load_ok, load_fail, playback", ["outcome"]
)
log = logging.getLogger("studyshelf.analytics")
MAX_BODY = 4096
CLOCK_SKEW_MS = CLOCK_SKEW * 1000
MAX_AGE_MS = 24 * 3600 * 1000
# The page reports a timeout after 30 s and its retries take seconds (a first frame that waits for the
# learner's play may come later): past ten minutes a load time says nothing but that it is made up.
MAX_LOAD_MS = 10 * 60 * 1000
# Watch time is media time played: a learner may rewatch, or play at 2x for half of it, but not more than
# WATCH_FACTOR times the duration, nor longer than the page has lived (plus the clock skew; played at up to
# MAX_RATE speed). Without a duration, the page's life bounds it.
WATCH_FACTOR = 3
MAX_RATE = 2
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
    playbacks_per_view: int = 30

    def open(self, session: str, *, at: datetime) -> None:
        """Let the page view `session`, just counted, send its beacons."""
        with unit_of_work(self.sessions) as db:
            db.add(BeaconView(session=session, events=0, counted_at=at))

    def take(self, session: str, *, seq: int, minute: int, per_minute: int, playback: bool = False) -> None:
        """Take one beacon of the view, atomically across processes, or raise why it may not send one.

        A playback report counts against `playbacks_per_view`, every other beacon against `per_view`."""
        marker = f",{seq},"
        counter, limit = (
            (BeaconView.playbacks, self.playbacks_per_view) if playback else (BeaconView.events, self.per_view)
        )
        with unit_of_work(self.sessions) as db:
            query = update(BeaconView).where(
                BeaconView.session == session,
                counter < limit,
                ~BeaconView.seqs.contains(marker),
                or_(BeaconView.minute < minute, BeaconView.minute_events < per_minute),
            )
            taken = affected_rows(
                db.execute(
                    query.values(
                        {
                            counter: counter + 1,
                            BeaconView.seqs: BeaconView.seqs + f"{seq},",
                            BeaconView.minute: case((BeaconView.minute < minute, minute), else_=BeaconView.minute),
                            BeaconView.minute_events: case(
                                (BeaconView.minute < minute, 1), else_=BeaconView.minute_events + 1
                            ),
                        }
                    )
                )
            )
            view = None if taken == 1 else db.get(BeaconView, session)
            if taken == 1:
                return
            if view is None:
                raise ViewUnknown("This page view was never counted; reload the page.")
            if marker in view.seqs:
                raise Conflict("This event was reported already.")
            if (view.playbacks if playback else view.events) >= limit:
                raise ViewSpent("This page view has sent all its events.")
        raise TooManyRequests("Too many events from this viewer; slow down.")

    def give_back(self, session: str, *, seq: int, minute: int, playback: bool = False) -> None:
        """Undo a take whose event could not be stored, so the page may send it again."""
        marker = f",{seq},"
        with unit_of_work(self.sessions) as db:
            row = db.get(BeaconView, session, with_for_update=True)
            if row is None or marker not in row.seqs:
                return
            if playback:
                row.playbacks = max(0, row.playbacks - 1)
            else:
                row.events = max(0, row.events - 1)
            row.seqs = row.seqs.replace(marker, ",", 1)
            if row.minute == minute:
                row.minute_events = max(0, row.minute_events - 1)


def prune_views(db: Session, *, before: datetime) -> int:
    """Forget page views counted before `before` (their tokens have expired); return how many."""
    result = db.execute(delete(BeaconView).where(BeaconView.counted_at < before))
    return affected_rows(result)


class BeaconGuard:
    """What this process stored, per viewer session: its seqs, and its count in the latest minute.

    Only a first line: the cluster has stored at least as much, so whatever this refuses the database (or
    Redis) would refuse too, and a refusal here costs no round trip.
    """

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._lock = threading.Lock()
        self._sessions: dict[str, tuple[int, int, set[int]]] = {}  # session → (minute, stored in it, seqs)

    def check(self, session: str, seq: int, minute: int) -> None:
        """Raise what the cluster would answer to a beacon this process has seen stored already."""
        with self._lock:
            last, count, seen = self._sessions.get(session, (minute, 0, set()))
        if seq in seen:
            raise Conflict("This event was reported already.")
        if last >= minute and count >= self.per_minute:
            raise TooManyRequests("Too many events from this viewer; slow down.")

    def stored(self, session: str, seq: int, minute: int) -> None:
        with self._lock:
            if len(self._sessions) >= _SESSIONS_MAX:
                self._sessions = {k: v for k, v in self._sessions.items() if minute - v[0] < 10}
            last, count, seen = self._sessions.get(session, (minute, 0, set()))
            seen.add(seq)
            self._sessions[session] = (max(last, minute), count + 1 if last >= minute else 1, seen)


@dataclass(frozen=True)
class BeaconLimits:
    """Where a beacon's limits are kept: this process's first line, Redis (optional), the app database."""

    guard: BeaconGuard
    views: BeaconViews
    shared: ClusterLimits | None  # Redis: replays and floods refused before the database

    def take(self, session: str, seq: int, now: float, *, playback: bool = False) -> Callable[[], None]:
        """Admit one beacon or raise why not; return what gives its allowances back if its event is lost."""
        minute = int(now // 60)
        self.guard.check(session, seq, minute)
        shared = self._admit_shared(session, seq, minute)
        try:
            self.views.take(session, seq=seq, minute=minute, per_minute=self.guard.per_minute, playback=playback)
        except StudyShelfError:
            self._withdraw_shared(shared, session, seq, minute)
            raise
        except SQLAlchemyError as exc:
            self._withdraw_shared(shared, session, seq, minute)
            raise Unavailable("The event could not be checked; try again.") from exc

        def give_back() -> None:
            try:
                self.views.give_back(session, seq=seq, minute=minute, playback=playback)
            except SQLAlchemyError:
                log.exception("a beacon's allowance could not be given back (its page may not resend it)")
            self._withdraw_shared(shared, session, seq, minute)

        return give_back

    def stored(self, session: str, seq: int, now: float) -> None:
        self.guard.stored(session, seq, int(now // 60))

    def _admit_shared(self, session: str, seq: int, minute: int) -> bool:
        if self.shared is None:
            return False
        seen, window = _shared_keys(session, minute)
        try:
            verdict = self.shared.admit(
                seen=seen,
                item=str(seq),
                window=window,
                limit=self.guard.per_minute,
                seen_ttl=MAX_AGE_MS // 1000,
                window_ttl=120,
            )
        except LimitsUnavailable:
            log.warning("Redis did not answer a beacon's check: the database alone decides")
            return False
        if verdict is Verdict.REPEATED:
            raise Conflict("This event was reported already.")
        if verdict is Verdict.OVER_LIMIT:
            raise TooManyRequests("Too many events from this viewer; slow down.")
        return True

    def _withdraw_shared(self, admitted: bool, session: str, seq: int, minute: int) -> None:
        if not admitted or self.shared is None:
            return
        seen, window = _shared_keys(session, minute)
        try:
            self.shared.withdraw(seen=seen, item=str(seq), window=window)
        except LimitsUnavailable:
            # Stricter, never looser: the seq stays marked (a resend is refused) until the key expires.
            log.warning("a beacon refused after its Redis check could not be taken back there")


def _shared_keys(session: str, minute: int) -> tuple[str, str]:
    # The {session} hash tag keeps both keys of one script in one Redis Cluster slot.
    return f"beacon:{{{session}}}:seqs", f"beacon:{{{session}}}:minute:{minute}"


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
    limits: BeaconLimits,
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
    reached_pct = (
        _check_playback(beacon, issued_ms=claims.issued * 1000, content_type=claims.content_type)
        if beacon.type == "playback"
        else None
    )
    give_back = limits.take(claims.session, beacon.seq, now, playback=beacon.type == "playback")
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
        captions=beacon.captions or "",
        rendition=beacon.rendition or "",
        watch_ms=beacon.watch_ms if beacon.type == "playback" else None,
        reached_pct=reached_pct,
    )
    try:
        events.publish([enricher.enrich(hit)])
    except EventStreamError as exc:
        give_back()
        raise Unavailable("The event could not be stored; try again.") from exc
    limits.stored(claims.session, beacon.seq, now)
    BEACON_LOADS.labels(beacon.type).inc()


def _check_playback(beacon: BeaconIn, *, issued_ms: int, content_type: str) -> int | None:
    """Refuse playback figures no viewer page could report; return the furthest position in % of the duration."""
    if beacon.watch_ms is None:
        raise Invalid("A playback needs its watch_ms.")
    if not content_type.startswith(("video/", "audio/")):
        raise OutOfRange("Only a video or an audio plays.", field="type")
    page_life = max(0, beacon.t - issued_ms) + CLOCK_SKEW_MS
    if beacon.watch_ms > page_life * MAX_RATE:
        raise OutOfRange("A viewer page cannot have played longer than it has been open.", field="watch_ms")
    duration = beacon.duration_ms
    if duration is not None and beacon.watch_ms > duration * WATCH_FACTOR:
        raise OutOfRange(f"Watch time over {WATCH_FACTOR} times the duration is not watch time.", field="watch_ms")
    if beacon.position_ms is None or duration is None:
        return None
    if beacon.position_ms > duration + 1000:  # a second for the last frame's rounding
        raise OutOfRange("A position beyond the media's end is not a position.", field="position_ms")
    return min(100, beacon.position_ms * 100 // duration)
