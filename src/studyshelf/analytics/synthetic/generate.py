"""Synthetic analytics events: realistic, skewed, deterministic for a seed, written in large batches.

A visit is one viewer opening one file: a `view`, then the viewer page's `load_ok` or `load_fail` beacon,
sometimes a `download`; some visits are refused (`blocked`) and some visitors are bots. Days are made
one at a time, each in time order, so every batch the warehouse receives covers a short time range.
"""

from __future__ import annotations

import base64
import hashlib
import math
import random
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from operator import attrgetter
from typing import Any, Final

from studyshelf.analytics.synthetic import traffic as t
from studyshelf.analytics.synthetic.catalogue import Catalogue, CatalogueFile, CatalogueOrg
from studyshelf.core.ids import uuid7_str
from studyshelf.events.schema import COLUMNS, Event
from studyshelf.warehouse import Warehouse

MAX_EVENTS: Final = 1_000_000_000
MAX_DAYS: Final = 3660
VIEWERS_PER_EVENT: Final = 1 / 50  # a population that comes back: ~50 events per person over the range
DAY_MS: Final = 86_400_000
_TS = attrgetter("ts")
# Events are built positionally from a shared middle tuple, which a type checker cannot count.
_new_event: Callable[..., Event] = Event


@dataclass(frozen=True)
class Plan:
    events: int
    end: date  # the last day (UTC), filled whole
    days: int = 90
    seed: int = 0
    batch: int = 50_000

    def __post_init__(self) -> None:
        if not 1 <= self.events <= MAX_EVENTS:
            raise ValueError(f"events must be between 1 and {MAX_EVENTS:,}")
        if not 1 <= self.days <= MAX_DAYS:
            raise ValueError(f"days must be between 1 and {MAX_DAYS}")
        if self.batch < 1:
            raise ValueError("batch must be at least 1")

    @property
    def start(self) -> date:
        return self.end - timedelta(days=self.days - 1)


@dataclass(frozen=True, slots=True)
class Viewer:
    key: str  # stands for the address: with the user agent it makes the daily viewer id
    country: str
    slowdown: float
    client: t.Client


@dataclass(frozen=True, slots=True)
class Partner:
    """An organisation using files: its own, or others' granted to it."""

    org: CatalogueOrg
    lms: str
    lms_host: str
    courses: tuple[str, ...]
    files: t.Weighted[int]
    viewers: tuple[Viewer, ...]
    reach: t.Weighted[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Failing:
    rate: float
    error: str


def day_counts(plan: Plan) -> list[tuple[date, int]]:
    """Events per day: a weekday rhythm on a gentle growth, apportioned so they add up to plan.events."""
    days = [plan.start + timedelta(days=i) for i in range(plan.days)]
    weights = [t.WEEKDAYS[d.weekday()] * (0.85 + 0.3 * i / max(1, plan.days - 1)) for i, d in enumerate(days)]
    total = sum(weights)
    exact = [plan.events * w / total for w in weights]
    counts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(days)), key=lambda i: (counts[i] - exact[i], i))
    for i in by_remainder[: plan.events - sum(counts)]:
        counts[i] += 1
    return list(zip(days, counts, strict=True))


# Events are built positionally (see Traffic._event): the order of Event's fields, checked at import.
_FIELDS: Final = (
    ("id", "ts", "type"),
    ("owner_org", "partner_org", "file_id", "version_id", "folder_id", "folder_path", "category", "extension"),
    ("country", "browser", "browser_major", "os", "device", "referrer_host", "lms", "link_id", "course"),
    ("resource_link", "viewer", "session", "bytes", "load_ms", "error_class", "reason", "bot"),
    ("rendition", "captions", "watch_ms", "reached_pct"),  # left at their defaults: synthetic traffic plays nothing
)
if tuple(name for group in _FIELDS for name in group) != COLUMNS:
    raise ImportError("events.schema.Event changed its fields: update analytics/synthetic/generate.py")
_Middle = tuple[Any, ...]  # owner_org … session: what the events of one visit share


