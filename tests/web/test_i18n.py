"""The learner's language: Accept-Language picks a shipped catalogue, dates and numbers follow it, and
anything else falls back to English."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from studyshelf.web import i18n
from studyshelf.web.render import environment
from tests.conftest import Member
from tests.html import parse_html
from tests.library.support import uploaded
from tests.links.support import EMBEDDED, create_link, link_path, visitor


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("de-DE,de;q=0.9,en;q=0.8", "de"),
        ("es-419", "es"),
        ("fr-FR, es;q=0.5, de;q=0.7", "de"),  # the best weighted language we ship
        ("de;q=0, es", "es"),  # q=0: not wanted at all
        ("fr-FR,it", "en"),
        ("*", "en"),
        ("", "en"),
        (None, "en"),
        ("de;q=banana, es;q=0.2", "es"),  # a malformed weight counts as not wanted
        (";;;,,,", "en"),
    ],
)
def test_accept_language_picks_a_shipped_locale(header: str | None, expected: str) -> None:
    assert i18n.negotiate(header) == expected


def test_a_launch_locale_wins_over_the_header_when_we_ship_it() -> None:
    assert i18n.choose_locale(launch_locale="de_DE", accept_language="es") == "de"
    assert i18n.choose_locale(launch_locale="ES-mx", accept_language="de") == "es"
    assert i18n.choose_locale(launch_locale="fr-CA", accept_language="es") == "es"
    assert i18n.choose_locale(launch_locale="klingon", accept_language=None) == "en"
    assert i18n.choose_locale(launch_locale="", accept_language=None) == "en"


def test_dates_and_numbers_follow_the_locale() -> None:
    at = datetime(2025, 11, 26, 14, 5, tzinfo=UTC)
    with i18n.use_locale("en"):
        assert i18n.format_short_datetime(at) == "26 Nov 2025, 14:05"
        assert i18n.format_number(12345.67, 1) == "12,345.7"
        assert i18n.format_size(1536) == "1.5 KB"
    with i18n.use_locale("de"):
        assert i18n.format_short_datetime(at) == "26. Nov. 2025, 14:05"
        assert i18n.format_number(12345.67, 1) == "12.345,7"
        assert i18n.format_size(1536) == "1,5 KB"
    with i18n.use_locale("es"):
        assert i18n.format_number(12345.67, 1) == "12.345,7"
        assert "nov" in i18n.format_short_datetime(at)
    with i18n.use_locale("xx"):  # unknown: English
        assert i18n.format_number(1234) == "1,234"
    assert i18n.format_short_datetime(None) == "—"


def test_templates_translate_and_plurals_follow_the_language() -> None:
    template = environment().from_string(
        '{{ _("Download") }}|'
        '{{ ngettext("%(num)s view of this placement", "%(num)s views of this placement", n, num=n) }}'
    )
    with i18n.use_locale("de"):
        assert template.render(n=1) == "Herunterladen|1 Aufruf dieser Platzierung"
        assert template.render(n=3) == "Herunterladen|3 Aufrufe dieser Platzierung"
    with i18n.use_locale("es"):
        assert template.render(n=2) == "Descargar|2 visualizaciones de esta ubicación"
    with i18n.use_locale("en"):
        assert template.render(n=1) == "Download|1 view of this placement"


def test_translating_a_value_escapes_it() -> None:
    template = environment().from_string("{{ message | translate }}")
    with i18n.use_locale("de"):
        assert template.render(message="This link has expired") == "Dieser Link ist abgelaufen"
        assert template.render(message="<b>%(x)s 100%</b>") == "&lt;b&gt;%(x)s 100%&lt;/b&gt;"


def test_every_catalogue_is_complete_and_keeps_its_placeholders() -> None:
    template = i18n.translations("en")
    for locale in ("de", "es"):
        catalogue = i18n.translations(locale)
        assert catalogue is not template
        for message in ("Download", "This link has expired", "Skip to content"):
            assert catalogue.gettext(message) != message, (locale, message)
    from babel.messages.pofile import read_po

    for locale in ("de", "es"):
        with (i18n.LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as po:
            catalog = read_po(po, locale=locale)
        for message in catalog:
            if not message.id:
                continue
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            assert all(strings), f"{locale}: {message.id!r} is not translated"
            assert not message.fuzzy, f"{locale}: {message.id!r} is fuzzy"
            singular = message.id[0] if isinstance(message.id, tuple) else message.id
            for placeholder in ("%(num)s", "%(page)s", "%(count)s", "%(shown)s", "%(status)s", "%(email)s"):
                if placeholder in singular:
                    assert all(placeholder in s for s in strings), (locale, message.id)


def test_the_viewer_speaks_the_browsers_language(owner: Member) -> None:
    file = uploaded(
        owner,
        owner.root_folder_id,
        "Skript.txt",
        b"notes",
    )
    path = link_path(create_link(owner, file["id"]))
    german = visitor(owner).get(path, headers={**EMBEDDED, "accept-language": "de-DE,de;q=0.9,en;q=0.5"})
    assert german.status_code == 200, german.text
    page = parse_html(german)
    assert page.attr("html", "lang") == "de"
    assert german.headers["content-language"] == "de"
    assert "Bereitgestellt von" in german.text
    assert "Delivered by" not in german.text
    spanish = visitor(owner).get(path, headers={**EMBEDDED, "accept-language": "es"})
    assert "Ofrecido por" in spanish.text
    assert parse_html(spanish).attr("html", "lang") == "es"
    unknown = visitor(owner).get(path, headers={**EMBEDDED, "accept-language": "fr-FR,fr;q=0.9"})
    assert "Delivered by" in unknown.text
    assert parse_html(unknown).attr("html", "lang") == "en"


def test_a_refusal_is_worded_in_the_browsers_language(owner: Member) -> None:
    file = uploaded(owner, owner.root_folder_id, "notes.txt", b"notes")
    path = link_path(create_link(owner, file["id"]))
    top = visitor(owner).get(
        path, headers={"sec-fetch-dest": "document", "sec-fetch-site": "none", "accept-language": "de"}
    )
    assert top.status_code == 403
    assert "Dieses Material ist in Ihrem Kurs verfügbar" in top.text
    bad = visitor(owner).get("/v/not-a-link", headers={"accept-language": "es"})
    assert bad.status_code == 404
    assert "Este no es un enlace válido" in bad.text


GERMAN = {"accept-language": "de-DE,de;q=0.9,en;q=0.5"}


def test_the_member_pages_speak_the_browsers_language(owner: Member) -> None:
    file = uploaded(owner, owner.root_folder_id, "Skript.txt", b"notes")
    assert create_link(owner, file["id"]).status_code == 201
    deleted = uploaded(owner, owner.root_folder_id, "Alt.txt", b"old")
    gone = owner.client.delete(f"/api/v1/files/{deleted['id']}", headers=owner.headers())
    assert gone.status_code == 204, gone.text

    file_page = owner.client.get(f"/files/{file['id']}", headers=GERMAN)
    assert file_page.status_code == 200, file_page.text
    page = parse_html(file_page)
    assert page.attr("html", "lang") == "de"
    assert page.texts("#versions-title") == ["Versionsverlauf"]
    assert "Link erhalten" in page.text()
    assert "Version history" not in page.text()

    links_page = owner.client.get("/links", headers=GERMAN)
    assert links_page.status_code == 200, links_page.text
    page = parse_html(links_page)
    assert page.texts("h1") == ["Links"]
    assert page.texts(".status-badge") == ["Aktiv"]
    assert "URL kopieren" in page.text()
    assert page.attr("nav.tabs", "aria-label") == "Links nach Status filtern"

    trash_page = owner.client.get("/trash", headers=GERMAN)
    assert trash_page.status_code == 200, trash_page.text
    page = parse_html(trash_page)
    assert page.texts("h1") == ["Papierkorb"]
    assert "endgültig entfernt" in page.text()
    assert page.by_role("button", "Alt.txt wiederherstellen")

    spanish = owner.client.get("/trash", headers={"accept-language": "es"})
    assert parse_html(spanish).texts("h1") == ["Papelera"]
    english = owner.client.get("/trash")
    assert parse_html(english).texts("h1") == ["Trash"]
