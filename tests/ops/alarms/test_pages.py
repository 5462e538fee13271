"""The Alarms page (rules for operator admins, states, contacts) and the Incidents pages (open incidents with
the time left, a timeline with its actions); contacts through the API, webhook URLs checked when saved."""

from __future__ import annotations

import uuid

import pytest

from studyshelf.core.clock import MovableClock
from studyshelf.partners.models import OrgKind, Role
from studyshelf.services import Services
from tests.conftest import Member, World
from tests.html import form_fields, parse_html, text_of
from tests.ops.alarms.support import fire_5xx, incidents_of


def _rule_form(page_html: str, key: str) -> dict[str, str]:
    """What the rule's row submits: its controls are tied to the row's form by `form=`."""
    page = parse_html(page_html)
    fields = {"csrf_token": page.attr(f"#rule-form-{key} input[name=csrf_token]", "value")}
    for control in page.select(f'[form="rule-form-{key}"][name]'):
        name = str(control["name"])
        if control.name == "select":
            chosen = control.select_one("option[selected]") or control.select_one("option")
            assert chosen is not None
            fields[name] = text_of(chosen)
        elif control.get("type") == "checkbox":
            if control.has_attr("checked"):
                fields[name] = "on"
        else:
            fields[name] = str(control.get("value", ""))
    return fields


def test_operator_admins_edit_rules_on_the_alarms_page(clocked: Services) -> None:
    world = World(clocked)
    admin = world.member(world.org())
    page = admin.client.get("/settings/alarms")
    assert page.status_code == 200
    parsed = parse_html(page)
    assert parsed.texts("h1") == ["Alarms"]
    assert len(parsed.select("table.alarm-rules tbody tr")) == 10  # the defaults of issue 17

    form = _rule_form(page.text, "latency_p95") | {"threshold": "1.5", "datapoints_to_alarm": "3"}
    form.pop("enabled")  # switched off
    saved = admin.client.post(
        f"/settings/alarms/rules/{_rule_id(admin, 'latency_p95')}", data=form, follow_redirects=False
    )
    assert saved.status_code == 303
    again = _rule_form(admin.client.get("/settings/alarms").text, "latency_p95")
    assert (again["threshold"], again["datapoints_to_alarm"], "enabled" in again) == ("1.5", "3", False)

    bad = _rule_form(page.text, "error_5xx") | {"window_minutes": "-3"}
    refused = admin.client.post(f"/settings/alarms/rules/{_rule_id(admin, 'error_5xx')}", data=bad)
    assert refused.status_code == 422
    assert "window must be 1 to" in text_of(parse_html(refused).one("#rule-error_5xx [role=alert]"))


def _rule_id(member: Member, key: str) -> str:
    return next(r["id"] for r in member.client.get("/api/v1/alarms/rules").json() if r["key"] == key)


def test_partners_see_no_rules_and_may_not_save_one(clocked: Services) -> None:
    world = World(clocked)
    admin = world.member(world.org())
    partner = world.member(world.org("uni", OrgKind.PARTNER), Role.OWNER)
    page = parse_html(partner.client.get("/settings/alarms"))
    assert page.select("table.alarm-rules") == []
    assert page.select_one("#contacts") is not None  # its own contacts, though
    form = _rule_form(admin.client.get("/settings/alarms").text, "error_5xx") | {"csrf_token": partner.csrf}
    answer = partner.client.post(f"/settings/alarms/rules/{_rule_id(admin, 'error_5xx')}", data=form)
    assert answer.status_code == 403


