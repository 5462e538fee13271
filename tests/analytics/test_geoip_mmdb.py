"""A real (tiny) MaxMind database, written with mmdb-writer in GeoIP2-Country shape: lookups and start-up errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from studyshelf.analytics.enrich import Enricher
from studyshelf.app import create_app
from studyshelf.core.geo import GeoDatabaseError, MaxMindGeoLookup, build_geo_lookup
from studyshelf.core.keys import KeyRing
from studyshelf.events import Hit
from studyshelf.settings import Settings


@pytest.fixture
def mmdb(tmp_path: Path) -> Path:
    writer = MMDBWriter(ip_version=6, database_type="GeoIP2-Country", ipv4_compatible=True)
    writer.insert_network(IPSet(["192.0.2.0/24", "2001:db8:1::/48"]), {"country": {"iso_code": "DE"}})
    writer.insert_network(IPSet(["198.51.100.0/25"]), {"country": {"iso_code": "fr"}})
    # An anycast-style record with only the registered country, as GeoIP2 has for some ranges.
    writer.insert_network(IPSet(["203.0.113.0/24"]), {"registered_country": {"iso_code": "NL"}})
    path = tmp_path / "GeoLite2-Country.mmdb"
    writer.to_db_file(str(path))
    return path


@pytest.mark.parametrize(
    ("ip", "country"),
    [
        ("192.0.2.77", "DE"),
        ("2001:db8:1:abcd::1", "DE"),
        ("198.51.100.5", "FR"),  # upper-cased
        ("203.0.113.9", "NL"),  # registered_country when there is no country
        ("198.51.100.200", ""),  # just outside the /25
        ("8.8.8.8", ""),  # not in this database: '' (no fallback to iptocc)
        ("2001:db8:2::1", ""),
        ("10.1.2.3", ""),
        ("not an address", ""),
    ],
)
def test_lookups(mmdb: Path, ip: str, country: str) -> None:
    assert MaxMindGeoLookup(mmdb).country(ip) == country


def test_the_configured_database_is_used_for_events(mmdb: Path, tmp_path: Path) -> None:
    geo = build_geo_lookup(Settings(data_dir=tmp_path, geoip_mmdb=mmdb).geoip_mmdb)
    assert isinstance(geo, MaxMindGeoLookup)
    event = Enricher(keys=KeyRing.for_install("s" * 32), geo=geo).enrich(
        Hit(type="view", at=datetime(2026, 3, 10, tzinfo=UTC), client_ip="192.0.2.1", user_agent="Mozilla/5.0")
    )
    assert event.country == "DE"


def test_a_corrupt_database_stops_the_start(tmp_path: Path, db_url: str) -> None:
    corrupt = tmp_path / "broken.mmdb"
    corrupt.write_bytes(b"this is not a maxmind database" * 100)
    with pytest.raises(GeoDatabaseError, match=r"broken\.mmdb is not a readable MaxMind \.mmdb"):
        MaxMindGeoLookup(corrupt)
    settings = Settings(
        environment="test",
        data_dir=tmp_path / "data",
        database_url=db_url,
        secret_key="test-secret-key-that-is-long-enough-for-production-0123456789",
        geoip_mmdb=corrupt,
    )
    with pytest.raises(GeoDatabaseError, match="STUDYSHELF_GEOIP_MMDB"):
        create_app(settings)


def test_a_missing_database_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="STUDYSHELF_GEOIP_MMDB"):
        MaxMindGeoLookup(tmp_path / "absent.mmdb")
