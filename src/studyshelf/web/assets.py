"""Static files: content hashes, versioned URLs, the import map for our ES modules, their cache headers."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from urllib.parse import parse_qs

from markupsafe import Markup
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).parent / "static"
STATIC_PREFIX = "/static/"
VERSION_LENGTH = 12
# A versioned URL names one content for ever; anything else may change with the next deploy.
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE_SOON = "public, max-age=300"
# Vendored ES modules our modules import by name (the import map resolves the name to a versioned URL).
VENDORED_MODULES = {
    "pdfjs-dist": "vendor/pdfjs-dist-6.5.438/pdf.min.mjs",
    "pdfjs-dist/worker": "vendor/pdfjs-dist-6.5.438/pdf.worker.min.mjs",
}


def content_version(path: Path) -> str:
    """The first 12 hex digits of the file's SHA-256."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:VERSION_LENGTH]


@dataclass(frozen=True)
class StaticAssets:
    """Every file under the static directory, with its content version."""

    directory: Path
    versions: Mapping[str, str]  # "js/app.js" → "3f2a…"

    @classmethod
    def scan(cls, directory: Path) -> StaticAssets:
        files = (p for p in sorted(directory.rglob("*")) if p.is_file())
        return cls(directory, {p.relative_to(directory).as_posix(): content_version(p) for p in files})

    def url(self, path: str) -> str:
        """`/static/<path>?v=<version>`; an unknown path is a template bug, so it fails the render."""
        try:
            version = self.versions[path]
        except KeyError:
            raise LookupError(f"no static file {path!r} under {self.directory}") from None
        return f"{STATIC_PREFIX}{path}?v={version}"

    def is_current(self, path: str, version: str | None) -> bool:
        return version is not None and self.versions.get(path) == version

    def import_map(self) -> str:
        """The page's import map: our modules' plain URLs → versioned ones, vendored module names → theirs.

        A module imports `./shared.js`; the browser resolves it to `/static/js/shared.js` and the map turns
        that into the versioned URL, so imports between our modules are cache-busted like the pages' tags.
        """
        return self._import_map

    @cached_property
    def _import_map(self) -> str:
        # The files do not change while the process runs: built once, not on every page (and its CSP).
        own = {f"{STATIC_PREFIX}{p}": self.url(p) for p in self.versions if p.startswith("js/") and p.endswith(".js")}
        vendored = {name: self.url(path) for name, path in VENDORED_MODULES.items()}
        return json.dumps({"imports": own | vendored}, separators=(",", ":"), sort_keys=True)

    def import_map_tag(self) -> Markup:
        return Markup(f'<script type="importmap">{self.import_map()}</script>')  # noqa: S704 - JSON of our own file names

    def import_map_csp_source(self) -> str:
        """The CSP source that allows exactly this inline import map (and no other inline script)."""
        return self._import_map_csp_source

    @cached_property
    def _import_map_csp_source(self) -> str:
        digest = hashlib.sha256(self.import_map().encode()).digest()
        return f"'sha256-{base64.b64encode(digest).decode()}'"


@cache
def static_assets() -> StaticAssets:
    """The package's static files, hashed once per process (they do not change while it runs)."""
    return StaticAssets.scan(STATIC_DIR)


def script_src() -> str:
    """The CSP script-src of every page we render: our own files and the import map."""
    return f"script-src 'self' {static_assets().import_map_csp_source()}"


class VersionedStaticFiles(StaticFiles):
    """Serves the static directory; a URL carrying the file's current version is cached for a year."""

    def __init__(self, assets: StaticAssets) -> None:
        super().__init__(directory=assets.directory)
        self.assets = assets

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code in (200, 304):
            query = parse_qs(bytes(scope.get("query_string", b"")).decode("latin-1"))
            version = query.get("v", [None])[0]
            current = self.assets.is_current(Path(path).as_posix(), version)
            response.headers["cache-control"] = IMMUTABLE if current else REVALIDATE_SOON
        return response
