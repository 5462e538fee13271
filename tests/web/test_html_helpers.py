"""tests/html.py, the parsed-HTML helpers the page tests assert with: roles, names, form fields, fragments."""

from __future__ import annotations

import re

from tests.html import parse_html, role_of, text_of

PAGE = """<!doctype html>
<html><body>
  <nav aria-label="Breadcrumb"><a href="/library/1">Home</a> <a>not a link</a></nav>
  <h2>Week <em>1</em></h2>
  <dialog id="d" aria-labelledby="d-title"><h3 id="d-title">Share</h3></dialog>
  <form action="/save" method="post">
    <input type="hidden" name="csrf_token" value="c&amp;1">
    <label for="email">E-mail</label><input id="email" name="email" type="email" value="a@b.test">
    <label><input type="checkbox" name="notify" checked> Notify</label>
    <input type="checkbox" name="archive">
    <select name="zone"><option value="UTC">UTC</option><option value="Europe/Berlin" selected>Berlin</option></select>
    <textarea name="origins">https://a.test
https://b.test</textarea>
    <button type="submit" disabled>Save</button>
    <input type="submit" value="Save and close">
  </form>
  <div role="alert" class="alert">Check the form</div>
  <script>inline()</script>
</body></html>
"""


def test_roles_come_from_the_role_attribute_or_the_element() -> None:
    page = parse_html(PAGE)
    assert [text_of(link) for link in page.by_role("link")] == ["Home"]  # an <a> without href is no link
    assert page.by_role("heading", "Week 1")[0].name == "h2"
    assert page.by_role("dialog", "Share")
    assert page.by_role("textbox", "E-mail")[0]["name"] == "email"
    assert page.by_role("checkbox", "Notify")
    assert [page.accessible_name(b) for b in page.by_role("button")] == ["Save", "Save and close"]
    assert page.by_role("navigation", re.compile("bread", re.IGNORECASE))
    assert page.by_role("alert", "Check the form")
    assert role_of(page.one('input[name="csrf_token"]')) is None


def test_form_fields_are_what_the_form_would_submit() -> None:
    assert parse_html(PAGE).forms('form[action="/save"]') == [
        {
            "csrf_token": "c&1",
            "email": "a@b.test",
            "notify": "on",
            "zone": "Europe/Berlin",
            "origins": "https://a.test\nhttps://b.test",
        }
    ]


def test_text_leaves_out_scripts_and_fragments_are_not_documents() -> None:
    page = parse_html(PAGE)
    assert "inline()" not in page.text()
    assert "Check the form" in page.text()
    assert page.is_full_document()
    fragment = parse_html('<li id="link-1">One</li>\n<div hx-swap-oob="true">Two</div>')
    assert not fragment.is_full_document()
    assert [root.name for root in fragment.roots()] == ["li", "div"]
    assert fragment.attr("li", "id") == "link-1"
