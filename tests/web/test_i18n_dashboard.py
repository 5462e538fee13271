"""The analytics dashboard in the viewer's language (issue 19 point 5): headings, labels, figures and dates of the
page, its live panel and its JS words follow Accept-Language; CSV downloads stay English; English is unchanged."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

from tests.analytics.support import event
from tests.analytics.test_insight_playback import TABLES, _video_played
from tests.conftest import World
from tests.html import parse_html, text_of
from tests.sharing.support import Partnership, partnership
from tests.web.test_analytics_pages import MARCH, _uses

HTML = {"Accept": "text/html,application/xhtml+xml"}
HTMX = {"HX-Request": "true"}
DE = {"accept-language": "de-DE,de;q=0.9,en;q=0.5"}
ES = {"accept-language": "es-ES,es;q=0.9"}
EN = {"accept-language": "en-GB,en;q=0.9"}
FEBRUARY = datetime(2026, 2, 10, 12, 0, tzinfo=UTC)
# Every heading and fixed label of the page in English: none may be left on a translated page.
ENGLISH = (
    "Analytics",
    "Dashboard",
    "Reports",
    "Period and filters",
    "All countries",
    "Live",
    "Views and failed loads",
    "Where materials are used",
    "Top files",
    "Top folders",
    "Rising and falling files",
    "Unique viewers",
    "Failed loads",
    "Data transferred",
    "Load time",
    "Browsers",
    "File types",
    "Devices",
    "Learning platforms",
)


def _used(world: World, p: Partnership) -> None:
    """Views in March from two countries on two devices, one failed load and one download; fewer in February."""
    _uses(world, p, p.partner.id, 3, country="GB", device="mobile")
    _uses(world, p, p.partner.id, 1, country="FR", device="desktop", browser="Firefox", lms="canvas")
    _uses(world, p, p.partner.id, 1, ts=FEBRUARY, country="GB")
    common = {"owner_org": str(p.operator.id), "partner_org": str(p.partner.id), "file_id": p.notes["id"]}
    day = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    world.services.warehouse.insert(
        [
            event("load_ok", ts=day, load_ms=200, **common),
            event("load_fail", ts=day, error_class="network", **common),
            event("download", ts=day, bytes=4096, **common),
        ]
    )


def _figures(p: Partnership, language: dict[str, str], query: str = f"{MARCH}&compare=1") -> Any:
    response = p.publisher.client.get(f"/analytics?{query}", headers={**HTMX, **language})
    assert response.status_code == 200, response.text
    return response


def _headings(page: Any) -> list[str]:
    return [text_of(h) for h in page.select("h1, h2, h3")]


def _kpi_labels(page: Any) -> dict[str, str]:
    return {tile["data-kpi"]: text_of(tile.select_one(".kpi-label")) for tile in page.select("[data-kpi]")}


def _left_in_english(html: str, page: Any) -> list[str]:
    texts = set(_headings(page)) | {text_of(e) for e in page.select(".kpi-label, .tabs a, option, legend, th, dt")}
    texts |= {e.get("aria-label", "") for e in page.select("[aria-label]")}
    return [word for word in ENGLISH if word in texts]


def test_the_page_shell_speaks_german(world: World) -> None:
    p = partnership(world)
    response = p.publisher.client.get("/analytics", headers={**HTML, **DE})
    assert response.status_code == 200
    assert response.headers["content-language"] == "de"
    page = parse_html(response)
    assert page.attr("html", "lang") == "de"
    assert text_of(page.one("h1")) == "Analysen"
    assert [text_of(a) for a in page.select(".tabs a")] == ["Übersicht", "Berichte"]
    assert "Tage gelten in der Zeitzone" in text_of(page.one(".page-header p"))
    assert text_of(page.one('.page-header a[href="/analytics/reports"]')) == "Berichtseinstellungen"
    assert page.attr("form.analytics-filters", "aria-label") == "Zeitraum und Filter"
    assert [text_of(s) for s in page.select(".segment span")][:3] == ["Heute", "7 Tage", "30 Tage"]
    labels = {text_of(label) for label in page.select(".filter-grid label")}
    assert {"Organisation", "Ordner", "Dateityp", "Land", "Gerät", "Plattform", "Kurs"} <= labels
    options = {text_of(o) for o in page.select("#a-device option")}
    assert options == {"Alle Geräte", "Desktop", "Mobilgerät", "Tablet", "Unbekannt"}
    assert {text_of(o) for o in page.select("#a-category option")} >= {"Alle Dateitypen", "Bild", "Sonstige", "PDF"}
    assert {text_of(o) for o in page.select("#a-lms option")} >= {"Direkt (kein LMS)", "Anderes LMS", "Moodle"}
    assert text_of(page.one("[role=status]")) in {"Nutzungszahlen werden geladen…", "Wird geladen…"}
    assert "Nutzungszahlen werden geladen…" in response.text
    assert _left_in_english(response.text, page) == []


def test_the_figures_speak_german_with_german_numbers(world: World) -> None:
    p = partnership(world)
    _used(world, p)
    response = _figures(p, DE)
    page = parse_html(response)
    assert _kpi_labels(page) == {
        "views": "Aufrufe",
        "viewers": "Eindeutige Betrachter",
        "fails": "Fehlgeschlagene Ladevorgänge",
        "downloads": "Downloads",
        "bytes": "Übertragene Daten",
        "load": "Ladezeit",
    }
    assert text_of(page.one('[data-kpi="bytes"] .kpi-value')) == "4,0 KB"
    assert text_of(page.one('[data-kpi="fails"] .kpi-hint')) == "50% von 2 Ladevorgängen"
    assert text_of(page.one('[data-kpi="viewers"] .kpi-hint')) == "pro Tag gezählt"
    assert "Median · 95. Perzentil 200 ms" in text_of(page.one('[data-kpi="load"] .kpi-hint'))
    assert text_of(page.one('[data-change="views"] .visually-hidden')) == "gegenüber dem vorherigen Zeitraum"
    assert text_of(page.one('[data-kpi="downloads"] .kpi-change-text')) == "+1 (vorher keine)"
    note = text_of(page.one("[data-compare-note]"))
    assert note.startswith("Veränderungen beziehen sich auf die vorherigen 31 Tage (")
    assert "Feb. 2026" in note or "Februar 2026" in note
    headings = _headings(page)
    for heading in (
        "Live · letzte 30 Minuten",
        "Aufrufe und fehlgeschlagene Ladevorgänge",
        "Wo Materialien genutzt werden",
        "Browser",
        "Dateitypen",
        "Geräte",
        "Lernplattformen",
        "Meistaufgerufene Dateien",
        "Meistaufgerufene Ordner",
        "Steigende und fallende Dateien",
        "Steigend",
        "Fallend",
    ):
        assert heading in headings, (heading, headings)
    assert _left_in_english(response.text, page) == []
    # Bars: our own labels translated, names and figures as they are; notes in German.
    devices = {text_of(b.select_one(".bar-label")): b for b in page.select('[data-breakdown="device"] .bar-row')}
    assert set(devices) == {"Mobilgerät", "Desktop"}
    assert text_of(devices["Mobilgerät"].select_one(".bar-note")) == "75% der Aufrufe"
    assert devices["Mobilgerät"]["title"] == "Nur Mobilgerät anzeigen"
    assert "Firefox" in {text_of(b) for b in page.select('[data-breakdown="browser"] .bar-label')}
    # The top files' table and its actions.
    assert [text_of(th) for th in page.select('[data-top="files"] th')][:6] == [
        "Datei",
        "Aufrufe",
        "Betrachter",
        "Fehlgeschlagen",
        "Downloads",
        "Daten",
    ]
    assert page.attr(f'[data-insight="{p.notes["id"]}"]', "title") == "Leistung von notes.txt"
    assert page.attr(f'[data-drill="{p.notes["id"]}"]', "title") == "Nur notes.txt anzeigen"
    assert page.attr('[data-csv="totals"]', "title") == "die Summen als CSV herunterladen"
    assert text_of(page.one('[data-csv="totals"]')) == "Summen als CSV · die Summen"
    assert page.attr('[data-csv="device"]', "title") == "Geräte als CSV herunterladen"
    # The map: figures in German, and the words its script shows.
    assert page.attr('[data-map-table] [data-region="GB"]', "title") == "Nur dieses Land anzeigen"
    figures = page.attr('.world-map [data-country="GB"]', "data-figures")
    assert figures == "3 Aufrufe, 50,0 % der Ladevorgänge fehlgeschlagen"
    assert json.loads(page.attr("[data-map]", "data-map-messages")) == {"show_only": "Nur dieses Land anzeigen"}
    # The movers: words and figures.
    rising = text_of(page.one('[data-movers="rising"] li'))
    assert "Aufrufe, vorher 1" in rising
    # The chart's words for analytics.js, and its description.
    chart = page.one("[data-timeseries]")
    words = json.loads(chart["data-chart-messages"])
    assert words["day"] == "Tag"
    assert words["views"] == "Aufrufe"
    assert words["previous"] == "Aufrufe, %(period)s"
    assert chart["aria-label"].startswith("Aufrufe und fehlgeschlagene Ladevorgänge pro Tag, 1.–31. März 2026")
    series = json.loads(chart["data-timeseries"])
    assert "Feb" in series["previous_label"]


def test_the_figures_speak_spanish(world: World) -> None:
    p = partnership(world)
    _used(world, p)
    response = _figures(p, ES)
    assert response.headers["content-language"] == "es"
    page = parse_html(response)
    assert _kpi_labels(page)["viewers"] == "Espectadores únicos"
    assert _kpi_labels(page)["fails"] == "Cargas fallidas"
    assert text_of(page.one('[data-kpi="bytes"] .kpi-value')) == "4,0 KB"
    headings = _headings(page)
    assert "Visualizaciones y cargas fallidas" in headings
    assert "Dónde se usan los materiales" in headings
    assert "Archivos más vistos" in headings
    assert "Archivos en alza y en descenso" in headings
    assert {text_of(b) for b in page.select('[data-breakdown="device"] .bar-label')} == {"Móvil", "Escritorio"}
    assert json.loads(page.attr("[data-timeseries]", "data-chart-messages"))["fails"] == "Cargas fallidas"
    assert _left_in_english(response.text, page) == []
    shell = parse_html(p.publisher.client.get("/analytics", headers={**HTML, **ES}))
    assert text_of(shell.one("h1")) == "Analíticas"
    assert "Todos los países" in {text_of(o) for o in shell.select("#a-country option")}


def test_english_is_unchanged(world: World) -> None:
    p = partnership(world)
    _used(world, p)
    response = _figures(p, EN)
    assert response.headers["content-language"] == "en"
    page = parse_html(response)
    assert _kpi_labels(page)["viewers"] == "Unique viewers"
    assert text_of(page.one('[data-kpi="bytes"] .kpi-value')) == "4.0 KB"
    assert text_of(page.one('[data-kpi="fails"] .kpi-hint')) == "50% of 2 loads"
    assert text_of(page.one('[data-kpi="downloads"] .kpi-change-text')) == "+1 (none before)"
    note = "Changes are against the previous 31 days (29 Jan – 28 Feb 2026)."
    assert text_of(page.one("[data-compare-note]")) == note
    assert page.attr("[data-timeseries]", "aria-label") == "Views and failed loads per day, 1 Mar – 31 Mar 2026 (UTC)"
    assert page.attr('[data-csv="totals"]', "title") == "Download the totals as CSV"
    assert page.attr('[data-csv="device"]', "title") == "Download Devices as CSV"
    devices = {text_of(b.select_one(".bar-label")): b for b in page.select('[data-breakdown="device"] .bar-row')}
    assert set(devices) == {"Mobile", "Desktop"}
    assert text_of(devices["Mobile"].select_one(".bar-note")) == "75% of views"
    assert "Where materials are used" in _headings(page)
    assert json.loads(page.attr("[data-timeseries]", "data-chart-messages"))["day"] == "Day"
    shell = parse_html(p.publisher.client.get("/analytics", headers={**HTML, **EN}))
    assert text_of(shell.one("h1")) == "Analytics"
    assert text_of(shell.one(".range-text span")).endswith("2026")


def test_the_empty_state_chips_and_live_panel_speak_german(world: World) -> None:
    p = partnership(world)
    empty = parse_html(_figures(p, DE, "days=7"))
    assert "Keine Nutzung in diesem Zeitraum" in _headings(empty)
    assert text_of(empty.one(".dashboard-empty .btn")) == "Die letzten 90 Tage anzeigen"
    filtered = parse_html(_figures(p, DE, f"{MARCH}&country=NZ&device=tablet&category=other"))
    assert "Keine Nutzung passt zu diesen Filtern" in _headings(filtered)
    chips = {
        text_of(c.select_one(".chip-title")): text_of(c.select_one(".chip-label")) for c in filtered.select(".chip")
    }
    assert chips == {"Land": "NZ", "Gerät": "Tablet", "Dateityp": "Sonstige"}
    assert filtered.attr(".chip", "title") == "Diesen Filter entfernen"
    assert text_of(filtered.one(".chip-clear")) == "Alle entfernen"
    own = parse_html(_figures(p, DE, f"{MARCH}&partner={p.operator.id}"))
    assert text_of(own.one(".chip .chip-label")).endswith(" (Ihre Organisation)")
    assert text_of(own.one(".chip .chip-title")) == "Organisation"
    live = p.publisher.client.get("/analytics/live", headers={**HTMX, **DE})
    assert live.status_code == 200
    panel = parse_html(live)
    assert text_of(panel.one("h2")) == "Live · letzte 30 Minuten"
    assert text_of(panel.one(".live-updated")).startswith("Aktualisiert um ")
    assert [text_of(dt) for dt in panel.select("dt")] == [
        "Aufrufe",
        "Fehlgeschlagene Ladevorgänge",
        "Aktive Betrachter",
        "Aufrufe in der letzten Minute",
    ]
    assert text_of(panel.one(".live-table summary")) == "Minute für Minute"
    assert "In den letzten 30 Minuten wurde nichts geöffnet." in live.text


def test_csv_downloads_stay_english_on_a_german_page(world: World) -> None:
    p = partnership(world)
    _used(world, p)
    answer = p.publisher.client.get(f"/analytics/table.csv?{MARCH}&table=device", headers=DE)
    assert answer.status_code == 200
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0][:3] == ["device", "name", "views"]
    assert {row[1] for row in rows[1:]} == {"Mobile", "Desktop"}


def test_a_videos_playback_speaks_german(world: World) -> None:
    p = partnership(world)
    video = _video_played(world, p)
    page = p.publisher.client.get(f"/analytics/files/{video['id']}?{MARCH}", headers={**TABLES, **DE})
    assert page.status_code == 200, page.text
    html = parse_html(page)
    assert text_of(html.one("#playback-title")) == "Wiedergabe"
    assert "wie weit jeder Aufruf in das Video gekommen ist" in text_of(html.one("[data-playback] .insight-hint"))
