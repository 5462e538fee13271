"""Captions over the REST API: upload (WebVTT, SRT converted), list, replace, relabel, delete; refusals."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from studyshelf.library.jobs import purge_trash
from studyshelf.library.models import Blob, Caption
from studyshelf.partners.models import Organization, OrgKind, Role
from studyshelf.services import Services
from tests.conftest import Member, World
from tests.library.support import assert_problem, stored_state, uploaded

MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64
VTT = b"WEBVTT\n\n00:00:00.500 --> 00:00:02.000\nCells divide.\n\n00:00:02.000 --> 00:00:04.000\nProphase.\n"
SRT = b"1\r\n00:00:00,500 --> 00:00:02,000\r\nZellen teilen sich.\r\n"


def video(member: Member) -> dict[str, Any]:
    file = uploaded(member, member.root_folder_id, "lecture.mp4", MP4)
    assert file["category"] == "video"
    return file


def add(member: Member, file_id: str, data: bytes, *, name: str = "captions.vtt", **fields: str) -> httpx.Response:
    response: httpx.Response = member.client.post(
        f"/api/v1/files/{file_id}/captions",
        files={"file": (name, data, "text/vtt")},
        data=fields,
        headers=member.headers(),
    )
    return response


def added(member: Member, file_id: str, data: bytes, **fields: str) -> dict[str, Any]:
    response = add(member, file_id, data, **fields)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_webvtt_and_srt_captions_are_stored_as_webvtt_blobs(owner: Member, services: Services) -> None:
    file = video(owner)
    english = added(owner, file["id"], VTT, language="en", default="true")
    german = added(owner, file["id"], SRT, name="de.srt", language="DE", label="Deutsch (Schule)")
    assert (english["language"], english["label"], english["default"], english["cues"]) == ("en", "English", True, 2)
    assert english["sha256"] == hashlib.sha256(VTT).hexdigest()
    assert (german["language"], german["label"], german["source_format"], german["default"]) == (
        "de",
        "Deutsch (Schule)",
        "srt",
        False,
    )
    content = owner.client.get(german["content_url"])
    assert content.status_code == 200
    assert content.headers["content-type"].startswith("text/vtt")
    assert content.text == "WEBVTT\n\n1\n00:00:00.500 --> 00:00:02.000\nZellen teilen sich.\n"
    assert services.blobs.exists(german["sha256"])
    listed = owner.client.get(f"/api/v1/files/{file['id']}/captions").json()
    assert [c["language"] for c in listed] == ["en", "de"]  # the default first


def test_one_default_replace_relabel_and_delete(owner: Member) -> None:
    file = video(owner)
    english = added(owner, file["id"], VTT, language="en", default="1")
    german = added(owner, file["id"], SRT, language="de", default="1")
    listed = owner.client.get(f"/api/v1/files/{file['id']}/captions").json()
    assert [(c["language"], c["default"]) for c in listed] == [("de", True), ("en", False)]

    url = f"/api/v1/files/{file['id']}/captions/{english['id']}"
    new = VTT.replace(b"Cells divide.", b"Cells divide in four phases.")
    replaced = owner.client.put(url, files={"file": ("en.vtt", new)}, headers=owner.headers())
    assert replaced.status_code == 200, replaced.text
    assert (replaced.json()["sha256"], replaced.json()["label"]) == (hashlib.sha256(new).hexdigest(), "English")
    relabelled = owner.client.patch(url, json={"label": "English (UK)", "default": True}, headers=owner.headers())
    assert (relabelled.json()["label"], relabelled.json()["default"]) == ("English (UK)", True)
    listed = owner.client.get(f"/api/v1/files/{file['id']}/captions").json()
    assert [(c["language"], c["default"]) for c in listed] == [("en", True), ("de", False)]

    assert owner.client.delete(url, headers=owner.headers()).status_code == 204
    assert [c["id"] for c in owner.client.get(f"/api/v1/files/{file['id']}/captions").json()] == [german["id"]]
    assert_problem(owner.client.get(url + "/content"), 404, "not-found")


def test_a_language_twice_is_a_conflict(owner: Member) -> None:
    file = video(owner)
    added(owner, file["id"], VTT, language="en")
    assert_problem(add(owner, file["id"], VTT, language="EN"), 409, "caption-exists")


@pytest.mark.parametrize(
    ("data", "fields", "status", "slug"),
    [
        (b"WEBVTT\n\n00:00:01.000 --> 00:00:00.500\nhi\n", {"language": "en"}, 422, "caption-invalid"),
        (b"WEBVTT\n\nhello \xff\n", {"language": "en"}, 422, "caption-invalid"),
        (b"%PDF-1.7 not captions at all", {"language": "en"}, 422, "caption-invalid"),
        (VTT, {"language": "english please"}, 422, "caption-language-invalid"),
        (VTT, {}, 422, "caption-language-invalid"),
        (VTT, {"language": "en", "label": "x" * 101}, 422, "invalid"),
    ],
)
def test_bad_files_and_languages_are_refused_and_nothing_is_stored(
    owner: Member, services: Services, data: bytes, fields: dict[str, str], status: int, slug: str
) -> None:
    file = video(owner)
    before = stored_state(services)
    body = assert_problem(add(owner, file["id"], data, **fields), status, slug)
    if slug == "caption-invalid":
        assert body["detail"].startswith("Line ")
        assert isinstance(body["line"], int)
    assert stored_state(services) == before
    with services.read_sessions() as db:
        assert db.scalars(select(Caption)).all() == []


def test_a_caption_file_over_the_limit_is_413(owner: Member, services: Services) -> None:
    file = video(owner)
    before = stored_state(services)
    assert_problem(add(owner, file["id"], VTT + b"x" * (3 * 1024 * 1024), language="en"), 413, "too-large")
    assert stored_state(services) == before


def test_only_video_and_audio_files_have_captions(owner: Member) -> None:
    notes = uploaded(owner, owner.root_folder_id, "notes.txt", b"notes")
    assert_problem(add(owner, notes["id"], VTT, language="en"), 422, "caption-not-media")


def test_viewers_read_but_do_not_write_and_other_organisations_see_nothing(world: World, owner: Member) -> None:
    file = video(owner)
    caption = added(owner, file["id"], VTT, language="en")
    reader = world.member(_org_of(world, owner), Role.VIEWER)
    assert [c["id"] for c in reader.client.get(f"/api/v1/files/{file['id']}/captions").json()] == [caption["id"]]
    assert reader.client.get(caption["content_url"]).status_code == 200
    assert_problem(add(reader, file["id"], VTT, language="de"), 403, "permission-denied")
    url = f"/api/v1/files/{file['id']}/captions/{caption['id']}"
    assert_problem(reader.client.delete(url, headers=reader.headers()), 403, "permission-denied")
    assert_problem(reader.client.patch(url, json={"default": True}, headers=reader.headers()), 403, "permission-denied")

    stranger = world.member(world.org("contoso", kind=OrgKind.PARTNER))
    assert_problem(stranger.client.get(f"/api/v1/files/{file['id']}/captions"), 404, "not-found")
    assert_problem(stranger.client.get(caption["content_url"]), 404, "not-found")
    assert_problem(add(stranger, file["id"], VTT, language="de"), 404, "not-found")
    assert_problem(stranger.client.delete(url, headers=stranger.headers()), 404, "not-found")


def test_a_caption_of_another_file_is_not_found_through_this_one(owner: Member) -> None:
    first, second = video(owner), uploaded(owner, owner.root_folder_id, "second.mp4", MP4)
    caption = added(owner, first["id"], VTT, language="en")
    url = f"/api/v1/files/{second['id']}/captions/{caption['id']}"
    assert_problem(owner.client.delete(url, headers=owner.headers()), 404, "not-found")


def test_caption_blobs_are_kept_by_the_collector_until_their_file_is_purged(owner: Member, services: Services) -> None:
    file = video(owner)
    caption = added(owner, file["id"], VTT, language="en")
    purge_trash(services, retention_days=0)
    assert services.blobs.exists(caption["sha256"])
    assert owner.client.delete(f"/api/v1/files/{file['id']}", headers=owner.headers()).status_code == 204
    purge_trash(services, retention_days=0)
    assert not services.blobs.exists(caption["sha256"])
    with services.read_sessions() as db:
        assert db.get(Blob, caption["sha256"]) is None


def test_the_api_is_documented(owner: Member) -> None:
    paths = owner.client.get("/api/openapi.json").json()["paths"]
    assert set(paths["/api/v1/files/{file_id}/captions"]) == {"get", "post"}
    assert set(paths["/api/v1/files/{file_id}/captions/{caption_id}"]) == {"put", "patch", "delete"}
    assert "get" in paths["/api/v1/files/{file_id}/captions/{caption_id}/content"]


def _org_of(world: World, member: Member) -> Organization:
    with world.services.read_sessions() as db:
        org = db.get(Organization, member.org_id)
    assert org is not None
    return org
