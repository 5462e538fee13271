"""Where an address is: the country of an IP, behind one small interface (offline by default, MaxMind when configured).

Delivery's leak radar and analytics' enrichment both ask it; `Services.geo` holds the one instance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import iptocc


class GeoLookup(Protocol):
    def country(self, ip: str) -> str:
        """ISO 3166 alpha-2 code, or '' when unknown (private ranges, bad input)."""
        ...


class IptoccGeoLookup:
    """Offline, country-grade: the RIR delegation data compiled into `iptocc`."""

    def country(self, ip: str) -> str:
        try:
            code = iptocc.country_code(ip)
        except (ValueError, TypeError):
            return ""
        return str(code)[:2].upper() if code else ""


class GeoDatabaseError(RuntimeError):
    """The configured .mmdb cannot be read: the app refuses to start rather than count every country as ''."""


class MaxMindGeoLookup:
    """A MaxMind (or compatible) .mmdb database (GeoLite2/GeoIP2 Country or City), opened once at start-up.

    An address the database does not cover, a private one or nonsense gives '' (no fallback to iptocc: a
    licensed database is the one answer). A missing file raises FileNotFoundError, a corrupt one
    GeoDatabaseError, both naming the path, so a bad STUDYSHELF_GEOIP_MMDB stops the app at start-up.
    """

    def __init__(self, path: Path) -> None:
        import maxminddb

        if not path.is_file():
            raise FileNotFoundError(f"STUDYSHELF_GEOIP_MMDB: no such file {path}")
        try:
            self._reader = maxminddb.open_database(str(path))
        except (maxminddb.InvalidDatabaseError, ValueError, OSError) as exc:
            raise GeoDatabaseError(f"STUDYSHELF_GEOIP_MMDB: {path} is not a readable MaxMind .mmdb ({exc})") from exc

    def country(self, ip: str) -> str:
        try:
            record: Any = self._reader.get(ip)
        except ValueError:
            return ""
        if not isinstance(record, dict):
            return ""
        country = record.get("country") or record.get("registered_country") or {}
        return str(country.get("iso_code") or "")[:2].upper()


def build_geo_lookup(mmdb: Path | None) -> GeoLookup:
    """The configured .mmdb (`STUDYSHELF_GEOIP_MMDB`), else the offline iptocc data."""
    return MaxMindGeoLookup(mmdb) if mmdb else IptoccGeoLookup()
