"""Every template compiles (a typo in a rarely seen page must fail here, not in production)."""

from __future__ import annotations

import pytest

from studyshelf.web.render import TEMPLATE_DIR, environment

TEMPLATES = sorted(str(p.relative_to(TEMPLATE_DIR)) for p in TEMPLATE_DIR.rglob("*") if p.is_file())


def test_templates_found() -> None:
    assert "base.html" in TEMPLATES
    assert "error.html" in TEMPLATES
    assert sorted(environment().list_templates()) == TEMPLATES  # every file the loader can serve is compiled below


@pytest.mark.parametrize("name", TEMPLATES)
def test_template_compiles(name: str) -> None:
    environment().get_template(name)


def _render_macros(source: str) -> str:
    template = environment().from_string('{% from "_macros.html" import dialog, empty_state with context %}' + source)
    return template.render(csrf_token="t0ken")


def test_a_form_dialog_posts_with_the_csrf_field_and_its_buttons() -> None:
    html = _render_macros(
        '{% call dialog("rename", "Rename", action="/x/rename", submit="Rename") %}<i>f</i>{% endcall %}'
    )
    assert 'id="rename-dialog" aria-labelledby="rename-title"' in html
    assert '<h2 id="rename-title">Rename</h2>' in html
    assert 'action="/x/rename" hx-post="/x/rename"' in html
    assert 'value="t0ken"' in html
    assert "<i>f</i>" in html
    assert "data-close-dialog>Cancel</button>" in html
    assert "data-keep-open" not in html


def test_a_loaded_dialog_stays_open_and_names_the_item() -> None:
    html = _render_macros('{{ dialog("share", "Share", heading_icon="share", about_item=true) }}')
    assert "data-keep-open" in html
    assert "data-dialog-content" in html
    assert 'Share “<span data-field-text="name"></span>”' in html
    assert "<form" not in html


def test_an_empty_state_shows_its_icon_heading_and_block() -> None:
    html = _render_macros('{% call empty_state("trash", "The trash is empty", cls="card") %}<p>hint</p>{% endcall %}')
    assert '<div class="empty-state card">' in html
    assert "img/icons.svg?v=" in html
    assert "#trash" in html
    assert "<h2>The trash is empty</h2>" in html
    assert "<p>hint</p>" in html