@pytest.mark.parametrize(
    ("kind", "target"),
    [
        ("webhook", "http://10.1.2.3/hook"),  # private
        ("webhook", "http://127.0.0.1:9/hook"),  # loopback, not an allowed network
        ("webhook", "http://hooks.example.org/x"),  # plain http to a name
        ("webhook", "ftp://hooks.example.org/x"),
        ("webhook", "https://user:pw@hooks.example.org/x"),
        ("email", "not an address"),
    ],
)
def test_contacts_the_outbound_policy_refuses_are_422(clocked: Services, kind: str, target: str) -> None:
    world = World(clocked)
    admin = world.member(world.org())
    answer = admin.client.post(
        "/api/v1/alarms/contacts", json={"kind": kind, "target": target}, headers=admin.headers()
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == "target"
    assert admin.client.get("/api/v1/alarms/contacts").json() == []


def test_contacts_of_the_operator_and_of_an_organisation(clocked: Services) -> None:
    world = World(clocked)
    admin = world.member(world.org())
    uni = world.member(world.org("uni", OrgKind.PARTNER), Role.ADMIN)
    uni_viewer = world.member(world.org("college", OrgKind.PARTNER), Role.VIEWER)

    def add(member: Member, **body: object) -> int:
        answer = member.client.post("/api/v1/alarms/contacts", json=body, headers=member.headers())
        return answer.status_code

    assert add(admin, kind="webhook", target="https://hooks.example.org/ops") == 201
    assert add(admin, kind="webhook", target="http://127.0.0.10:8080/hook", escalation=True) == 201  # allowed network
    assert add(uni, kind="email", target="it@uni.example.edu", org_id=str(uni.org_id)) == 201
    assert add(uni, kind="email", target="it@uni.example.edu") == 403  # the operator's contacts
    assert add(uni, kind="email", target="x@uni.example.edu", org_id=str(uni_viewer.org_id)) == 404
    assert add(uni_viewer, kind="email", target="x@college.example.edu", org_id=str(uni_viewer.org_id)) == 403
    operator_contacts = admin.client.get("/api/v1/alarms/contacts").json()
    assert [(c["kind"], c["escalation"]) for c in operator_contacts] == [("webhook", False), ("webhook", True)]
    uni_contacts = uni.client.get(f"/api/v1/alarms/contacts?org_id={uni.org_id}").json()
    assert [c["target"] for c in uni_contacts] == ["it@uni.example.edu"]
    removed = uni.client.delete(
        f"/api/v1/alarms/contacts/{uni_contacts[0]['id']}?org_id={uni.org_id}", headers=uni.headers()
    )
    assert removed.status_code == 204
    gone = admin.client.delete(f"/api/v1/alarms/contacts/{uuid.uuid4()}", headers=admin.headers())
    assert gone.status_code == 404


def test_a_contact_added_on_the_page(clocked: Services) -> None:
    world = World(clocked)
    admin = world.member(world.org())
    refused = admin.client.post(
        "/settings/alarms/contacts", data={"csrf_token": admin.csrf, "kind": "webhook", "target": "http://10.0.0.1/x"}
    )
    assert refused.status_code == 422
    page = parse_html(refused)
    assert "outbound policy refuses" in text_of(page.one("#contacts [role=alert]"))
    assert form_fields(page.one("#contacts form.settings-form"))["target"] == "http://10.0.0.1/x"  # kept
    added = admin.client.post(
        "/settings/alarms/contacts",
        data={"csrf_token": admin.csrf, "kind": "email", "target": "oncall@example.org", "escalation": "on"},
        follow_redirects=False,
    )
    assert added.status_code == 303
    rows = parse_html(admin.client.get("/settings/alarms")).select("table.alarm-contacts tbody tr")
    assert [text_of(row.select("td")[1]) for row in rows] == ["oncall@example.org"]


def test_the_incidents_pages_list_time_left_and_take_actions(clocked: Services, clock: MovableClock) -> None:
    world = World(clocked)
    admin = world.member(world.org())
    fire_5xx(clocked, clock)
    (incident,) = incidents_of(clocked, "error_5xx")

    listing = parse_html(admin.client.get("/settings/incidents"))
    row = listing.one(f'tr[data-incident="{incident.id}"]')
    assert text_of(row.select_one("a") or row) == "5xx answers above 2 % for 5 min"
    assert text_of(row.select_one(".time-left") or row) == "14.0 h"
    assert listing.select_one("#figures") is not None  # the operator's monthly figures

    page = admin.client.get(f"/settings/incidents/{incident.id}")
    parsed = parse_html(page)
    assert parsed.attr("#incident-status", "data-status") == "new"
    assert [li["data-kind"] for li in parsed.select(".incident-timeline li")] == ["fired"]
    acknowledge = parsed.one(f'form[action="/settings/incidents/{incident.id}/acknowledge"]')
    done = admin.client.post(str(acknowledge["action"]), data=form_fields(acknowledge), follow_redirects=False)
    assert done.status_code == 303
    note = parsed.one(f'form[action="/settings/incidents/{incident.id}/note"]')
    admin.client.post(str(note["action"]), data=form_fields(note) | {"text": "on it"})
    after = parse_html(admin.client.get(f"/settings/incidents/{incident.id}"))
    assert after.attr("#incident-status", "data-status") == "acknowledged"
    assert [li["data-kind"] for li in after.select(".incident-timeline li")] == ["fired", "acknowledged", "note"]

    partner = world.member(world.org("uni", OrgKind.PARTNER), Role.OWNER)
    assert partner.client.get(f"/settings/incidents/{incident.id}").status_code == 404
    assert parse_html(partner.client.get("/settings/incidents")).select("tr[data-incident]") == []
