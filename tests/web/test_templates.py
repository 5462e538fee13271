"""Every template compiles (a typo in a rarely seen page must fail here, not in production)."""

from __future__ import annotations

import pytest

from studyshelf.web.render import TEMPLATE_DIR, environment

TEMPLATES = sorted(str(p.relative_to(TEMPLATE_DIR)) for p in TEMPLATE_DIR.rglob("*.html"))


def test_templates_found() -> None:
    assert "base.html" in TEMPLATES
    assert "error.html" in TEMPLATES


@pytest.mark.parametrize("name", TEMPLATES)
def test_template_compiles(name: str) -> None:
    environment().get_template(name)
