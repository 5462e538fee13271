"""The organisation page and the small pages around it (captions, processing, LTI registration, API docs) speak
the browser's language; English stays as it was."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import httpx

from studyshelf.partners.models import OrgKind, Role
from studyshelf.web import i18n
from studyshelf.web.render import environment
from tests.conftest import Member, World
from tests.html import parse_html
from tests.library.support import uploaded
from tests.library.test_captions_api import MP4, SRT, VTT, added

GERMAN = {"accept-language": "de-DE,de;q=0.9,en;q=0.5"}
SPANISH = {"accept-language": "es-ES,es;q=0.9"}
HTML = {"Accept": "text/html,application/xhtml+xml"}


def _htmx(member: Member, language: dict[str, str]) -> dict[str, str]:
    return {**member.headers(), **language, "HX-Request": "true"}


def _toast(response: httpx.Response) -> str:
    message: str = json.loads(response.headers["hx-trigger"])["toast"]["message"]
    return message


def test_the_organisation_page_in_german(world: World) -> None:
    org = world.org()
    owner = world.member(org, Role.OWNER)
    viewer = world.member(org, Role.VIEWER)
    invited = owner.client.post(
        "/settings/organization/invitations",
        data={"email": "neu@example.edu", "role": "editor"},
        headers=_htmx(owner, GERMAN),
    )
    assert invited.status_code == 200, invited.text
    assert _toast(invited) == "Einladung für neu@example.edu erstellt."
    assert parse_html(invited).texts(".invitation-created strong") == ["Einladung für neu@example.edu erstellt."]

    response = owner.client.get("/settings/organization", headers={**HTML, **GERMAN})
    assert response.status_code == 200, response.text
    page = parse_html(response)
    assert page.attr("html", "lang") == "de"
    assert page.texts("title") == ["Northwind · Organisation · StudyShelf"]
    assert page.texts("#members-title") == ["Mitglieder 2"]
    assert page.texts("#invite-title") == ["Jemanden einladen"]
    assert page.texts(".members-table th") == ["Mitglied", "Rolle", "Beigetreten", "Aktionen"]
    assert page.texts(".members-table caption") == ["Mitglieder von Northwind"]
    assert page.texts(".org-facts .badge") == ["Betreiber"]
    assert page.texts(".org-facts span")[-1].startswith("Seit ")
    assert page.texts(f"#role-{viewer.user_id} option") == ["Betrachter", "Redakteur", "Admin", "Inhaber"]
    assert page.texts(".members-table .badge") == ["Sie", "Inhaber"]
    assert page.by_role("button", f"{viewer.email} entfernen")
    assert "machen Sie zuerst jemand anderen zum Inhaber" in page.text()
    assert page.texts("#invitations .subhead") == ["Offene Einladungen"]
    assert page.texts("#invitations .list-row .badge") == ["Redakteur"]
    assert page.texts("#invitations .list-row .hint")[0].startswith("Läuft am ")
    assert page.select("#invitations .list-row .hint time")  # the date stays a <time> inside the sentence
    assert page.by_role("button", "Einladung für neu@example.edu zurückziehen")
    assert page.texts(".invite-form label") == ["E-Mail-Adresse", "Rolle"]
    assert page.texts(".invite-form button") == ["Einladen"]
    assert page.texts("a.btn[href='/settings/lms']") == ["LMS-Verbindungen"]
    removing = page.one(f'form[action="/settings/organization/members/{viewer.user_id}/remove"]')
    assert removing["data-confirm"] == (
        f"{viewer.email} aus Northwind entfernen? Der Zugriff und die API-Tokens dieser Person für die "
        "Organisation enden sofort."
    )
    for english in ("Members", "Invite someone", "Pending invitations", "Joined", "Withdraw", "Since "):
        assert english not in page.text(), english

    changed = owner.client.post(
        f"/settings/organization/members/{viewer.user_id}/role", data={"role": "editor"}, headers=_htmx(owner, GERMAN)
    )
    assert changed.status_code == 200, changed.text
    assert _toast(changed) == f"{viewer.email} ist jetzt Redakteur."
    invitation_id = parse_html(owner.client.get("/settings/organization")).attr(
        "#invitations form[action$='/revoke']", "action"
    )
    withdrawn = owner.client.post(invitation_id, headers=_htmx(owner, SPANISH))
    assert withdrawn.status_code == 200, withdrawn.text
    assert _toast(withdrawn) == "Se ha retirado la invitación."
    removed = owner.client.post(f"/settings/organization/members/{viewer.user_id}/remove", headers=_htmx(owner, GERMAN))
    assert _toast(removed) == "Das Mitglied wurde entfernt."


def test_the_organisation_page_in_spanish_and_read_only(world: World) -> None:
    org = world.org()
    world.member(org, Role.OWNER)
    viewer = world.member(org, Role.VIEWER)
    page = parse_html(viewer.client.get("/settings/organization", headers={**HTML, **SPANISH}))
    assert page.attr("html", "lang") == "es"
    assert page.texts("#members-title") == ["Miembros 2"]
    assert "Solo los administradores y propietarios pueden cambiar roles o invitar a personas." in page.text()
    assert sorted(page.texts(".members-table .badge")) == ["Usted", "lector", "propietario"]
    assert "Invitar a alguien" not in page.text()  # a viewer cannot invite

    policy = parse_html(viewer.client.get("/settings/organization/link-policy", headers={**HTML, **SPANISH}))
    assert policy.texts("#link-policy-title") == ["Enlaces"]
    assert "Solo los administradores y propietarios pueden cambiar estos ajustes." in policy.text()
    assert "Vigencia predeterminada (días)" in policy.text()


def test_the_link_settings_in_german(owner: Member) -> None:
    section = owner.client.get("/settings/organization/link-policy", headers=_htmx(owner, GERMAN))
    assert section.status_code == 200, section.text
    page = parse_html(section)
    assert page.texts("#link-policy-title") == ["Links"]
    assert page.texts(".policy-form button") == ["Link-Einstellungen speichern"]
    assert page.texts("#policy-spread-label") == [
        "Einen Link automatisch pausieren, wenn es innerhalb einer Stunde mehr als folgende gibt:"
    ]
    assert page.texts(".threshold span") == ["Netzwerke", "Länder", "abgewiesene Aufrufe von anderen Websites"]
    hint = page.one("#policy-origins ~ .hint")
    assert hint.select_one("code") is not None  # the example stays markup inside the translated sentence
    assert page.texts("#policy-origins ~ .hint") == [
        "Wird bei jedem neuen Einbettungs-Link eingetragen. Nur Schema und Host, z. B. "
        "https://canvas.example.edu; keine Pfade."
    ]
    assert "Default lifetime" not in page.text()
    loading = parse_html(owner.client.get("/settings/organization", headers={**HTML, **GERMAN}))
    assert "Link-Einstellungen werden geladen …" in loading.text()


def test_the_english_organisation_page_is_unchanged(world: World) -> None:
    org = world.org()
    owner = world.member(org, Role.OWNER)
    viewer = world.member(org, Role.VIEWER)
    page = parse_html(owner.client.get("/settings/organization", headers=HTML))
    assert page.attr("html", "lang") == "en"
    assert page.texts("#members-title") == ["Members 2"]
    assert page.texts("#invite-title") == ["Invite someone"]
    assert page.texts(".members-table th") == ["Member", "Role", "Joined", "Actions"]
    assert page.texts(f"#role-{viewer.user_id} option") == ["Viewer", "Editor", "Admin", "Owner"]
    assert page.texts(".org-facts .badge") == ["operator"]
    assert "owner" in page.texts(".members-table .badge")
    assert page.by_role("button", f"Remove {viewer.email}")
    assert page.attr(f'form[action="/settings/organization/members/{viewer.user_id}/remove"]', "data-confirm") == (
        f"Remove {viewer.email} from Northwind? Their access and API tokens for it stop at once."
    )
    policy = parse_html(owner.client.get("/settings/organization/link-policy", headers=HTML))
    assert policy.texts(".policy-form button") == ["Save link settings"]
    assert policy.texts("#policy-origins ~ .hint") == [
        "Filled in for every new embed link. Scheme and host only, e.g. https://canvas.example.edu; no paths."
    ]


def test_the_captions_section_and_its_toasts_in_german(owner: Member) -> None:
    file = uploaded(owner, owner.root_folder_id, "lecture.mp4", MP4)
    empty = parse_html(owner.client.get(f"/files/{file['id']}", headers={**HTML, **GERMAN}))
    assert "Noch keine Untertitel." in empty.texts("#captions .captions-empty")[0]
    english = added(owner, file["id"], VTT, language="en", default="1")
    added_page = owner.client.post(
        f"/files/{file['id']}/captions",
        files={"file": ("de.srt", SRT, "application/x-subrip")},
        data={"language": "de"},
        headers=_htmx(owner, GERMAN),
    )
    assert added_page.status_code == 200, added_page.text
    assert _toast(added_page) == "Untertitel „Deutsch“ hinzugefügt (Einträge: 1; aus SRT umgewandelt)."
    section = parse_html(added_page)
    assert section.texts("#captions-title") == ["Untertitel"]
    assert section.texts(".captions-table th") == ["Sprache", "Bezeichnung", "Einträge", "Aktionen"]
    assert section.texts(".captions-table .badge") == ["Standard"]
    assert "(aus SRT)" in section.text()
    assert section.by_role("button", "Als Standard festlegen – Deutsch")
    assert section.by_role("button", "Löschen – English")
    assert section.texts(".captions-form button") == ["Untertitel hinzufügen"]
    assert "Standardmäßig anzeigen" in section.text()
    for text in ("Captions", "Make default", "Add captions", "No captions yet"):
        assert text not in section.text(), text
    made = owner.client.post(f"/files/{file['id']}/captions/{english['id']}/default", headers=_htmx(owner, SPANISH))
    assert made.status_code == 200, made.text
    assert _toast(made) == "Los subtítulos «English» se muestran ahora de forma predeterminada."
    assert parse_html(made).texts("#captions-title") == ["Subtítulos"]
    deleted = owner.client.post(f"/files/{file['id']}/captions/{english['id']}/delete", headers=_htmx(owner, GERMAN))
    assert _toast(deleted) == "Die Untertitel „English“ wurden gelöscht."

    unchanged = parse_html(owner.client.get(f"/files/{file['id']}", headers=HTML))
    assert unchanged.texts("#captions-title") == ["Captions"]
    assert unchanged.texts(".captions-form button") == ["Add captions"]


def test_the_processing_panel_in_german(owner: Member) -> None:
    file = uploaded(owner, owner.root_folder_id, "lecture.mp4", MP4 + b"\x02")
    queued = owner.client.get(f"/files/{file['id']}/processing", headers=GERMAN)
    assert queued.status_code == 200, queued.text
    page = parse_html(queued)
    assert page.texts(".processing-title") == ["Verarbeitung"]
    assert page.texts(".processing-label") == ["Wartet auf die Verarbeitung …"]
    assert page.texts(".processing-note") == ["Bis dahin wird das Original abgespielt."]
    english = parse_html(owner.client.get(f"/files/{file['id']}/processing"))
    assert english.texts(".processing-label") == ["Waiting to be processed…"]


def _processing(locale: str, **state: Any) -> str:
    values: dict[str, Any] = {"percent": 0, "renditions": [], "page_count": None, "kind": "video", "error": None}
    processing = SimpleNamespace(**{**values, **state})
    template = environment().get_template("media/processing.html")
    with i18n.use_locale(locale):
        return template.render(processing=processing, file=SimpleNamespace(id="f1"))


def test_every_processing_state_is_translated() -> None:
    running = parse_html(_processing("de", state="running", percent=42))
    assert running.texts(".processing-label") == ["Streaming-Versionen werden vorbereitet … 42 %"]
    assert parse_html(_processing("en", state="running", percent=42)).texts(".processing-label") == [
        "Preparing streaming versions… 42%"
    ]
    video = parse_html(_processing("de", state="done", renditions=["720p", "360p"]))
    assert video.texts(".processing-label") == ["Streams in 720p, 360p, mit dem Original als Rückfallebene."]
    pages = parse_html(_processing("de", state="done", kind="document", page_count=1234))
    assert pages.texts(".processing-label") == ["1.234 Seiten."]
    one = parse_html(_processing("es", state="done", kind="document", page_count=1))
    assert one.texts(".processing-label") == ["1 página."]
    audio = parse_html(_processing("es", state="done", kind="audio", renditions=["aac"]))
    assert audio.texts(".processing-label") == ["Audio apto para la web preparado."]
    failed = parse_html(_processing("de", state="failed", kind="audio", error="ffmpeg exited with 1"))
    assert failed.texts(".processing-error") == ["Verarbeitung fehlgeschlagen: ffmpeg exited with 1"]
    assert failed.texts(".processing-note") == [
        "Das Original ist unverändert und kann weiterhin heruntergeladen und abgespielt werden."
    ]
    image = parse_html(_processing("en", state="done", kind="image"))
    assert image.texts(".processing-label") == ["Thumbnail ready."]


def _registered(locale: str, deployments: list[str]) -> str:
    template = environment().get_template("lti/registered.html")
    with i18n.use_locale(locale):
        return template.render(title="StudyShelf is registered", name="Moodle", deployments=deployments, lang=locale)


def test_the_lti_registered_page_is_translated() -> None:
    german = parse_html(_registered("de", ["1", "2"]))
    assert german.texts("h1") == ["StudyShelf ist registriert"]
    assert german.texts("title") == ["StudyShelf ist registriert · StudyShelf"]
    assert german.texts(".lead") == ["Moodle ist jetzt mit StudyShelf verbunden (Deployment 1, 2)."]
    assert "Entwicklerschlüssel" in german.text()
    spanish = parse_html(_registered("es", []))
    assert spanish.texts("h1") == ["StudyShelf está registrado"]
    assert spanish.texts(".lead") == ["Moodle ya está conectado a StudyShelf."]
    english = parse_html(_registered("en", ["1"]))
    assert english.texts("h1") == ["StudyShelf is registered"]
    assert english.texts(".lead") == ["Moodle is now connected to StudyShelf (deployment 1)."]


def test_a_registration_url_opened_in_a_browser_says_so_in_german(owner: Member) -> None:
    created = owner.client.post("/settings/lms/invites", data={"csrf_token": owner.csrf})
    assert created.status_code == 201, created.text
    url = httpx.URL(parse_html(created).attr("input#dyn-url", "value"))
    opened = owner.client.get(url.raw_path.decode(), headers=GERMAN)
    assert opened.status_code >= 400
    page = parse_html(opened)
    assert page.texts("h1") == ["StudyShelf konnte nicht registriert werden"]
    assert page.texts(".lead") == [
        "Öffnen Sie diese URL aus der dynamischen Registrierung des LMS (sie ergänzt openid_configuration)."
    ]


def test_the_api_docs_page_is_translated(owner: Member) -> None:
    german = owner.client.get("/api/docs", headers={**HTML, **GERMAN})
    assert german.status_code == 200
    page = parse_html(german)
    assert page.attr("html", "lang") == "de"
    assert page.texts("title") == ["API-Dokumentation · StudyShelf"]
    assert page.texts(".docs-bar span") == ["API-Dokumentation"]
    assert page.attr("#swagger-ui", "lang") == "en"  # Swagger UI and the OpenAPI document stay English
    spanish = parse_html(owner.client.get("/api/docs", headers={**HTML, **SPANISH}))
    assert spanish.texts(".docs-bar span") == ["Documentación de la API"]
    english = parse_html(owner.client.get("/api/docs", headers=HTML))
    assert english.texts(".docs-bar span") == ["API documentation"]
    assert english.attr("html", "lang") == "en"


def test_role_and_kind_labels_are_translated() -> None:
    template = environment().from_string("{{ role.label | translate }}|{{ role.label | translate | capitalize }}")
    with i18n.use_locale("de"):
        assert [template.render(role=role) for role in Role] == [
            "Betrachter|Betrachter",
            "Redakteur|Redakteur",
            "Admin|Admin",
            "Inhaber|Inhaber",
        ]
    with i18n.use_locale("es"):
        assert template.render(role=Role.OWNER) == "propietario|Propietario"
    with i18n.use_locale("en"):
        assert template.render(role=Role.VIEWER) == "viewer|Viewer"
    kind = environment().from_string("{{ kind.label | translate }}")
    with i18n.use_locale("es"):
        assert [kind.render(kind=k) for k in OrgKind] == ["operador", "socio"]
