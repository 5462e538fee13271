"""The pages' one allowed inline script: the import map, which the CSP allows by its hash."""

from __future__ import annotations

import re

import httpx

from studyshelf.web.assets import static_assets

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)")


def assert_no_inline_script_but_the_import_map(response: httpx.Response, page: str) -> None:
    """The page carries the import map once, its policy allows exactly that script, and no other is inline."""
    tag = static_assets().import_map_tag()
    assert response.text.count(tag) == 1, page
    assert static_assets().import_map_csp_source() in response.headers["content-security-policy"], page
    assert INLINE_SCRIPT.search(response.text.replace(tag, "")) is None, page
