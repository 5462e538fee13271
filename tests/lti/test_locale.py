"""The launch's `launch_presentation.locale` chooses the viewer's language for the whole viewer session."""

from __future__ import annotations

from typing import Any

from tests.html import parse_html
from tests.lti.conftest import Campus, launch, login, register, target_of
from tests.lti.platform import CLAIM, INSTRUCTOR, Simulator


def _launch(campus: Campus, simulator: Simulator, locale: str, **headers: str) -> Any:
    platform = simulator.platform("moodle")
    register(campus, platform)
    started = login(campus.lms, platform)
    claims = platform.claims(nonce=started.nonce, extra={CLAIM + "custom": target_of(campus.course, "folder")})
    claims[CLAIM + "launch_presentation"] = {**claims[CLAIM + "launch_presentation"], "locale": locale}
    claims[CLAIM + "roles"] = [INSTRUCTOR]
    campus.lms.headers.update(headers)
    return launch(campus.lms, platform, platform.sign(claims), started.state)


def test_the_launch_locale_is_kept_for_the_viewer_session(campus: Campus, simulator: Simulator) -> None:
    folder = _launch(campus, simulator, "de-DE", **{"accept-language": "es"})
    assert folder.status_code == 200, folder.text
    listing = parse_html(folder)
    assert listing.attr("html", "lang") == "de"
    assert listing.attr(".viewer-list", "aria-label") == "Inhalt"
    # A file opened inside the launched folder keeps the launch's language, whatever the browser says.
    file_url = listing.attr(".viewer-entry", "href")
    page = campus.lms.get(file_url)
    assert page.status_code == 200, page.text
    assert parse_html(page).attr("html", "lang") == "de"
    assert "Bereitgestellt von" in page.text
    assert "Aufruf dieser Platzierung" in page.text  # the teacher's placement line, with its plural


def test_an_unknown_launch_locale_falls_back_to_the_browser_then_english(campus: Campus, simulator: Simulator) -> None:
    spanish = _launch(campus, simulator, "fr-CA", **{"accept-language": "es-ES"})
    assert parse_html(spanish).attr("html", "lang") == "es"
    assert "Ofrecido por" in spanish.text


def test_an_unknown_launch_locale_without_a_header_is_english(campus: Campus, simulator: Simulator) -> None:
    english = _launch(campus, simulator, "tlh")
    assert parse_html(english).attr("html", "lang") == "en"
    assert "Delivered by" in english.text


def test_a_refused_launch_is_worded_in_the_launch_locale(campus: Campus, simulator: Simulator) -> None:
    platform = simulator.platform("moodle")
    register(campus, platform)
    started = login(campus.lms, platform)
    claims = platform.claims(nonce=started.nonce, extra={CLAIM + "custom": {"studyshelf_target": "nothing"}})
    claims[CLAIM + "launch_presentation"] = {"locale": "es"}
    refused = launch(campus.lms, platform, platform.sign(claims), started.state)
    assert refused.status_code == 400, refused.text
    assert parse_html(refused).attr("html", "lang") == "es"
    assert "Esta actividad no indica ningún material de StudyShelf" in refused.text
