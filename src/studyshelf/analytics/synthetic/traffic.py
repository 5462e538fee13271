"""The shape of synthetic traffic: who comes from where, with what, when, and what goes wrong.

Every mix here is a plausible guess for a European publisher whose partners teach through Moodle and
Canvas; user agents go through the real enricher (`analytics.enrich.client_info`), so browser, OS and
device read exactly as collected events do.
"""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Final, Generic, TypeVar

from studyshelf.analytics.enrich import client_info

T = TypeVar("T")

# (country, share of viewers, UTC offset in hours for the daily rhythm, load-time factor)
COUNTRIES: Final = (
    ("DE", 22, 1, 1.0),
    ("US", 16, -6, 1.15),
    ("GB", 12, 0, 1.0),
    ("FR", 8, 1, 1.0),
    ("IN", 7, 5, 1.8),
    ("NL", 4, 1, 0.9),
    ("ES", 4, 1, 1.05),
    ("IT", 4, 1, 1.05),
    ("AT", 3, 1, 1.0),
    ("CH", 3, 1, 0.95),
    ("PL", 3, 1, 1.1),
    ("CA", 3, -5, 1.15),
    ("SE", 2, 1, 0.9),
    ("AU", 2, 10, 1.4),
    ("BR", 2, -3, 1.6),
    ("IE", 1.5, 0, 1.0),
    ("BE", 1.5, 1, 1.0),
    ("DK", 1, 1, 0.9),
    ("NO", 1, 1, 0.9),
    ("JP", 1, 9, 1.3),
    ("NG", 0.5, 1, 2.2),
    ("ZA", 0.5, 2, 1.7),
    ("MX", 0.5, -6, 1.5),
    ("CN", 0.5, 8, 2.5),
    ("", 1, 0, 1.2),  # private or unknown addresses
)
BOT_COUNTRIES: Final = (("US", 45), ("IE", 12), ("DE", 10), ("NL", 10), ("GB", 8), ("FR", 5), ("SG", 5), ("", 5))
# Share of a country's views in each local hour, 0-23: mornings and afternoons, an evening study peak.
LOCAL_HOURS: Final = (1, 0.5, 0.3, 0.2, 0.2, 0.4, 1, 2.5, 5, 7, 8, 8, 6, 6, 7, 7, 6, 5, 4, 4.5, 5, 4.5, 3, 2)
WEEKDAYS: Final = (1.0, 1.05, 1.0, 0.95, 0.8, 0.35, 0.45)  # Monday first
_WIN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"
_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)"
_IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X)"
_BLINK = "AppleWebKit/537.36 (KHTML, like Gecko)"
_WEBKIT = "AppleWebKit/605.1.15 (KHTML, like Gecko)"
_CHROME = "Chrome/131.0.0.0"
BROWSERS: Final = (
    (f"{_WIN} {_BLINK} {_CHROME} Safari/537.36", 28),
    (f"{_MAC} {_BLINK} {_CHROME} Safari/537.36", 6),
    (f"Mozilla/5.0 (Linux; Android 10; K) {_BLINK} {_CHROME} Mobile Safari/537.36", 14),
    (f"{_MAC} {_WEBKIT} Version/18.1 Safari/605.1.15", 7),
    (f"{_IPHONE} {_WEBKIT} Version/18.1 Mobile/15E148 Safari/604.1", 12),
    (f"Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) {_WEBKIT} Version/17.6 Mobile/15E148 Safari/604.1", 4),
    (f"{_WIN} {_BLINK} {_CHROME} Safari/537.36 Edg/131.0.0.0", 9),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", 4),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", 1.5),
    (f"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) {_BLINK} {_CHROME} Safari/537.36", 3),
    (
        f"Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) {_BLINK} SamsungBrowser/26.0 Chrome/122.0.0.0 "
        "Mobile Safari/537.36",
        2,
    ),
    (f"Mozilla/5.0 (Linux; Android 14; SM-X710) {_BLINK} Chrome/130.0.0.0 Safari/537.36", 2),
)
MOODLE_APP: Final = (
    (
        f"Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP2A; wv) {_BLINK} Version/4.0 {_CHROME} "
        "Mobile Safari/537.36 MoodleMobile 4.4.0 (44000)",
        6,
    ),
    (f"{_IPHONE} {_WEBKIT} Mobile/15E148 MoodleMobile 4.4.0 (44000)", 4),
)
MOODLE_APP_SHARE: Final = 0.15  # of the viewers of a partner that teaches through Moodle
# (user agent, weight, fetches the file itself): link previewers fetch the viewer page, scripts the bytes.
BOTS: Final = (
    ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", 25, False),
    (f"{_WIN} {_BLINK} {_CHROME} Safari/537.36 Teams/1.7.00", 20, False),
    ("WhatsApp/2.23.20.0", 10, False),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 10, False),
    ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", 5, False),
    ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", 5, False),
    ("curl/8.5.0", 10, True),
    ("python-requests/2.32.3", 10, True),
    ("", 5, False),
)
BOT_SHARE: Final = 0.03  # of visits
BLOCKED_SHARE: Final = 0.015  # of visits: a refused link (expired, wrong origin, …)
NO_BEACON_SHARE: Final = 0.04  # of human views: the page was closed, or a blocker ate the beacon
BLOCK_REASONS: Final = (
    ("expired", 40),
    ("origin", 25),
    ("revoked", 10),
    ("top-level", 8),
    ("over-limit", 5),
    ("bad-signature", 5),
    ("grant-revoked", 4),
    ("suspended", 2),
    ("deleted", 1),
)
ERRORS: Final = (
    ("network", 35),
    ("aborted", 25),
    ("timeout", 15),
    ("http-5xx", 8),
    ("decode", 7),
    ("http-4xx", 5),
    ("unsupported", 5),
)
FAILING_ERRORS: Final = ("decode", "unsupported", "http-5xx", "timeout", "network", "http-4xx")
BASE_FAIL_RATE: Final = 0.006
MOODLE_APP_FAIL_RATE: Final = 0.02
SAFARI: Final = frozenset({"Safari", "Mobile Safari"})
# Median load time (ms) by category; log-normal around it.
LOAD_MEDIAN_MS: Final = {
    "image": 180,
    "text": 120,
    "pdf": 420,
    "document": 650,
    "audio": 350,
    "video": 800,
    "other": 500,
    "": 500,
}
LOAD_SIGMA: Final = 0.6
DEVICE_SLOWDOWN: Final = {"mobile": 1.35, "tablet": 1.2}
DOWNLOAD_SHARE: Final = {
    "document": 0.35,
    "other": 0.8,
    "text": 0.3,
    "pdf": 0.12,
    "audio": 0.08,
    "image": 0.05,
    "video": 0.03,
    "": 0.1,
}
# How a partner's viewers reach a file: (lms, how, share) with how = lti (launch: course and resource
# link, no share link), embed (a share link framed in the LMS), link (a share link opened directly),
# web (a share link on some other site).
REACH: Final = {
    "moodle": (("moodle", "lti", 0.45), ("moodle", "embed", 0.3), ("none", "link", 0.2), ("other", "web", 0.05)),
    "canvas": (("canvas", "lti", 0.45), ("canvas", "embed", 0.3), ("none", "link", 0.2), ("other", "web", 0.05)),
    "none": (("none", "link", 0.8), ("other", "web", 0.2)),
}
PARTNER_LMS: Final = (("moodle", 55), ("canvas", 30), ("none", 15))
OTHER_SITES: Final = ("teams.microsoft.com", "outlook.office.com", "mail.google.com", "www.google.com", "padlet.com")
ZIPF_OFFSET: Final = 5  # popularity of the file ranked r (from 0) is 1 / (r + ZIPF_OFFSET)


