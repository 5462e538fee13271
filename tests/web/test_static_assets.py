"""Static files: versioned by content, cached for ever only under their current version, referenced versioned."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from studyshelf.web.assets import IMMUTABLE, REVALIDATE_SOON, StaticAssets, content_version, static_assets
from tests.conftest import Member
from tests.links.support import create_link, link_path, visitor
from tests.web.test_pages import HTML, _upload

JS_DIR = static_assets().directory / "js"
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"


def test_the_version_follows_the_content(tmp_path: Path) -> None:
    (tmp_path / "js").mkdir()
    script = tmp_path / "js" / "app.js"
    script.write_text("console.log(1);\n")
    before = StaticAssets.scan(tmp_path)
    script.write_text("console.log(2);\n")
    after = StaticAssets.scan(tmp_path)

    assert re.fullmatch(r"/static/js/app\.js\?v=[0-9a-f]{12}", before.url("js/app.js"))
    assert before.url("js/app.js") != after.url("js/app.js")
    assert after.versions["js/app.js"] == content_version(script)
    assert StaticAssets.scan(tmp_path) == after  # the same bytes, the same URL


def test_an_unknown_file_fails_the_render() -> None:
    with pytest.raises(LookupError, match=r"js/nope\.js"):
        static_assets().url("js/nope.js")


def test_the_import_map_versions_every_own_module_and_the_vendored_ones() -> None:
    assets = static_assets()
    imports = json.loads(assets.import_map())["imports"]
    own = sorted(p.name for p in JS_DIR.glob("*.js"))
    assert sorted(key.removeprefix("/static/js/") for key in imports if key.startswith("/static/")) == own
    for name in own:
        assert imports[f"/static/js/{name}"] == assets.url(f"js/{name}")
    assert imports["pdfjs-dist"].startswith("/static/vendor/pdfjs-dist-")
    assert "?v=" in imports["pdfjs-dist/worker"]


def test_a_versioned_url_is_cached_for_a_year_and_anything_else_briefly(app_client: TestClient) -> None:
    versioned = app_client.get(static_assets().url("js/app.js"))
    assert versioned.status_code == 200
    assert versioned.headers["cache-control"] == IMMUTABLE
    assert "etag" in versioned.headers

    for url in ("/static/js/app.js", "/static/js/app.js?v=000000000000"):  # plain, or a version now gone
        response = app_client.get(url)
        assert response.status_code == 200, url
        assert response.headers["cache-control"] == REVALIDATE_SOON, url
    assert app_client.get("/static/js/missing.js").status_code == 404


OWN_CODE = re.compile(r"\b(?:window|globalThis|self)\.[\w$]+\s*=(?!=)|\bwindow\[[^\]]+\]\s*=(?!=)")


@pytest.mark.parametrize("path", sorted(JS_DIR.glob("*.js")), ids=lambda p: p.name)
def test_own_scripts_are_modules_that_leave_the_global_scope_alone(path: Path) -> None:
    source = path.read_text()
    assert OWN_CODE.search(source) is None
    assert "(function" not in source  # a module has its own scope: no wrapper
    assert '"use strict"' not in source  # modules are strict already
    assert re.search(r"^\s*var\s", source, re.MULTILINE) is None  # one dialect: const and let


class _References(HTMLParser):
    """Every src/href of the page that points into /static/, and how each script tag loads."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script":
            self.scripts.append(found)
        for name in ("src", "href"):
            value = found.get(name)
            if value and value.startswith("/static/"):
                self.urls.append(value)

    handle_startendtag = handle_starttag


def _assert_versioned(html: str, page: str) -> _References:
    refs = _References()
    refs.feed(html)
    assert refs.urls, page
    versions = static_assets().versions
    for url in refs.urls:
        match = re.fullmatch(r"/static/([^?#]+)\?v=([0-9a-f]{12})(#[\w-]+)?", url)
        assert match, f"{page}: {url} is not versioned"
        assert versions[match[1]] == match[2], f"{page}: {url} is not the current version"
    for script in refs.scripts:
        src = script.get("src") or ""
        if src.startswith("/static/js/"):
            assert script.get("type") == "module", f"{page}: {src} is not loaded as a module"
        if "src" not in script:
            assert script.get("type") == "importmap", f"{page}: an inline script"
    return refs


def test_every_static_reference_of_the_pages_is_versioned(owner: Member, app_client: TestClient) -> None:
    folder = owner.root_folder_id
    pdf_id = _upload(owner, folder, "doc.pdf", PDF)
    other_id = _upload(owner, folder, "notes.bin", b"\x00\x01")
    pages = [
        f"/library/{folder}",
        f"/files/{pdf_id}",
        f"/files/{other_id}",
        "/trash",
        "/shared",
        "/links",
        "/analytics",
        "/analytics/reports",
        "/settings/organization",
        "/settings/tokens",
        "/settings/audit",
        "/api/docs",
    ]
    for page in pages:
        response = owner.client.get(page, headers=HTML)
        assert response.status_code == 200, page
        _assert_versioned(response.text, page)
    login = app_client.get("/login", headers=HTML)
    assert login.status_code == 200
    _assert_versioned(login.text, "/login")


def test_the_viewer_loads_versioned_modules_under_its_own_policy(owner: Member) -> None:
    pdf_id = _upload(owner, owner.root_folder_id, "doc.pdf", PDF)
    path = link_path(create_link(owner, pdf_id, mode="direct", allowed_origins=[]))
    response = visitor(owner).get(path, headers=HTML)
    assert response.status_code == 200, response.text
    refs = _assert_versioned(response.text, path)
    modules = {(script.get("src") or "").split("?")[0] for script in refs.scripts}
    assert {"/static/js/viewer.js", "/static/js/beacon.js", "/static/js/pdf-viewer.js"} <= modules
    assert static_assets().import_map_csp_source() in response.headers["content-security-policy"]