class Traffic:
    """The traffic model for one catalogue and seed; `day()` makes one day's events in time order."""

    def __init__(self, catalogue: Catalogue, plan: Plan) -> None:
        if not catalogue.files:
            raise ValueError("the catalogue has no files")
        self.catalogue = catalogue
        self.rng = random.Random(f"studyshelf-synthetic-traffic-{plan.seed}")  # noqa: S311 - reproducible on purpose
        self.secret = f"studyshelf-synthetic-{plan.seed}"
        self.hours = t.utc_hours()
        self.bots = t.bots()
        self.bot_countries = t.bot_countries()
        self.reasons = t.pairs(t.BLOCK_REASONS)
        self.errors = t.pairs(t.ERRORS)
        self.failing = self._failing()
        self.partners = self._partners(plan)
        self._viewer_ids: dict[tuple[str, str], str] = {}
        self._day_key = b""

    def _failing(self) -> dict[int, Failing]:
        """A few files that fail often, one of them among the ten most popular."""
        n = len(self.catalogue.files)
        count = min(n, max(3, min(25, n // 100)))
        chosen = {self.rng.randrange(min(10, n))}
        while len(chosen) < count:
            chosen.add(self.rng.randrange(n))
        return {i: Failing(self.rng.uniform(0.2, 0.65), self.rng.choice(t.FAILING_ERRORS)) for i in sorted(chosen)}

    def _partners(self, plan: Plan) -> t.Weighted[Partner]:
        rng = self.rng
        countries = t.countries()
        browsers, apps = t.browsers(), t.moodle_apps()
        lms_mix = t.pairs(t.PARTNER_LMS)
        using = [(o, sorted(self.catalogue.users[o.id])) for o in self.catalogue.orgs if self.catalogue.users.get(o.id)]
        weights = [0.15 if o.operator and len(using) > 1 else rng.lognormvariate(0, 0.8) for o, _ in using]
        population = max(300, int(plan.events * VIEWERS_PER_EVENT))
        partners = []
        for number, ((org, files), weight) in enumerate(zip(using, weights, strict=True)):
            home, home_slowdown = countries.pick(rng)
            lms = lms_mix.pick(rng)
            slug = "".join(ch for ch in org.name.lower() if ch.isalnum())[:20] or f"org{number}"
            host = f"moodle.{slug}.edu" if lms == "moodle" else f"{slug}.instructure.com" if lms == "canvas" else ""
            viewers = []
            for i in range(max(20, int(population * weight / sum(weights)))):
                country, slowdown = (home, home_slowdown) if rng.random() < 0.75 else countries.pick(rng)
                app = lms == "moodle" and rng.random() < t.MOODLE_APP_SHARE
                viewers.append(Viewer(f"{number}.{i}", country, slowdown, (apps if app else browsers).pick(rng)))
            courses = tuple(
                str(rng.randrange(100, 99_999)) if lms == "moodle" else f"{rng.getrandbits(160):040x}"
                for _ in range(rng.randrange(15, 60))
            )
            reach = t.REACH[lms]
            partners.append(
                Partner(
                    org=org,
                    lms=lms,
                    lms_host=host,
                    courses=courses,
                    files=t.Weighted(files, [1 / (i + t.ZIPF_OFFSET) for i in files]),
                    viewers=tuple(viewers),
                    reach=t.Weighted([(lms_, how) for lms_, how, _ in reach], [share for _, _, share in reach]),
                )
            )
        return t.Weighted(partners, weights)

    def day(self, day: date, count: int) -> list[Event]:
        """`count` events on one UTC day, sorted by time."""
        self._viewer_ids.clear()
        self._day_key = hashlib.sha256(f"{self.secret}|viewer|{day.isoformat()}".encode()).digest()
        start_ms = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
        events: list[Event] = []
        while len(events) < count:
            self._visit(start_ms, events)
        del events[count:]
        events.sort(key=_TS)
        return events

    def _viewer(self, key: str, user_agent: str) -> str:
        """A pseudonym for one client on the current day (an HMAC, like the enricher's, cheaper to make)."""
        found = self._viewer_ids.get((key, user_agent))
        if found is None:
            digest = hashlib.blake2b(f"{key}|{user_agent}".encode(), key=self._day_key, digest_size=12)
            found = self._viewer_ids[(key, user_agent)] = digest.hexdigest()
        return found

    def _visit(self, start_ms: int, out: list[Event]) -> None:
        rng = self.rng
        partner = self.partners.pick(rng)
        index = partner.files.pick(rng)
        file = self.catalogue.files[index]
        roll = rng.random()
        if roll < t.BOT_SHARE:
            self._bot_visit(start_ms, partner, file, out)
            return
        viewer = partner.viewers[int(len(partner.viewers) * rng.random() ** 2)]
        ms = start_ms + self.hours[viewer.country].pick(rng) * 3_600_000 + rng.randrange(3_600_000)
        end_ms = start_ms + DAY_MS - 1
        c = viewer.client
        reach = ("moodle", "lti") if c.browser == "Moodle app" else partner.reach.pick(rng)
        middle = (
            *self._context(partner, file, reach, viewer.country, c),
            self._viewer(viewer.key, c.user_agent),
            f"{rng.getrandbits(64):016x}",
        )
        if roll < t.BOT_SHARE + t.BLOCKED_SHARE:
            out.append(self._event(ms, "blocked", middle, reason=self.reasons.pick(rng)))
            return
        out.append(self._event(ms, "view", middle))
        if rng.random() >= t.NO_BEACON_SHARE:
            out.append(self._load(ms, end_ms, index, file, viewer, middle))
        if rng.random() < t.DOWNLOAD_SHARE.get(file.category, 0.1):
            at = min(end_ms, ms + rng.randrange(5_000, 120_000))
            out.append(self._event(at, "download", middle, size=file.size))

    def _load(self, ms: int, end_ms: int, index: int, file: CatalogueFile, viewer: Viewer, middle: _Middle) -> Event:
        rng = self.rng
        browser = viewer.client.browser
        failing = self.failing.get(index)
        if file.extension == "webm" and browser in t.SAFARI:
            rate, error = 0.9, "unsupported"  # Safari plays no WebM
        elif failing is not None:
            rate, error = failing.rate, failing.error if rng.random() < 0.8 else self.errors.pick(rng)
        else:
            rate = t.MOODLE_APP_FAIL_RATE if browser == "Moodle app" else t.BASE_FAIL_RATE
            error = self.errors.pick(rng)
        median = t.LOAD_MEDIAN_MS.get(file.category, 500) * viewer.slowdown
        median *= t.DEVICE_SLOWDOWN.get(viewer.client.device, 1.0)
        load_ms = max(5, min(120_000, int(rng.lognormvariate(math.log(median), t.LOAD_SIGMA))))
        if rng.random() < rate:
            waited = rng.randrange(15_000, 30_001) if error == "timeout" else None
            at = min(end_ms, ms + (waited or load_ms))
            return self._event(at, "load_fail", middle, load_ms=waited, error=error)
        loaded = file.size if file.category not in {"video", "audio"} else int(file.size * rng.random() ** 0.6)
        return self._event(min(end_ms, ms + load_ms), "load_ok", middle, size=loaded, load_ms=load_ms)

    def _bot_visit(self, start_ms: int, partner: Partner, file: CatalogueFile, out: list[Event]) -> None:
        rng = self.rng
        bot = self.bots.pick(rng)
        country = self.bot_countries.pick(rng)
        ms = start_ms + self.hours[country].pick(rng) * 3_600_000 + rng.randrange(3_600_000)
        middle = (
            *self._context(partner, file, ("none", "link"), country, bot),  # a link pasted into a chat, or a script
            self._viewer(f"bot.{rng.randrange(50)}", bot.user_agent),
            f"{rng.getrandbits(64):016x}",
        )
        if bot.fetches:
            out.append(self._event(ms, "download", middle, size=file.size, bot=True))
        else:
            out.append(self._event(ms, "view", middle, bot=True))

    def _context(
        self, partner: Partner, file: CatalogueFile, reach: tuple[str, str], country: str, client: t.Client
    ) -> tuple[Any, ...]:
        """What every event of a visit shares, from owner_org to resource_link (in Event's field order)."""
        rng = self.rng
        lms, how = reach
        link_id: str | None = None
        course = resource_link = ""
        if how == "lti":
            course = partner.courses[int(len(partner.courses) * rng.random() ** 1.5)]
            resource_link = _resource_link(partner.lms, course, file.id)
        else:
            link_id = _link_id(partner.org.id, file.id, rng.randrange(2))
        host = partner.lms_host if how in {"lti", "embed"} else rng.choice(t.OTHER_SITES) if how == "web" else ""
        return (
            file.owner_org,
            partner.org.id,
            file.id,
            file.version_id,
            file.folder_path[-1] if file.folder_path else None,
            file.folder_path,
            file.category,
            file.extension,
            country,
            client.browser,
            client.browser_major,
            client.os,
            client.device,
            host,
            lms,
            link_id,
            course,
            resource_link,
        )

    def _event(
        self,
        ms: int,
        type_: str,
        middle: _Middle,
        *,
        size: int = 0,
        load_ms: int | None = None,
        error: str = "",
        reason: str = "",
        bot: bool = False,
    ) -> Event:
        """Positional construction: a third cheaper than keywords, and this runs ten million times."""
        uid = uuid7_str(ms, self.rng.getrandbits(74))
        ts = datetime.fromtimestamp(ms / 1000, UTC)
        return _new_event(uid, ts, type_, *middle, size, load_ms, error, reason, bot)


def _link_id(org_id: str, file_id: str, n: int) -> str:
    """One of a partner's two share links to a file: 128 bits, base64url, like delivery's link ids."""
    digest = hashlib.blake2s(f"{org_id}|{file_id}|{n}".encode(), digest_size=16).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _resource_link(lms: str, course: str, file_id: str) -> str:
    """The LMS's id of the activity placing a file in a course: a number in Moodle, a hash in Canvas."""
    key = f"{course}|{file_id}".encode()
    if lms == "moodle":
        return str(100_000 + zlib.crc32(key) % 900_000)
    return hashlib.blake2s(key, digest_size=16).hexdigest()


def batches(catalogue: Catalogue, plan: Plan) -> Iterator[list[Event]]:
    """The plan's events in time order, in lists of at most plan.batch."""
    model = Traffic(catalogue, plan)
    for day, count in day_counts(plan):
        events = model.day(day, count)
        for i in range(0, len(events), plan.batch):
            yield events[i : i + plan.batch]


def generate(
    warehouse: Warehouse, catalogue: Catalogue, plan: Plan, *, progress: Callable[[int], None] | None = None
) -> int:
    """Write the plan's events into the warehouse; return how many were new (a re-run with the same
    seed, catalogue and dates adds none)."""
    added = 0
    for batch in batches(catalogue, plan):
        added += warehouse.insert(batch)
        if progress is not None:
            progress(len(batch))
    return added