class Weighted(Generic[T]):
    """A weighted choice that costs one random number and a bisection."""

    def __init__(self, items: Sequence[T], weights: Sequence[float]) -> None:
        if not items or len(items) != len(weights):
            raise ValueError("a weighted choice needs as many weights as items, and at least one")
        self.items = list(items)
        self.cumulative = list(accumulate(weights))
        self.total = self.cumulative[-1]
        self.last = len(self.items) - 1

    def pick(self, rng: random.Random) -> T:
        return self.items[min(self.last, bisect(self.cumulative, rng.random() * self.total))]


@dataclass(frozen=True, slots=True)
class Client:
    """A user agent as the enricher reads it."""

    user_agent: str
    browser: str
    browser_major: str
    os: str
    device: str
    bot: bool
    fetches: bool = False  # a script that downloads the bytes rather than a previewer


def client(user_agent: str, *, fetches: bool = False) -> Client:
    info = client_info(user_agent)
    return Client(user_agent, info.browser, info.browser_major, info.os, info.device, info.bot, fetches)


def countries() -> Weighted[tuple[str, float]]:
    """A country and its load-time factor."""
    return Weighted([(c, slow) for c, _, _, slow in COUNTRIES], [w for _, w, _, _ in COUNTRIES])


def utc_hours() -> dict[str, Weighted[int]]:
    """Per country, the UTC hour of a view, following the local rhythm."""
    found = {}
    for code, _, offset, _ in COUNTRIES:
        found[code] = Weighted(list(range(24)), [LOCAL_HOURS[(h + offset) % 24] for h in range(24)])
    for code, _ in BOT_COUNTRIES:
        found.setdefault(code, Weighted(list(range(24)), [1.0] * 24))  # crawlers keep no office hours
    return found


def browsers() -> Weighted[Client]:
    return Weighted([client(ua) for ua, _ in BROWSERS], [w for _, w in BROWSERS])


def moodle_apps() -> Weighted[Client]:
    return Weighted([client(ua) for ua, _ in MOODLE_APP], [w for _, w in MOODLE_APP])


def bots() -> Weighted[Client]:
    return Weighted([client(ua, fetches=f) for ua, _, f in BOTS], [w for _, w, _ in BOTS])


def bot_countries() -> Weighted[str]:
    return Weighted([c for c, _ in BOT_COUNTRIES], [w for _, w in BOT_COUNTRIES])


def pairs(items: Sequence[tuple[str, float]]) -> Weighted[str]:
    return Weighted([k for k, _ in items], [w for _, w in items])
