"""Turn a delivery `Hit` into a pseudonymous `Event`: country, browser, OS, device, LMS, viewer id.

The client address and user agent are read here and dropped: the event keeps a country and a viewer id
that is an HMAC of address and user agent under a key that changes every UTC day, so one person's views
on one day count once, and nobody can follow them from day to day or recover the address.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import PurePosixPath
from urllib.parse import urlsplit

import ua_parser

from studyshelf.core.bots import is_bot
from studyshelf.core.geo import GeoLookup
from studyshelf.core.ids import new_id
from studyshelf.core.keys import KeyRing, Purpose
from studyshelf.events.schema import LMS_VALUES, Event, Hit
from studyshelf.library.sniff import category

_MOODLE_APP = re.compile(r"MoodleMobile[ /]?(\d+)?")
_CANVAS_HOSTS = (".instructure.com", ".canvaslms.com")


@dataclass(frozen=True)
class ClientInfo:
    browser: str
    browser_major: str
    os: str
    device: str  # desktop, mobile, tablet, bot, unknown
    bot: bool
    moodle_app: bool


@lru_cache(maxsize=8192)
def client_info(user_agent: str) -> ClientInfo:
    """Browser family and major version, OS, device class; a rule for the Moodle app no parser knows."""
    if not user_agent:
        return ClientInfo("", "", "", "unknown", bot=True, moodle_app=False)
    parsed = ua_parser.parse(user_agent).with_defaults()
    browser, major = parsed.user_agent.family, parsed.user_agent.major or ""
    moodle = _MOODLE_APP.search(user_agent)
    if moodle:
        browser, major = "Moodle app", moodle.group(1) or ""
    bot = is_bot(user_agent) or parsed.device.family == "Spider"
    return ClientInfo(
        browser=browser[:40],
        browser_major=major[:10],
        os=parsed.os.family[:40],
        device="bot" if bot else _device_class(user_agent),
        bot=bot,
        moodle_app=moodle is not None,
    )


def _device_class(user_agent: str) -> str:
    ua = user_agent.lower()
    if "ipad" in ua or "tablet" in ua or ("android" in ua and "mobile" not in ua):
        return "tablet"
    if "mobile" in ua or "iphone" in ua or "android" in ua:
        return "mobile"
    return "desktop"


def referrer_host(referer: str) -> str:
    try:
        return (urlsplit(referer).hostname or "")[:255] if referer else ""
    except ValueError:
        return ""


def lms_of(host: str, *, moodle_app: bool) -> str:
    """moodle, canvas, other (some other site framed or linked us), none (no referrer)."""
    if moodle_app or "moodle" in host:
        return "moodle"
    if "canvas" in host or host.endswith(_CANVAS_HOSTS):
        return "canvas"
    return "other" if host else "none"


def viewer_id(keys: KeyRing, *, day: str, ip: str, user_agent: str) -> str:
    """A pseudonym for one client on one UTC day (the day's key: core/keys.py, purpose `viewer pseudonym`)."""
    key = keys.mac(Purpose.VIEWER_PSEUDONYM, day.encode())
    return hmac.new(key, f"{ip}|{user_agent}".encode(), hashlib.sha256).hexdigest()[:24]


def extension_of(filename: str) -> str:
    suffix = PurePosixPath(filename).suffix.lower().lstrip(".")
    return suffix if suffix.isalnum() and len(suffix) <= 10 else ""


class Enricher:
    def __init__(self, *, keys: KeyRing, geo: GeoLookup) -> None:
        self.keys = keys
        self.geo = geo

    def enrich(self, hit: Hit) -> Event:
        client = client_info(hit.user_agent[:512])
        host = referrer_host(hit.referer)
        folder = hit.folder_path[-1] if hit.folder_path else None
        return Event(
            id=hit.event_id or str(new_id()),
            ts=hit.at,
            type=hit.type,
            owner_org=hit.owner_org_id,
            partner_org=hit.partner_org_id,
            file_id=hit.file_id,
            version_id=hit.version_id,
            folder_id=folder,
            folder_path=hit.folder_path,
            category=category(hit.content_type) if hit.content_type else "",
            extension=extension_of(hit.filename),
            country=self.geo.country(hit.client_ip) if hit.client_ip else "",
            browser=client.browser,
            browser_major=client.browser_major,
            os=client.os,
            device=client.device,
            referrer_host=host,
            lms=hit.lms if hit.lms in LMS_VALUES else lms_of(host, moodle_app=client.moodle_app),
            link_id=hit.link_id,
            course=hit.course[:255],
            resource_link=hit.resource_link[:255],
            viewer=viewer_id(self.keys, day=hit.at.strftime("%Y-%m-%d"), ip=hit.client_ip, user_agent=hit.user_agent),
            session=hit.session[:64],
            bytes=max(0, hit.bytes),
            load_ms=hit.load_ms,
            error_class=hit.error_class,
            reason=hit.reason,
            bot=client.bot,
            rendition=hit.rendition[:16],
            captions=hit.captions[:35],
            watch_ms=hit.watch_ms,
            reached_pct=hit.reached_pct,
        )
