"""The alarms page, the daily reports page and the analytics-data (erasure) page speak German and Spanish:
headings, labels, values chosen in Python (rule names, scopes, states, severities, contact kinds), refusals,
days and numbers; the English pages are unchanged."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from babel.messages.pofile import read_po

from studyshelf.analytics.reports.daily import today_in
from studyshelf.core import outbound
from studyshelf.jobs.runner import JOBS
from studyshelf.ops import alarms
from studyshelf.ops.alarm_metrics import METRICS
from studyshelf.partners.models import OrgKind
from studyshelf.web import i18n
from studyshelf.web.errors import WEBHOOK_URL_REFUSALS
from tests.analytics.reports_support import mark_rolled, rollup
from tests.conftest import Member, World
from tests.html import Page, parse_html, text_of

GERMAN = {"Accept": "text/html", "accept-language": "de-DE,de;q=0.9,en;q=0.5"}
SPANISH = {"Accept": "text/html", "accept-language": "es"}
ENGLISH = {"Accept": "text/html", "accept-language": "en"}
ALARMS = "/settings/alarms"
REPORTS = "/analytics/reports"
ERASURE = "/settings/analytics-data"


def _page(member: Member, path: str, headers: dict[str, str], status: int = 200) -> Page:
    response = member.client.get(path, headers=headers)
    assert response.status_code == status, response.text
    return parse_html(response)


def _run_alarms(world: World) -> None:
    """One minute of the alarm job, so that the States table has rows."""
    next(job for job in JOBS if job.name == "ops.alarms").run(world.services, "")


def _rule_form(page: Page, key: str) -> dict[str, str]:
    fields = {"csrf_token": page.attr(f"#rule-form-{key} input[name=csrf_token]", "value")}
    for control in page.select(f'[form="rule-form-{key}"][name]'):
        if control.name == "select":
            chosen = control.select_one("option[selected]") or control.select_one("option")
            assert chosen is not None
            fields[str(control["name"])] = str(chosen["value"])
        elif control.get("type") != "checkbox" or control.has_attr("checked"):
            fields[str(control["name"])] = str(control.get("value", "on"))
    return fields


def test_the_alarms_page_in_german(world: World, owner: Member) -> None:
    _run_alarms(world)
    page = _page(owner, ALARMS, GERMAN)
    assert page.attr("html", "lang") == "de"
    assert page.texts("h1") == ["Alarme"]
    assert page.texts(".card h2") == ["Zustände", "Regeln", "Wer von den Alarmen der Plattform erfährt"]
    assert "Zeiten in UTC." in text_of(page.one(".page-header"))
    assert "Regel" in page.texts("table.alarm-rules th")
    assert "Schweregrad" in page.texts("table.alarm-rules th")
    row = page.one("#rule-error_5xx")
    assert "5xx-Antworten über 2 % für 5 min" in text_of(row)
    assert "Anteil der 5xx-Antworten, global" in text_of(row)
    assert page.attr("#rule-error_5xx input[name=threshold]", "aria-label") == (
        "Schwellenwert von 5xx-Antworten über 2 % für 5 min"
    )
    severity = page.one("#rule-error_5xx select[name=severity]")
    assert [(str(o["value"]), text_of(o)) for o in severity.select("option")] == [
        ("critical", "kritisch"),
        ("warning", "Warnung"),
    ]
    assert [text_of(b) for b in page.select("#rule-error_5xx button")] == ["Speichern"]
    states = page.select("table.alarm-states tbody tr")
    assert states, "the alarm job wrote no states"
    assert {text_of(s) for s in page.select("table.alarm-states [data-state]")} <= {"OK", "ALARM"}
    assert [text_of(o) for o in page.select("#contact-kind option")] == ["E-Mail", "Webhook"]
    assert text_of(page.one("#contacts button[type=submit]")) == "Kontakt hinzufügen"
    assert "Signaturgeheimnis der Webhooks anzeigen" in page.texts("summary")
    english = " ".join(page.texts("h1, h2, th, label, button, summary"))
    for left in ("States", "Rules", "Who hears", "Severity", "Add contact", "Save", "Show the"):
        assert left not in english, left


def test_a_refused_rule_and_contact_are_explained_in_spanish(world: World, owner: Member) -> None:
    page = _page(owner, ALARMS, SPANISH)
    assert page.texts("h1") == ["Alarmas"]
    rule_id = next(r["id"] for r in owner.client.get("/api/v1/alarms/rules").json() if r["key"] == "error_5xx")
    form = _rule_form(page, "error_5xx") | {"window_minutes": "0"}
    refused = owner.client.post(f"{ALARMS}/rules/{rule_id}", data=form, headers=SPANISH)
    assert refused.status_code == 422
    alert = text_of(parse_html(refused).one("#rule-error_5xx [role=alert]"))
    assert alert == f"La ventana debe ser de 1 a {alarms.MAX_WINDOW_MINUTES} minutos."

    form = _rule_form(page, "error_5xx") | {"threshold": "7"}
    refused = owner.client.post(f"{ALARMS}/rules/{rule_id}", data=form, headers=SPANISH)
    assert "El umbral de error_5xx_rate debe estar entre 0 y 1 ratio." in refused.text

    contact = {"csrf_token": owner.csrf, "kind": "webhook", "target": "http://10.0.0.1/x"}
    refused = owner.client.post(f"{ALARMS}/contacts", data=contact, headers=SPANISH)
    assert refused.status_code == 422
    assert text_of(parse_html(refused).one("#contacts [role=alert]")) == (
        "La política de conexiones salientes rechaza esta dirección (privada, de loopback o de enlace local)."
    )
    added = owner.client.post(
        f"{ALARMS}/contacts", data=contact | {"kind": "email", "target": "guardia@example.org", "escalation": "on"}
    )
    assert added.status_code == 200
    row = parse_html(owner.client.get(ALARMS, headers=SPANISH)).one("table.alarm-contacts tbody tr")
    assert [text_of(td) for td in row.select("td")][:3] == ["Correo electrónico", "guardia@example.org", "sí"]


def test_the_alarms_page_in_english_is_unchanged(world: World, owner: Member) -> None:
    _run_alarms(world)
    page = _page(owner, ALARMS, ENGLISH)
    assert page.attr("html", "lang") == "en"
    assert page.texts("h1") == ["Alarms"]
    assert page.texts(".card h2") == ["States", "Rules", "Who hears about the platform's alarms"]
    assert "Rules watched every minute; one that fires opens an incident. Times are UTC." in page.texts("p")
    assert "reminders at 50 % and 90 % of the time to mitigate" in text_of(page.one("#contacts .card-intro"))
    row = page.one("#rule-error_5xx")
    assert "5xx answers above 2 % for 5 min" in text_of(row)
    assert page.attr("#rule-error_5xx input[name=threshold]", "aria-label") == (
        "Threshold of 5xx answers above 2 % for 5 min"
    )
    assert [text_of(o) for o in page.select("#rule-error_5xx select option")] == ["critical", "warning"]
    rule_id = next(r["id"] for r in owner.client.get("/api/v1/alarms/rules").json() if r["key"] == "error_5xx")
    form = _rule_form(page, "error_5xx") | {"datapoints": "5", "datapoints_to_alarm": "9"}
    refused = owner.client.post(f"{ALARMS}/rules/{rule_id}", data=form, headers=ENGLISH)
    assert text_of(parse_html(refused).one("#rule-error_5xx [role=alert]")) == (
        "Datapoints to alarm must be 1 to the datapoints (5)."
    )


def test_every_name_the_alarms_page_shows_is_in_the_catalogue() -> None:
    shown = {rule.name for rule in alarms.DEFAULT_RULES} | {spec.label for spec in METRICS.values()}
    shown |= {s for spec in METRICS.values() for s in spec.scopes} | {alarms.OK, alarms.ALARM, *alarms.SEVERITIES}
    shown |= {spec.unit for spec in METRICS.values()} - {"s", "h"}  # "s" and "h" read the same everywhere
    refusals = set()
    for url in ("not a url:99999", "https://user:pw@example.org/x", "ftp://example.org/x"):
        with pytest.raises(ValueError, match=r"^The webhook URL ") as refused:
            outbound.check_url(url)
        refusals.add(str(refused.value))
    assert refusals <= set(WEBHOOK_URL_REFUSALS)
    for locale in ("de", "es"):  # in the catalogue, translated ("OK" and "global" may read the same)
        with (i18n.LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as po:
            catalogue = read_po(po, locale=locale)
        for message in (*shown, *refusals):
            entry = catalogue.get(message)
            assert entry is not None, (locale, message)
            assert entry.string, (locale, message)


def _a_ready_day(world: World, owner: Member) -> str:
    yesterday = today_in("UTC", world.services.clock.now()) - timedelta(days=1)
    rollup(
        world.services, scope=owner.org_id, day=yesterday, rows={("", ""): {"views": 1234, "load_ok": 9, "fails": 3}}
    )
    mark_rolled(world.services, day=yesterday)
    return yesterday.isoformat()


def test_the_reports_page_in_german(world: World, owner: Member) -> None:
    day = _a_ready_day(world, owner)
    page = _page(owner, REPORTS, GERMAN)
    assert page.texts("h1") == ["Tagesberichte"]
    assert page.texts(".card h2") == ["Letzte 30 Tage", "Versand und Zeitzone"]
    assert page.texts("nav.tabs a") == ["Übersicht", "Berichte"]
    assert "Tage laufen von Mitternacht bis Mitternacht in UTC" in text_of(page.one(".page-header"))
    assert page.texts(".reports-table th")[:3] == ["Tag", "Status", "Aufrufe"]
    row = page.one(f'tr.report-day:has(time[datetime="{day}"])')
    assert "Fertig" in text_of(row)
    assert "1.234" in text_of(row)
    assert row.select_one(f'a[aria-label="CSV-Bericht vom {day} herunterladen"]') is not None
    weekday = text_of(row.select("td")[0])
    assert "." in weekday  # `Mo., 7. Dez. 2026`, not `Mon 07 Dec 2026`
    today = page.one('.report-day .badge > span.wide:-soup-contains(", läuft noch")')
    assert today.parent is not None
    assert text_of(today.parent) == "Heute, läuft noch"
    assert "Keine Nutzung" in page.texts(".report-day .badge")
    labels = page.texts("form.settings-form label")
    assert labels[0] == "Zeitzone"
    assert text_of(page.one("form.settings-form button")) == "Berichtseinstellungen speichern"
    english = " ".join(page.texts("h1, h2, th, label, button, summary, .badge"))
    for left in ("Daily reports", "Last 30 days", "Time zone", "Ready", "Today", "No usage", "Save report"):
        assert left not in english, left


def test_the_reports_page_in_spanish_and_its_refusals(owner: Member) -> None:
    page = _page(owner, REPORTS, SPANISH)
    assert page.texts("h1") == ["Informes diarios"]
    assert page.texts(".card h2") == ["Últimos 30 días", "Envío y zona horaria"]
    form = {"csrf_token": owner.csrf, "time_zone": "UTC", "webhook_url": "ftp://hooks.example.edu/r"}
    refused = owner.client.post(f"{REPORTS}/settings", data=form, headers=SPANISH)
    assert refused.status_code == 422
    assert "La URL del webhook debe usar https://" in text_of(parse_html(refused).one("#report-settings [role=alert]"))
    saved = owner.client.post(f"{REPORTS}/settings", data=form | {"webhook_url": ""}, headers=SPANISH)
    assert "Ajustes de los informes guardados." in saved.text


def test_the_reports_page_in_english_is_unchanged(world: World, owner: Member) -> None:
    day = _a_ready_day(world, owner)
    page = _page(owner, REPORTS, ENGLISH)
    assert page.texts("h1") == ["Daily reports"]
    assert page.texts(".card h2") == ["Last 30 days", "Sending and time zone"]
    row = page.one(f'tr.report-day:has(time[datetime="{day}"])')
    assert "Ready" in text_of(row)
    assert "1,234" in text_of(row)
    assert text_of(row.select("td")[0]) == date.fromisoformat(day).strftime("%a %d %b %Y")
    assert row.select_one(f'a[aria-label="Download the CSV report of {day}"]') is not None
    assert "Days run midnight to midnight in UTC;" in text_of(page.one(".page-header"))


def test_the_erasure_pages_in_german(world: World, owner: Member) -> None:
    partner = world.org("uni", OrgKind.PARTNER)
    page = _page(owner, ERASURE, GERMAN)
    assert page.texts("h1") == ["Analysedaten"]
    assert page.texts(".card h2") == ["Daten eines Partners löschen"]
    assert page.texts(".erasure-form label") == ["Partnerorganisation"]
    assert text_of(page.one("form.erasure-form button")) == "Prüfen, was gelöscht wird"

    confirm = _page(owner, f"{ERASURE}?org_id={partner.id}", GERMAN)
    assert confirm.texts(".card h2") == ["Analysedaten von Uni löschen?"]
    assert confirm.texts(".erasure-form label") == ["Geben Sie zur Bestätigung uni ein"]
    assert "Dies kann nicht rückgängig gemacht werden." in text_of(confirm.one("#confirm"))
    assert [text_of(b) for b in confirm.select("#confirm .form-actions > *")] == ["Analysedaten löschen", "Abbrechen"]

    form = {"csrf_token": owner.csrf, "org_id": str(partner.id)}
    refused = owner.client.post(f"{ERASURE}/erase", data=form | {"confirm": "nope"}, headers=GERMAN)
    assert refused.status_code == 422
    assert text_of(parse_html(refused).one("#confirm [role=alert]")) == (
        "Geben Sie zur Bestätigung der Löschung das Kürzel der Organisation (uni) ein."
    )
    done = owner.client.post(f"{ERASURE}/erase", data=form | {"confirm": "uni"}, headers=GERMAN)
    assert done.status_code == 200
    assert "Die Analysedaten von Uni wurden gelöscht." in text_of(parse_html(done).one("#erased"))


def test_the_erasure_page_in_spanish_and_english(world: World, owner: Member) -> None:
    spanish = _page(owner, ERASURE, SPANISH)
    assert spanish.texts("h1") == ["Datos de analítica"]
    assert "No hay organizaciones socias" in text_of(spanish.one(".erasure-card"))
    partner = world.org("uni", OrgKind.PARTNER)
    english = _page(owner, f"{ERASURE}?org_id={partner.id}", ENGLISH)
    assert english.texts("h1") == ["Analytics data"]
    assert english.texts(".card h2") == ["Erase the analytics data of Uni?"]
    assert "Type <code>uni</code> to confirm" in str(english.one(".erasure-form label"))
    refused = owner.client.post(
        f"{ERASURE}/erase", data={"csrf_token": owner.csrf, "org_id": str(partner.id), "confirm": "x"}, headers=ENGLISH
    )
    assert "Type the organisation's slug (uni) to confirm the erasure." in text_of(
        parse_html(refused).one("#confirm [role=alert]")
    )
