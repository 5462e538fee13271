"""Each default rule fires and clears on synthetic samples as a MovableClock moves minute by minute, with its
hysteresis (one bad minute pages no one); rules are seen and changed by operator admins only, and bad values
are refused with a 422 naming the field."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from studyshelf.analytics.ingest.drain import drain_all
from studyshelf.core.clock import MovableClock
from studyshelf.core.db import unit_of_work
from studyshelf.delivery.models import Link
from studyshelf.events.memory import MemoryEventStream
from studyshelf.ops import alarm_metrics, alarms
from studyshelf.ops.backup import Status
from studyshelf.ops.backup_health import record_verify
from studyshelf.partners.models import OrgKind, Role
from studyshelf.services import Services
from studyshelf.settings import Settings
from tests.analytics.support import event
from tests.conftest import World, make_settings
from tests.library.support import uploaded
from tests.links.support import create_link
from tests.ops.alarms.support import (
    file_events,
    incidents_of,
    requests_then_run,
    run_minutes,
    states,
)

ORG_A = str(uuid.UUID(int=0xA))
ORG_B = str(uuid.UUID(int=0xB))
FILE_A = str(uuid.UUID(int=0xA1))
FILE_B = str(uuid.UUID(int=0xB1))


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:  # this module's: backups on
    return make_settings(tmp_path, db_url, smtp_url="memory://", backup_url=str(tmp_path / "backup"))


def test_p95_latency_fires_after_five_slow_minutes_and_clears_after_five_fast_ones(
    clocked: Services, clock: MovableClock
) -> None:
    run_minutes(clocked, clock)
    requests_then_run(clocked, clock, requests=40, seconds=2.0)  # one slow minute …
    for _ in range(4):
        requests_then_run(clocked, clock, requests=40, seconds=0.05)
    assert states(clocked, "latency_p95") == {"": "OK"}  # … pages no one
    for _ in range(4):
        requests_then_run(clocked, clock, requests=40, seconds=2.0)
    assert states(clocked, "latency_p95") == {"": "OK"}
    requests_then_run(clocked, clock, requests=40, seconds=2.0)
    assert states(clocked, "latency_p95") == {"": "ALARM"}
    assert len(incidents_of(clocked, "latency_p95")) == 1
    for _ in range(4):
        requests_then_run(clocked, clock, requests=40, seconds=0.05)
    assert states(clocked, "latency_p95") == {"": "ALARM"}
    requests_then_run(clocked, clock, requests=40, seconds=0.05)
    assert states(clocked, "latency_p95") == {"": "OK"}


def test_5xx_rate_adds_up_every_process_and_fires_above_two_percent(clocked: Services, clock: MovableClock) -> None:
    run_minutes(clocked, clock)
    for _ in range(5):
        requests_then_run(clocked, clock, requests=200, errors=2)  # 1 %: fine
    assert states(clocked, "error_5xx") == {"": "OK"}
    for _ in range(5):
        requests_then_run(clocked, clock, requests=200, errors=6)  # 3 %, half from each process
    assert states(clocked, "error_5xx") == {"": "ALARM"}
    (incident,) = incidents_of(clocked, "error_5xx")
    assert incident.org_id is None
    assert incident.severity == "critical"
    for _ in range(5):
        requests_then_run(clocked, clock, requests=200)
    assert states(clocked, "error_5xx") == {"": "OK"}


def test_load_fail_fires_overall_per_organisation_and_per_watched_file(clocked: Services, clock: MovableClock) -> None:
    at = clock.now()
    clocked.warehouse.insert(
        [
            *file_events(ORG_A, FILE_A, at, views=25, ok=18, fails=2),  # 10 % of file A's loads fail
            *file_events(ORG_B, FILE_B, at, views=30, ok=60, fails=0),
        ]
    )
    run_minutes(clocked, clock, 2)
    assert states(clocked, "load_fail_file") == {FILE_A: "OK", FILE_B: "OK"}  # two bad minutes of three: not yet
    run_minutes(clocked, clock)
    assert states(clocked, "load_fail") == {"": "OK"}  # 2 of 80 overall
    assert states(clocked, "load_fail_org") == {ORG_A: "ALARM", ORG_B: "OK"}
    assert states(clocked, "load_fail_file") == {FILE_A: "ALARM", FILE_B: "OK"}
    assert REGISTRY.get_sample_value("studyshelf_alarm_state", {"rule": "load_fail_file", "scope": FILE_A}) == 1
    assert REGISTRY.get_sample_value("studyshelf_alarm_state", {"rule": "load_fail_org", "scope": ORG_B}) == 0
    (incident,) = incidents_of(clocked, "load_fail_file")
    assert (str(incident.org_id), incident.scope_key, incident.severity) == (ORG_A, FILE_A, "warning")

    clocked.warehouse.insert(file_events(ORG_B, FILE_B, clock.now(), views=0, ok=0, fails=20))
    run_minutes(clocked, clock, 3)
    assert states(clocked, "load_fail") == {"": "ALARM"}  # 22 of 100

    run_minutes(clocked, clock, 15)  # the window moves past every event: three minutes without data clear
    assert states(clocked, "load_fail") == {"": "OK"}
    assert "ALARM" not in states(clocked, "load_fail_file").values()
    run_minutes(clocked, clock, 3)
    assert states(clocked, "load_fail_file") == {}  # a file without data for N minutes leaves nothing behind
    assert states(clocked, "load_fail") == {"": "OK"}


def test_a_file_with_too_few_views_is_not_watched_alone(clocked: Services, clock: MovableClock) -> None:
    clocked.warehouse.insert(file_events(ORG_A, FILE_A, clock.now(), views=3, ok=0, fails=3))
    run_minutes(clocked, clock, 3)
    assert states(clocked, "load_fail_file") == {}
    assert states(clocked, "load_fail_org") == {ORG_A: "ALARM"}


def test_ingest_lag_is_how_long_the_oldest_undrained_event_has_waited(clocked: Services, clock: MovableClock) -> None:
    lagging = dataclasses.replace(clocked, events=MemoryEventStream(clock=clock))
    # A beacon replayed after three hours offline is accepted now: its age is no lag.
    lagging.events.publish([event(ts=clock.now() - timedelta(hours=3))])
    run_minutes(lagging, clock)  # waited 60 s: not above 60
    run_minutes(lagging, clock)  # 120 s: one bad minute
    assert states(lagging, "ingest_lag") == {"": "OK"}  # 2 of 3 minutes needed
    lagging.events.publish([event(ts=clock.now())])  # newer events do not reset the oldest one's wait
    run_minutes(lagging, clock)
    assert states(lagging, "ingest_lag") == {"": "ALARM"}
    assert REGISTRY.get_sample_value("studyshelf_alarm_state", {"rule": "ingest_lag", "scope": "global"}) == 1
    assert drain_all(lagging.events, lagging.warehouse, consumer="test") == 2
    run_minutes(lagging, clock, 2)
    assert states(lagging, "ingest_lag") == {"": "OK"}
    assert REGISTRY.get_sample_value("studyshelf_alarm_state", {"rule": "ingest_lag", "scope": "global"}) == 0


def test_free_disk_is_read_from_the_data_dir(clocked: Services, clock: MovableClock) -> None:
    run_minutes(clocked, clock, 3)
    assert states(clocked, "disk_free") == {"": "OK"}  # this machine has more than 10 % free
    with unit_of_work(clocked.write_sessions) as db:
        alarms.update_rule(
            db, alarms.get_rule(db, _id(clocked, "disk_free")), changes={"threshold": 1}, now=clock.now()
        )
    run_minutes(clocked, clock, 2)  # under 100 % free: certainly
    assert states(clocked, "disk_free") == {"": "ALARM"}
    with unit_of_work(clocked.write_sessions) as db:
        alarms.update_rule(
            db, alarms.get_rule(db, _id(clocked, "disk_free")), changes={"threshold": 0}, now=clock.now()
        )
    run_minutes(clocked, clock, 2)
    assert states(clocked, "disk_free") == {"": "OK"}


def _id(services: Services, key: str) -> uuid.UUID:
    with unit_of_work(services.write_sessions) as db:
        return next(r.id for r in alarms.list_rules(db) if r.key == key)


def test_backup_lag_and_verify_age(
    clocked: Services, clock: MovableClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    location = tmp_path / "backup"
    location.mkdir()
    lag = {"seconds": 120.0}

    def replica(services: Services, now: datetime) -> Status:  # a stand-in replica with the lag we set
        return Status(location, None, "txid 2a", now, lag["seconds"], now - timedelta(days=1), 4096, 10**9)

    monkeypatch.setattr(alarm_metrics, "backup_status", replica)
    record_verify(clocked.settings, what="point", problems=[], at=clock.now() - timedelta(hours=30))
    run_minutes(clocked, clock)
    assert states(clocked, "backup_lag") == {"": "OK"}
    run_minutes(clocked, clock)
    assert states(clocked, "backup_lag") == {"": "ALARM"}
    assert states(clocked, "backup_verify") == {"": "ALARM"}  # 30 h since the last verify: past its daily schedule
    lag["seconds"] = 0.0
    record_verify(clocked.settings, what="point", problems=[], at=clock.now())
    run_minutes(clocked, clock, 2)
    assert states(clocked, "backup_lag") == {"": "OK"}
    assert states(clocked, "backup_verify") == {"": "OK"}


def test_a_leak_radar_suspension_is_an_alarm_of_its_organisation(clocked: Services, clock: MovableClock) -> None:
    world = World(clocked)
    partner = world.member(world.org("uni", OrgKind.PARTNER), Role.OWNER)
    file = uploaded(partner, partner.root_folder_id, "notes.txt", b"notes")
    link_id = create_link(partner, file["id"]).json()["id"]
    run_minutes(clocked, clock)
    with unit_of_work(clocked.write_sessions) as db:
        link = db.get(Link, link_id)
        assert link is not None
        link.suspended_at, link.suspended_reason = clock.now(), "used from 9 networks"
    run_minutes(clocked, clock)
    assert states(clocked, "link_suspension") == {str(partner.org_id): "ALARM"}  # one suspension is enough
    (incident,) = incidents_of(clocked, "link_suspension")
    assert incident.org_id == partner.org_id
    clock.advance(58 * 60)  # the scheduler was away: the next run reads the minute it is in
    run_minutes(clocked, clock)
    assert states(clocked, "link_suspension") == {str(partner.org_id): "ALARM"}  # for the rule's hour
    run_minutes(clocked, clock)
    assert states(clocked, "link_suspension") == {str(partner.org_id): "OK"}


def test_a_rule_switched_off_is_not_evaluated(clocked: Services, clock: MovableClock) -> None:
    with unit_of_work(clocked.write_sessions) as db:
        alarms.update_rule(
            db, alarms.get_rule(db, _id(clocked, "error_5xx")), changes={"enabled": False}, now=clock.now()
        )
    for _ in range(6):
        requests_then_run(clocked, clock, requests=100, errors=100)
    assert states(clocked, "error_5xx") == {}
    assert incidents_of(clocked, "error_5xx") == []


# --- the rules API --------------------------------------------------------------------------------------------


def test_operator_admins_list_and_change_rules(clocked: Services) -> None:
    world = World(clocked)
    admin = world.member(world.org(), Role.ADMIN)
    rules = admin.client.get("/api/v1/alarms/rules")
    assert rules.status_code == 200, rules.text
    by_key = {r["key"]: r for r in rules.json()}
    assert set(by_key) == {r.key for r in alarms.DEFAULT_RULES}
    assert (by_key["load_fail_file"]["threshold"], by_key["load_fail_file"]["window_minutes"]) == (0.05, 15)
    changed = admin.client.patch(
        f"/api/v1/alarms/rules/{by_key['latency_p95']['id']}",
        json={"threshold": 2.5, "datapoints": 10, "datapoints_to_alarm": 3, "enabled": False},
        headers=admin.headers(),
    )
    assert changed.status_code == 200, changed.text
    assert {k: changed.json()[k] for k in ("threshold", "datapoints", "datapoints_to_alarm", "enabled")} == {
        "threshold": 2.5,
        "datapoints": 10,
        "datapoints_to_alarm": 3,
        "enabled": False,
    }
    again = {r["key"]: r for r in admin.client.get("/api/v1/alarms/rules").json()}
    assert again["latency_p95"] == changed.json()
    assert again["error_5xx"] == by_key["error_5xx"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"metric": "cpu_temperature"}, "metric"),
        ({"window_minutes": -5}, "window_minutes"),
        ({"window_minutes": 10_000_000}, "window_minutes"),
        ({"threshold": -1}, "threshold"),
        ({"threshold": 5}, "threshold"),  # a share above 100 %
        ({"datapoints": 0}, "datapoints"),
        ({"datapoints_to_alarm": 9}, "datapoints_to_alarm"),  # more than the 5 datapoints
        ({"comparison": "=="}, "comparison"),
        ({"scope": "file"}, "scope"),  # latency is a platform figure
        ({"severity": "apocalyptic"}, "severity"),
    ],
)
def test_bad_rule_values_are_refused_naming_the_field(clocked: Services, change: dict[str, object], field: str) -> None:
    world = World(clocked)
    admin = world.member(world.org())
    rule_id = _id(clocked, "error_5xx")
    before = admin.client.get("/api/v1/alarms/rules").json()
    answer = admin.client.patch(f"/api/v1/alarms/rules/{rule_id}", json=change, headers=admin.headers())
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["type"] == "https://studyshelf.dev/problems/invalid"
    assert problem["field"] == field
    assert admin.client.get("/api/v1/alarms/rules").json() == before  # nothing changed


def test_only_operator_admins_touch_rules(clocked: Services) -> None:
    world = World(clocked)
    operator = world.org()
    editor = world.member(operator, Role.EDITOR)
    partner_owner = world.member(world.org("uni", OrgKind.PARTNER), Role.OWNER)
    rule_id = _id(clocked, "error_5xx")
    for someone in (editor, partner_owner):
        assert someone.client.get("/api/v1/alarms/rules").status_code == 403
        patched = someone.client.patch(
            f"/api/v1/alarms/rules/{rule_id}", json={"threshold": 0.5}, headers=someone.headers()
        )
        assert patched.status_code == 403
        assert patched.json()["type"] == "https://studyshelf.dev/problems/permission-denied"


def test_partners_see_only_their_own_alarm_states(clocked: Services, clock: MovableClock) -> None:
    world = World(clocked)
    admin = world.member(world.org())
    uni = world.member(world.org("uni", OrgKind.PARTNER), Role.VIEWER)
    college = world.member(world.org("college", OrgKind.PARTNER), Role.VIEWER)
    clocked.warehouse.insert(
        [
            *file_events(str(uni.org_id), FILE_A, clock.now(), views=25, ok=5, fails=5),
            *file_events(str(college.org_id), FILE_B, clock.now(), views=25, ok=10, fails=0),
        ]
    )
    run_minutes(clocked, clock, 3)
    seen_by_uni = {(s["rule_key"], s["scope_key"], s["state"]) for s in uni.client.get("/api/v1/alarms").json()}
    assert seen_by_uni == {("load_fail_org", str(uni.org_id), "ALARM"), ("load_fail_file", FILE_A, "ALARM")}
    all_states = admin.client.get("/api/v1/alarms").json()
    assert {s["scope_key"] for s in all_states} >= {str(uni.org_id), str(college.org_id), FILE_A, FILE_B, ""}
