"""The daily reports page: days with their downloads and status, and the report settings form."""

from __future__ import annotations

from datetime import timedelta

from studyshelf.analytics.reports.daily import today_in
from studyshelf.partners.models import Role
from tests.analytics.reports_support import mark_rolled, rollup
from tests.conftest import Member, World
from tests.html import has_attr, parse_html, text_of
from tests.web.test_pages import HTML

PAGE = "/analytics/reports"


def test_the_page_lists_days_with_downloads_for_ready_ones(world: World, owner: Member) -> None:
    yesterday = today_in("UTC", world.services.clock.now()) - timedelta(days=1)
    rollup(
        world.services, scope=owner.org_id, day=yesterday, rows={("", ""): {"views": 1234, "load_ok": 9, "fails": 3}}
    )
    mark_rolled(world.services, day=yesterday)
    page = owner.client.get(PAGE, headers=HTML)
    assert page.status_code == 200, page.text
    html = page.text
    shown = parse_html(page)
    assert "Daily reports" in shown.texts("h1")
    assert shown.select_one('a[href="/analytics"]')  # back to the dashboard
    assert len(shown.select("tr.report-day")) == 30
    assert "1,234" in html
    assert "3" in shown.texts(".report-day span")
    csv_link = f"/api/v1/analytics/reports/{yesterday.isoformat()}?org_id={owner.org_id}&format=csv"
    assert shown.select_one(f'a[href="{csv_link}"]')
    assert len(shown.select('[href*="format=csv"]')) == 1  # only the ready day can be downloaded
    still_running = shown.one('.report-day .badge > span.wide:-soup-contains(", still running")')
    assert still_running.parent is not None
    assert text_of(still_running.parent) == "Today, still running"
    assert "No usage" in html  # the days before the first one with usage
    download = owner.client.get(csv_link)
    assert download.status_code == 200
    assert download.text.startswith("day,section,")
    assert len(parse_html(owner.client.get(PAGE + "?days=90", headers=HTML)).select("tr.report-day")) == 90


def test_saving_the_settings_form(world: World, owner: Member) -> None:
    form = {
        "csrf_token": owner.csrf,
        "time_zone": "Europe/Berlin",
        "emails": "dean@example.edu\ndata@example.edu",
        "webhook_url": "https://hooks.example.edu/r",
    }
    saved = owner.client.post(f"{PAGE}/settings", data=form, headers=HTML, follow_redirects=False)
    assert saved.status_code == 303
    assert saved.headers["location"] == f"{PAGE}?saved=true#report-settings"
    page = owner.client.get(f"{PAGE}?saved=true", headers=HTML).text
    assert "Report settings saved." in page
    [fields] = parse_html(page).forms("form.settings-form")
    assert fields["time_zone"] == "Europe/Berlin"
    assert fields["emails"] == "dean@example.edu\ndata@example.edu"
    assert fields["webhook_url"] == "https://hooks.example.edu/r"
    assert "Europe/Berlin" in parse_html(page).texts("strong")  # the days are now Berlin's
    assert "Show the signing secret" in page


def test_a_bad_setting_comes_back_with_the_reason_and_what_was_typed(owner: Member) -> None:
    form = {"csrf_token": owner.csrf, "time_zone": "UTC", "emails": "dean@example.edu\nnot an address"}
    response = owner.client.post(f"{PAGE}/settings", data=form, headers=HTML)
    assert response.status_code == 422
    assert "is not an e-mail address" in response.text
    assert parse_html(response).forms("form.settings-form")[0]["emails"] == "dean@example.edu\nnot an address"
    assert owner.client.get(f"/api/v1/orgs/{owner.org_id}/report-settings").json()["emails"] == []


def test_viewers_see_the_settings_but_cannot_change_them(world: World, owner: Member) -> None:
    viewer = world.member(world.org("college"), Role.VIEWER)
    page = viewer.client.get(PAGE, headers=HTML).text
    assert "Only admins and owners can change these settings." in page
    assert has_attr(parse_html(page).one("form.settings-form fieldset"), "disabled")
    assert "Show the signing secret" not in page
    form = {"csrf_token": viewer.csrf, "time_zone": "Europe/Berlin"}
    assert viewer.client.post(f"{PAGE}/settings", data=form, headers=HTML).status_code == 403


def test_the_form_needs_the_csrf_token(owner: Member) -> None:
    response = owner.client.post(f"{PAGE}/settings", data={"time_zone": "UTC"}, headers=HTML)
    assert response.status_code == 403


def test_signed_out_visitors_are_sent_to_sign_in(world: World) -> None:
    from fastapi.testclient import TestClient

    client = TestClient(world.app, base_url="http://testserver")
    response = client.get(PAGE, headers=HTML, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")
