"""The last untranslated strings: role badges (user menu, API tokens, invitation), the link-policy and LTI
registration messages, the shared scripts' messages (`data-ui-messages` on <body>) and the incident pages' fixed
labels speak the browser's language; English stays as it was."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select

from studyshelf.core.db import unit_of_work
from studyshelf.ops import alarms
from studyshelf.ops.models import AlarmRule, Incident, IncidentEvent
from studyshelf.partners.models import Role
from tests.conftest import Member, World
from tests.html import parse_html

GERMAN = {"accept-language": "de-DE,de;q=0.9,en;q=0.5"}
SPANISH = {"accept-language": "es-ES,es;q=0.9"}
HTML = {"Accept": "text/html,application/xhtml+xml"}
POLICY = {
    "default_ttl_days": "90",
    "max_ttl_days": "365",
    "default_origins": "",
    "max_networks_per_hour": "40",
    "max_countries_per_hour": "3",
    "max_refusals_per_hour": "20",
    "notify_webhook_url": "",
}
ENGLISH_UI = {
    "loading": "Loading…",
    "copied": "Copied to the clipboard.",
    "unreachable": "The server could not be reached. Check your connection and try again.",
    "upload_of": "Upload of %(name)s",
    "waiting": "Waiting…",
    "starting": "Starting…",
    "progress": "%(percent)s% of %(size)s",
    "uploaded": "Uploaded",
    "upload_failed": "The upload failed. Check your connection and try again.",
    "uploaded_one": "%(num)s file uploaded.",
    "uploaded_other": "%(num)s files uploaded.",
    "failed": "Something went wrong.",
    "failed_status": "Something went wrong (%(status)s).",
    "offline": "The server could not be reached.",
}


def _htmx(member: Member, language: dict[str, str]) -> dict[str, str]:
    return {**member.headers(), **language, "HX-Request": "true"}


def _toast(response: httpx.Response) -> str:
    message: str = json.loads(response.headers["hx-trigger"])["toast"]["message"]
    return message


def _ui_messages(response: httpx.Response) -> dict[str, str]:
    messages: dict[str, str] = json.loads(parse_html(response).attr("body", "data-ui-messages"))
    return messages


def _invite(member: Member, role: str) -> str:
    response = member.client.post(
        "/settings/organization/invitations",
        data={"email": "neu@example.edu", "role": role},
        headers=_htmx(member, {}),
    )
    assert response.status_code == 200, response.text
    url = urlsplit(parse_html(response).attr("input#invitation-link", "value"))
    return url._replace(scheme="", netloc="").geturl()


def test_role_badges_in_german_and_spanish(world: World) -> None:
    org = world.org()
    owner = world.member(org, Role.OWNER)
    created = owner.client.post(
        "/settings/tokens",
        data={"name": "sync", "org_id": str(org.id), "role": "editor"},
        headers={**owner.headers(), **HTML},
    )
    assert created.status_code == 200, created.text

    german = owner.client.get("/settings/tokens", headers={**HTML, **GERMAN})
    page = parse_html(german)
    assert page.texts(".user-menu .menu-header .badge") == ["Inhaber · Northwind"]
    assert page.texts(".tokens-table .badge") == ["Redakteur"]
    assert page.texts("#token-role option") == ["Wie meine Rolle", "Betrachter", "Redakteur", "Admin", "Inhaber"]
    assert [option["value"] for option in page.select("#token-role option")] == [
        "",
        "viewer",
        "editor",
        "admin",
        "owner",
    ]

    spanish = parse_html(owner.client.get("/settings/tokens", headers={**HTML, **SPANISH}))
    assert spanish.texts(".user-menu .menu-header .badge") == ["propietario · Northwind"]
    assert spanish.texts(".tokens-table .badge") == ["editor"]
    assert spanish.texts("#token-role option")[1:] == ["Lector", "Editor", "Administrador", "Propietario"]

    viewer = world.member(org, Role.VIEWER)
    menu = parse_html(viewer.client.get("/", headers={**HTML, **GERMAN}))
    assert menu.texts(".user-menu .menu-header .badge") == ["Betrachter · Northwind"]

    invitation = TestClient(world.app, base_url="http://testserver").get(
        _invite(owner, "editor"), headers={**HTML, **GERMAN}
    )
    assert invitation.status_code == 200, invitation.text
    assert parse_html(invitation).texts(".invitation-card .badge") == ["Redakteur"]


def test_role_badges_in_english_are_unchanged(world: World) -> None:
    org = world.org()
    owner = world.member(org, Role.OWNER)
    owner.client.post(
        "/settings/tokens",
        data={"name": "sync", "org_id": str(org.id), "role": "admin"},
        headers={**owner.headers(), **HTML},
    )
    page = parse_html(owner.client.get("/settings/tokens", headers=HTML))
    assert page.texts(".user-menu .menu-header .badge") == ["owner · Northwind"]
    assert page.texts(".tokens-table .badge") == ["admin"]
    assert page.texts("#token-role option") == ["Same as my role", "Viewer", "Editor", "Admin", "Owner"]
    invitation = TestClient(world.app, base_url="http://testserver").get(_invite(owner, "viewer"), headers=HTML)
    assert parse_html(invitation).texts(".invitation-card .badge") == ["viewer"]


def test_link_policy_messages_in_german_spanish_and_english(owner: Member) -> None:
    saved = owner.client.post("/settings/organization/link-policy", data=POLICY, headers=_htmx(owner, GERMAN))
    assert saved.status_code == 200, saved.text
    assert _toast(saved) == "Link-Einstellungen gespeichert."
    saved = owner.client.post("/settings/organization/link-policy", data=POLICY, headers=_htmx(owner, SPANISH))
    assert _toast(saved) == "Ajustes de enlaces guardados."
    saved = owner.client.post("/settings/organization/link-policy", data=POLICY, headers=_htmx(owner, {}))
    assert _toast(saved) == "Link settings saved."

    longer = {**POLICY, "default_ttl_days": "500", "max_ttl_days": "400"}
    refused = parse_html(
        owner.client.post("/settings/organization/link-policy", data=longer, headers=_htmx(owner, GERMAN))
    )
    assert refused.texts("#link-policy .alert-error") == [
        "Die Standard-Laufzeit darf nicht länger sein als die höchstens erlaubte."
    ]
    refused = parse_html(
        owner.client.post("/settings/organization/link-policy", data=longer, headers=_htmx(owner, SPANISH))
    )
    assert refused.texts("#link-policy .alert-error") == [
        "La vigencia predeterminada no puede superar el máximo permitido."
    ]
    refused = parse_html(owner.client.post("/settings/organization/link-policy", data=longer, headers=_htmx(owner, {})))
    assert refused.texts("#link-policy .alert-error") == ["The default lifetime cannot be longer than the maximum."]


def test_an_unknown_registration_url_is_refused_in_the_browsers_language(world: World) -> None:
    client = TestClient(world.app, base_url="http://testserver")
    german = client.get("/lti/register", headers={**HTML, **GERMAN})
    assert german.status_code == 403
    assert parse_html(german).texts("p.lead") == [
        "Diese Registrierungs-URL ist ungültig. Erstellen Sie in StudyShelf unter Organisation → LMS-Verbindungen "
        "eine neue."
    ]
    spanish = client.get("/lti/register", params={"invite": "not-a-real-one"}, headers={**HTML, **SPANISH})
    assert spanish.status_code == 403
    assert parse_html(spanish).texts("p.lead") == [
        "Esta URL de registro no es válida. Cree una nueva en StudyShelf, en Organización → Conexiones con el LMS."
    ]
    english = client.get("/lti/register", headers=HTML)
    assert parse_html(english).texts("p.lead") == [
        "This registration URL is not valid. Create a new one on Organisation → LMS connections in StudyShelf."
    ]


def test_the_scripts_messages_come_translated_on_every_member_page(owner: Member) -> None:
    german = _ui_messages(owner.client.get("/", headers={**HTML, **GERMAN}))
    assert german == {
        "loading": "Wird geladen…",
        "copied": "In die Zwischenablage kopiert.",
        "unreachable": "Der Server ist nicht erreichbar. Prüfen Sie Ihre Verbindung und versuchen Sie es erneut.",
        "upload_of": "Hochladen von %(name)s",
        "waiting": "Wartet…",
        "starting": "Wird gestartet…",
        "progress": "%(percent)s % von %(size)s",
        "uploaded": "Hochgeladen",
        "upload_failed": "Das Hochladen ist fehlgeschlagen. Prüfen Sie Ihre Verbindung und versuchen Sie es erneut.",
        "uploaded_one": "%(num)s Datei hochgeladen.",
        "uploaded_other": "%(num)s Dateien hochgeladen.",
        "failed": "Etwas ist schiefgelaufen.",
        "failed_status": "Etwas ist schiefgelaufen (%(status)s).",
        "offline": "Der Server war nicht erreichbar.",
    }
    spanish = _ui_messages(owner.client.get("/settings/tokens", headers={**HTML, **SPANISH}))
    assert spanish["copied"] == "Copiado al portapapeles."
    assert spanish["upload_of"] == "Subida de %(name)s"
    assert (spanish["uploaded_one"], spanish["uploaded_other"]) == (
        "%(num)s archivo subido.",
        "%(num)s archivos subidos.",
    )
    # English: exactly the fallbacks the scripts carry (app.js, upload.js, shared.js).
    assert _ui_messages(owner.client.get("/", headers=HTML)) == ENGLISH_UI


def _incidents(world: World) -> tuple[uuid.UUID, uuid.UUID]:
    """A global incident and an organisation-scoped one, titled as ops/incidents.py titles them."""
    now = datetime.now(UTC)
    with unit_of_work(world.services.write_sessions) as db:
        alarms.ensure_default_rules(db)
        rules = {rule.key: rule for rule in db.scalars(select(AlarmRule))}
        scope_key = str(uuid.uuid4())
        made = [
            Incident(
                rule_id=rules["error_5xx"].id,
                scope_key="",
                title="5xx answers above 2 % for 5 min",
                severity="critical",
                opened_at=now,
                deadline_at=now + timedelta(hours=14),
            ),
            Incident(
                rule_id=rules["load_fail_org"].id,
                scope_key=scope_key,
                title=f"load_fail above 5 % over 15 min (organisation) — organisation {scope_key}",
                severity="warning",
                opened_at=now,
                deadline_at=now + timedelta(hours=14),
            ),
        ]
        db.add_all(made)
        db.flush()
        for second, (kind, text) in enumerate(
            (("fired", "share of 5xx answers is 10 %"), ("notify_failed", "fired email to ops"), ("note", "on it"))
        ):
            db.add(IncidentEvent(incident_id=made[0].id, at=now + timedelta(seconds=second), kind=kind, text=text))
        return made[0].id, made[1].id


def test_incident_labels_in_german_spanish_and_english(world: World) -> None:
    admin = world.member(world.org())
    global_id, scoped_id = _incidents(world)

    listing = parse_html(admin.client.get("/settings/incidents", headers={**HTML, **GERMAN}))
    row = listing.one(f'tr[data-incident="{global_id}"]')
    assert [td.get_text(" ", strip=True) for td in row.select("td")][:2] == [
        "5xx-Antworten über 2 % für 5 min",
        "kritisch",
    ]
    scoped = listing.one(f'tr[data-incident="{scoped_id}"]')
    title = scoped.select_one("a")
    assert title is not None
    assert title.get_text(strip=True).startswith("load_fail über 5 % in 15 min (Organisation) — Organisation ")
    assert [td.get_text(strip=True) for td in scoped.select("td")][1] == "Warnung"

    page = parse_html(admin.client.get(f"/settings/incidents/{global_id}", headers={**HTML, **GERMAN}))
    assert page.texts("h1") == ["5xx-Antworten über 2 % für 5 min"]
    assert page.texts("title") == ["5xx-Antworten über 2 % für 5 min · StudyShelf"]
    assert page.texts(".page-header p.muted")[0].startswith("Schweregrad kritisch. Eröffnet ")
    assert page.texts(".incident-timeline strong") == ["ausgelöst", "Benachrichtigung fehlgeschlagen", "Notiz"]
    assert "fired email to ops" in page.text()  # the free text after the kind stays as written

    spanish = parse_html(admin.client.get(f"/settings/incidents/{scoped_id}", headers={**HTML, **SPANISH}))
    assert spanish.texts("h1")[0].startswith("load_fail por encima del 5 % en 15 min (organización) — organización ")
    assert spanish.texts(".page-header p.muted")[0].startswith("Gravedad advertencia. ")

    english = parse_html(admin.client.get(f"/settings/incidents/{global_id}", headers=HTML))
    assert english.texts("h1") == ["5xx answers above 2 % for 5 min"]
    assert english.texts(".incident-timeline strong") == ["fired", "notify failed", "note"]
    assert english.texts(".page-header p.muted")[0].startswith("Severity critical. Opened ")
    english_list = parse_html(admin.client.get("/settings/incidents", headers=HTML))
    scoped_title = english_list.one(f'tr[data-incident="{scoped_id}"] a').get_text(strip=True)
    assert (
        scoped_title == f"load_fail above 5 % over 15 min (organisation) — organisation {_scope_key(world, scoped_id)}"
    )


def _scope_key(world: World, incident_id: uuid.UUID) -> str:
    with unit_of_work(world.services.read_sessions) as db:
        incident = db.get(Incident, incident_id)
        assert incident is not None
        return incident.scope_key
