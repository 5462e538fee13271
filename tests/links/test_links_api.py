"""Creating, listing, editing and revoking links; origin normalisation and bad input."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from studyshelf.core.clock import utcnow
from studyshelf.core.errors import Invalid
from studyshelf.delivery.embed import normalise_origin
from studyshelf.delivery.links import is_link_id
from tests.conftest import Member
from tests.html import parse_html
from tests.library.support import assert_problem, make_folder, uploaded
from tests.links.support import LMS, create_link


def test_a_link_has_128_random_bits_a_url_and_a_snippet(owner: Member) -> None:
    file = uploaded(owner, owner.root_folder_id, "notes.txt", b"notes")
    created = create_link(owner, file["id"], label="Biology 101")
    assert created.status_code == 201, created.text
    body = created.json()
    assert is_link_id(body["id"])
    assert body["url"].endswith(f"/v/{body['id']}")
    assert parse_html(body["embed_html"]).attr("iframe", "src") == body["url"]
    assert body["allowed_origins"] == [LMS]
    assert body["status"] == "active"
    other = create_link(owner, file["id"]).json()
    assert other["id"] != body["id"]


def test_links_are_listed_edited_and_revoked(owner: Member) -> None:
    file = uploaded(owner, owner.root_folder_id, "notes.txt", b"notes")
    link = create_link(owner, file["id"]).json()
    listed = owner.client.get("/api/v1/links", params={"org_id": str(owner.org_id), "target_id": file["id"]}).json()
    assert [item["id"] for item in listed] == [link["id"]]
    later = (utcnow() + timedelta(days=200)).isoformat()
    edited = owner.client.patch(
        f"/api/v1/links/{link['id']}",
        json={
            "expires_at": later,
            "allowed_origins": ["https://canvas.example.com/", "https://MOODLE.example.edu:443"],
        },
        headers=owner.headers(),
    ).json()
    assert edited["allowed_origins"] == ["https://canvas.example.com", "https://moodle.example.edu"]
    revoked = owner.client.post(f"/api/v1/links/{link['id']}/revoke", headers=owner.headers()).json()
    assert revoked["status"] == "revoked"


@pytest.mark.parametrize(
    ("origins", "why"),
    [
        (["https://moodle.example.edu/course"], "path"),
        (["https://*.instructure.com"], "wildcard"),
        (["https://user:pw@moodle.example.edu"], "user"),
        (["ftp://moodle.example.edu"], "scheme"),
        (["http://moodle.example.edu"], "https"),
    ],
)
def test_bad_origins_are_refused_with_a_reason(owner: Member, origins: list[str], why: str) -> None:
    file = uploaded(owner, owner.root_folder_id, "notes.txt", b"notes")
    refused = create_link(owner, file["id"], allowed_origins=origins)
    assert why in assert_problem(refused, 422, "invalid")["detail"]
    assert owner.client.get("/api/v1/links", params={"org_id": str(owner.org_id)}).json() == []


def test_idn_origins_are_normalised_to_punycode() -> None:
    assert normalise_origin("https://bücher.example") == "https://xn--bcher-kva.example"
    assert normalise_origin("http://127.0.0.1:8123/") == "http://127.0.0.1:8123"


@given(st.text(max_size=80))
def test_origin_normalisation_never_crashes_and_is_idempotent(raw: str) -> None:
    try:
        origin = normalise_origin(raw)
    except Invalid:
        return
    assert normalise_origin(origin) == origin
    assert "/" not in origin.split("://", 1)[1]


def test_absurd_expiries_and_limits_are_refused(owner: Member) -> None:
    file = uploaded(owner, owner.root_folder_id, "notes.txt", b"notes")
    far = (utcnow() + timedelta(days=5000)).isoformat()
    assert "at most" in assert_problem(create_link(owner, file["id"], expires_at=far), 422, "invalid")["detail"]
    past = (utcnow() - timedelta(minutes=1)).isoformat()
    assert_problem(create_link(owner, file["id"], expires_at=past), 422, "invalid")
    assert_problem(create_link(owner, file["id"], max_views=0), 422, "invalid")
    assert_problem(create_link(owner, file["id"], allowed_origins=[]), 422, "invalid")  # embed needs an origin
    assert_problem(owner.client.get("/api/v1/links/not-a-link"), 404, "not-found")


def test_a_folder_link_and_a_direct_link(owner: Member) -> None:
    folder = make_folder(owner, owner.root_folder_id, "Week 1")
    created = create_link(owner, folder["id"], target_type="folder", mode="direct", allowed_origins=[])
    assert created.status_code == 201, created.text
    assert created.json()["mode"] == "direct"
