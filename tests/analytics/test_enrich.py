"""Enrichment on known inputs: user agents (the Moodle app too), addresses, LMS, pseudonyms, no personal data."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from studyshelf.analytics.enrich import Enricher, client_info
from studyshelf.core.geo import IptoccGeoLookup, MaxMindGeoLookup, build_geo_lookup
from studyshelf.core.keys import KeyRing
from studyshelf.events import Hit
from studyshelf.settings import Settings

CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)
SAFARI_IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/16.6 Mobile/15E148 Safari/604.1"
)
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
MOODLE_ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP2A.240805.005; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Version/4.0 Chrome/128.0.6613.127 Mobile Safari/537.36 MoodleMobile 4.4.0 (44001)"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
SLACK = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"


@pytest.mark.parametrize(
    ("ua", "browser", "major", "os", "device", "bot"),
    [
        (CHROME_WINDOWS, "Chrome", "131", "Windows", "desktop", False),
        (SAFARI_IPHONE, "Mobile Safari", "17", "iOS", "mobile", False),
        (SAFARI_IPAD, "Mobile Safari", "16", "iOS", "tablet", False),
        (FIREFOX_LINUX, "Firefox", "133", "Linux", "desktop", False),
        (MOODLE_ANDROID, "Moodle app", "4", "Android", "mobile", False),
        (GOOGLEBOT, "Googlebot", "2", "Other", "bot", True),
        (SLACK, "Slackbot-LinkExpanding", "1", "Other", "bot", True),
        ("", "", "", "", "unknown", True),
    ],
)
def test_known_user_agents(ua: str, browser: str, major: str, os: str, device: str, bot: bool) -> None:
    info = client_info(ua)
    assert (info.browser, info.browser_major, info.os, info.device, info.bot) == (browser, major, os, device, bot)


@pytest.mark.parametrize(
    ("ip", "country"),
    [("8.8.8.8", "US"), ("81.2.69.160", "GB"), ("2001:4860:4860::8888", "US"), ("10.0.0.1", ""), ("nonsense", "")],
)
def test_known_addresses(ip: str, country: str) -> None:
    assert IptoccGeoLookup().country(ip) == country


def test_a_configured_mmdb_is_used(tmp_path: Path) -> None:
    assert isinstance(build_geo_lookup(Settings(data_dir=tmp_path).geoip_mmdb), IptoccGeoLookup)
    missing = tmp_path / "none.mmdb"
    with pytest.raises(FileNotFoundError):
        MaxMindGeoLookup(missing)


def hit(**kw: Any) -> Hit:
    values: dict[str, Any] = {
        "type": "view",
        "at": datetime(2026, 3, 10, 12, tzinfo=UTC),
        "client_ip": "81.2.69.160",
        "user_agent": CHROME_WINDOWS,
        "referer": "https://moodle.example.edu/mod/lti/view.php?id=7",
        "filename": "Lecture 1.PDF",
        "content_type": "application/pdf",
        "folder_path": ("a", "b"),
    }
    values.update(kw)
    return Hit(**values)


ENRICHER = Enricher(keys=KeyRing.for_install("s" * 40), geo=IptoccGeoLookup())


def test_an_event_carries_no_address_and_no_user_agent() -> None:
    event = ENRICHER.enrich(hit())
    text = event.to_json()
    assert "81.2.69.160" not in text
    assert "Windows NT" not in text
    assert (event.country, event.browser, event.lms, event.referrer_host) == (
        "GB",
        "Chrome",
        "moodle",
        "moodle.example.edu",
    )
    assert (event.category, event.extension, event.folder_id) == ("pdf", "pdf", "b")


@pytest.mark.parametrize(
    ("referer", "ua", "lms"),
    [
        ("https://canvas.example.edu/courses/1", CHROME_WINDOWS, "canvas"),
        ("https://school.instructure.com/courses/1", CHROME_WINDOWS, "canvas"),
        ("https://www.example.org/page", CHROME_WINDOWS, "other"),
        ("", CHROME_WINDOWS, "none"),
        ("", MOODLE_ANDROID, "moodle"),
    ],
)
def test_lms(referer: str, ua: str, lms: str) -> None:
    assert ENRICHER.enrich(hit(referer=referer, user_agent=ua)).lms == lms


def test_the_viewer_pseudonym_is_stable_for_a_day_and_changes_the_next() -> None:
    same_day = ENRICHER.enrich(hit(at=datetime(2026, 3, 10, 23, tzinfo=UTC))).viewer
    assert ENRICHER.enrich(hit()).viewer == same_day
    assert ENRICHER.enrich(hit(at=datetime(2026, 3, 11, 1, tzinfo=UTC))).viewer != same_day
    assert ENRICHER.enrich(hit(client_ip="8.8.8.8")).viewer != same_day
    other_key = Enricher(keys=KeyRing.for_install("t" * 40), geo=IptoccGeoLookup())
    assert other_key.enrich(hit()).viewer != same_day


def test_events_get_time_ordered_ids_unless_the_sender_chose_one() -> None:
    first, second = ENRICHER.enrich(hit()), ENRICHER.enrich(hit())
    assert first.id != second.id
    assert first.id[14] == "7"  # UUIDv7
    assert ENRICHER.enrich(hit(event_id="given")).id == "given"
