"""The performance pages of a file and a folder in German and Spanish (issue 19 point 5): headings, tables,
labels chosen in Python, the chart's messages, dates and numbers; the CSVs and the JSON stay English."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from tests.analytics.support import event
from tests.analytics.test_insight import DAY, HTML, MARCH, SAFARI_IOS, _common
from tests.conftest import World
from tests.html import Page, attr, parse_html, text_of
from tests.library.support import make_folder, uploaded
from tests.library.test_captions_api import MP4
from tests.links.support import create_link
from tests.sharing.support import Partnership, partnership

TABLES = {**HTML, "HX-Request": "true", "HX-Trigger": "insight-loader"}  # the loader's fragment, as htmx asks


@dataclass(frozen=True)
class Pages:
    """Every page of a file's and a folder's performance, in one language."""

    file: Page
    file_tables: Page
    folder: Page
    folder_tables: Page
    video_tables: Page
    empty: Page
    raw: dict[str, str]


def _usage(world: World, p: Partnership) -> dict[str, Any]:
    """Safari on iOS fails to decode the notes a third of the time, through a share link; a video is played."""
    link = create_link(p.publisher, p.notes["id"], label="Week 3 reading").json()["id"]
    common = _common(world, p, p.partner.id, p.notes, p.course)
    events = []
    for i in range(30):
        safari = i % 3 == 0
        audience = SAFARI_IOS if safari else {"device": "desktop", "country": "DE"}
        events.append(event("view", ts=DAY, viewer=f"v{i}", link_id=link, **audience, **common))
        if safari:
            events.append(event("load_fail", ts=DAY, error_class="decode", **audience, **common))
        else:
            events.append(event("load_ok", ts=DAY, load_ms=1200 if i % 2 else 120, **audience, **common))
    sub = make_folder(p.publisher, p.course["id"], "Week 1")
    rare = uploaded(p.publisher, sub["id"], "rare.txt", b"rarely opened")
    rare_common = _common(world, p, p.partner.id, rare, sub)
    rare_common["folder_path"] = (str(p.publisher.root_folder_id), p.course["id"], sub["id"])
    events += [event("view", ts=DAY, **rare_common) for _ in range(2)]
    video = uploaded(p.publisher, p.course["id"], "lecture.mp4", MP4)
    vcommon = _common(world, p, p.partner.id, video, p.course)
    events += [event("view", ts=DAY, session=s, viewer=s, lms="moodle", **vcommon) for s in ("a", "b")]
    events += [
        event(
            "playback", ts=DAY, session="a", watch_ms=95_000, reached_pct=96, rendition="mp4", captions="", **vcommon
        ),
        event("playback", ts=DAY + timedelta(minutes=2), session="b", watch_ms=4_000, reached_pct=5, **vcommon),
    ]
    world.services.warehouse.insert(events)
    return video


def _pages(world: World, p: Partnership, video: dict[str, Any], language: str) -> Pages:
    def get(path: str, headers: dict[str, str]) -> str:
        response = p.publisher.client.get(path, headers={**headers, "Accept-Language": language})
        assert response.status_code == 200, response.text
        return response.text

    raw = {
        "file": get(f"/analytics/files/{p.notes['id']}?{MARCH}", HTML),
        "file_tables": get(f"/analytics/files/{p.notes['id']}?{MARCH}", TABLES),
        "folder": get(f"/analytics/folders/{p.course['id']}?{MARCH}", HTML),
        "folder_tables": get(f"/analytics/folders/{p.course['id']}?{MARCH}", TABLES),
        "video_tables": get(f"/analytics/files/{video['id']}?{MARCH}", TABLES),
        "empty": get(f"/analytics/files/{p.notes['id']}?from=2026-01-01&to=2026-01-31", HTML),
    }
    return Pages(**{name: parse_html(html) for name, html in raw.items()}, raw=raw)


def _texts(page: Page, css: str) -> list[str]:
    return [text_of(element) for element in page.select(css)]


def _headings(*pages: Page) -> list[str]:
    return [text for page in pages for text in _texts(page, "h1, h2")]


def _row(page: Page, table: str) -> list[str]:
    return [text_of(c) for c in page.one(f'[data-table="{table}"] tbody tr').select("th, td")]


ENGLISH_HEADINGS = (
    "Views and failed loads",
    "Who fails to load it",
    "By error class",
    "By browser",
    "By device",
    "Load times",
    "By version",
    "Where it is placed",
    "Files that fail most",
    "Renditions played",
    "Captions in use",
    "No usage in this period",
)


def test_the_file_and_folder_pages_read_in_german(world: World) -> None:
    p = partnership(world)
    video = _usage(world, p)
    de = _pages(world, p, video, "de")
    assert de.file.one("html")["lang"] == "de"
    intro = text_of(de.file.one(".insight-header p"))
    assert intro.startswith("So hat diese Datei vom 1. März 2026 bis zum 31. März 2026 (Tage in UTC)")
    assert text_of(de.file.one(".page-actions .btn")) == "Datei öffnen"
    assert _texts(de.file, ".insight-presets a") == ["7 Tage", "30 Tage", "90 Tage"]
    kpis = {tile["data-kpi"]: tile for tile in de.file.select("[data-kpi]")}
    assert text_of(kpis["viewers"].select_one(".kpi-label")) == "Eindeutige Betrachter"
    assert text_of(kpis["fails"].select_one(".kpi-hint")) == "33 % von 30 Ladevorgängen"
    assert text_of(kpis["load"].select_one(".kpi-hint")) == "Median · 95. Perzentil 1,2 s"
    assert attr(de.file.one(".series-chart"), "aria-label").startswith("Aufrufe, eindeutige Betrachter")
    assert "Aufrufe und fehlgeschlagene Ladevorgänge" in _headings(de.file)
    assert _row(de.file, "series")[0] == "10. März 2026 00:00"
    messages = json.loads(attr(de.file.one("[data-insight-messages]"), "data-insight-messages"))
    assert messages == {
        "hour": "Stunde (UTC)",
        "day": "Tag",
        "week": "Woche ab",
        "month": "Monat",
        "views": "Aufrufe",
        "viewers": "Eindeutige Betrachter",
        "fails": "Fehlgeschlagene Ladevorgänge",
        "rate": "Fehlerquote",
    }

    tables = de.file_tables
    assert _headings(tables) == [
        "Bei wem das Laden fehlschlägt",
        "Nach Fehlerart",
        "Nach Browser",
        "Nach Betriebssystem",
        "Nach Gerät",
        "Nach Land",
        "Ladezeiten",
        "Nach Version",
        "Wo der Inhalt platziert ist",
    ]
    assert _texts(tables, '[data-table="failures"] thead th')[:6] == [
        "Browser",
        "Version",
        "Betriebssystem",
        "Gerät",
        "Land",
        "Fehler",
    ]
    assert _row(tables, "failures")[:6] == ["Mobile Safari 17", "17", "iOS", "Mobilgerät", "GB", "Nicht dekodierbar"]
    assert _row(tables, "failures")[8] == "100 %"
    assert _row(tables, "errors") == ["Nicht dekodierbar", "10", "33 %"]
    assert _texts(tables, '[data-table="devices"] tbody th') == ["Mobilgerät", "Desktop"]
    assert _texts(tables, ".histogram .bar-label")[-2:] == ["750 ms – 1 s", "1–1,5 s"]
    assert "Ladevorgänge" in text_of(tables.one(".histogram .bar-value"))
    assert text_of(tables.one('[data-figure="p95"]')) == "1,2 s"
    version = _row(tables, "versions")
    assert version[0] == "Version 1 (aktuell)"
    assert version[2] == "10. März 2026"
    assert _row(tables, "placements")[:2] == ["Week 3 reading", "Link"]  # a name stays as it is
    assert text_of(tables.one('a[data-csv="errors"]')) == "CSV zu „Nach Fehlerart“"

    folder = de.folder_tables
    assert "Dateien mit den meisten Fehlern" in _headings(folder)
    hint = text_of(folder.one('[data-table="files"] .insight-hint'))
    assert hint == (
        "Höchste Fehlerquote zuerst, unter den Dateien, die im Zeitraum mindestens 20-mal aufgerufen wurden "
        "(2 weitere Dateien hatten weniger Aufrufe)."
    )
    assert text_of(de.folder.one(".page-actions .btn")) == "Ordner öffnen"
    assert text_of(de.folder.one(".insight-header p")).startswith("So haben alle Inhalte dieses Ordners")

    video_tables = de.video_tables
    figures = {f["data-figure"]: f for f in video_tables.select("[data-playback] [data-figure]")}
    assert text_of(figures["watch-time"].select_one("dt")) == "Wiedergabezeit"
    assert text_of(figures["completed"].select_one(".playback-hint")) == "Aufrufe, die 90 % erreicht haben"
    assert _texts(video_tables, '[data-table="renditions"] tbody th') == ["MP4 (kein adaptives Streaming)", "Unbekannt"]
    assert _texts(video_tables, '[data-table="renditions"] thead th')[-1] == "Anteil"  # the proportion, not "Teilen"
    assert _texts(video_tables, '[data-table="captions-use"] tbody th') == ["Aus"]
    assert "In diesem Zeitraum wurden keine Ladevorgänge gemeldet." in _texts(video_tables, ".empty-line")

    assert text_of(de.empty.one(".empty-state h2")) == "Keine Nutzung in diesem Zeitraum"
    assert "Die letzten 90 Tage anzeigen" in _texts(de.empty, ".empty-state .btn")

    every = _headings(de.file, de.file_tables, de.folder, de.folder_tables, de.video_tables, de.empty)
    assert [heading for heading in ENGLISH_HEADINGS if heading in every] == []


def test_the_tables_read_in_spanish(world: World) -> None:
    p = partnership(world)
    video = _usage(world, p)
    es = _pages(world, p, video, "es")
    assert _headings(es.file_tables)[:3] == ["Quién no consigue cargarlo", "Por tipo de error", "Por navegador"]
    assert _row(es.file_tables, "failures")[3:6] == ["móvil", "GB", "No se puede decodificar"]
    assert _row(es.file_tables, "versions")[0] == "Versión 1 (actual)"
    assert _row(es.file_tables, "placements")[1] == "Enlace"
    assert text_of(es.file.one(".insight-header p")).startswith("Cómo ha funcionado este archivo del 1 mar 2026")
    assert "otros 2 archivos tuvieron menos visualizaciones" in text_of(es.folder_tables.one('[data-table="files"]'))
    assert [t for t in ENGLISH_HEADINGS if t in _headings(es.file, es.file_tables, es.folder_tables)] == []


def test_the_english_pages_keep_their_words_and_the_csv_and_json_stay_english(world: World) -> None:
    p = partnership(world)
    video = _usage(world, p)
    en = _pages(world, p, video, "en")
    assert text_of(en.file.one(".insight-header p")).startswith(
        "How this file performed from 1 Mar 2026 to 31 Mar 2026"
    )
    assert _row(en.file_tables, "failures")[:6] == ["Mobile Safari 17", "17", "iOS", "mobile", "GB", "Cannot decode"]
    assert _row(en.file_tables, "errors") == ["Cannot decode", "10", "33%"]
    assert _row(en.file_tables, "versions")[0] == "Version 1 (current)"
    assert _texts(en.file_tables, ".histogram .bar-label")[-1] == "1–1.5 s"
    assert text_of(en.file_tables.one('a[data-csv="errors"]')) == "CSV of by error class"
    assert "2 other files had fewer views" in text_of(en.folder_tables.one('[data-table="files"]'))
    assert _texts(en.video_tables, '[data-table="renditions"] tbody th') == ["MP4 (no adaptive streaming)", "Unknown"]
    assert "data-insight-messages" in en.raw["file"]

    german = {**HTML, "Accept-Language": "de"}
    failures = p.publisher.client.get(f"/analytics/files/{p.notes['id']}/failures.csv?{MARCH}", headers=german)
    rows = list(csv.reader(io.StringIO(failures.text)))
    assert rows[0] == ["Browser", "Version", "OS", "Device", "Country", "Error", "Failed", "Loads", "Fail rate"]
    assert rows[1][:6] == ["Mobile Safari 17", "17", "iOS", "mobile", "GB", "Cannot decode"]
    loads = p.publisher.client.get(f"/analytics/files/{p.notes['id']}/load-times.csv?{MARCH}", headers=german)
    assert list(csv.reader(io.StringIO(loads.text)))[-1][0] == "1–1.5 s"
    renditions = p.publisher.client.get(f"/analytics/files/{video['id']}/renditions.csv?{MARCH}", headers=german)
    assert next(csv.reader(io.StringIO(renditions.text))) == ["Rendition", "Views", "Watch time", "Share"]
    api = p.publisher.client.get(
        f"/api/v1/analytics/files/{p.notes['id']}?org_id={p.operator.id}&{MARCH}", headers={"Accept-Language": "de"}
    ).json()
    assert {row["name"] for row in api["placements"]} == {"Week 3 reading"}
    devices = json.dumps(api)
    assert "Mobile" in devices
    assert "Mobilgerät" not in devices
    assert "Nicht dekodierbar" not in devices


def test_a_filter_chip_translates_the_dashboards_labels_but_not_names(world: World) -> None:
    p = partnership(world)
    video = _usage(world, p)
    german = {**HTML, "Accept-Language": "de"}
    page = parse_html(
        p.publisher.client.get(f"/analytics/files/{video['id']}?{MARCH}&device=mobile&browser=Chrome", headers=german)
    )
    chips = {text_of(c.select_one(".chip-title")): text_of(c.select_one(".chip-label")) for c in page.select(".chip")}
    assert chips == {"Gerät": "Mobilgerät", "Browser": "Chrome"}
    assert text_of(page.one(".empty-state h2")) == "Keine Nutzung passt zu diesen Filtern"
