"""Captions in the viewer: <track>s with signed, expiring /m/ URLs (text/vtt), renewed with the media."""

from __future__ import annotations

import dataclasses
import re

import pytest

from studyshelf.core.clock import MovableClock
from studyshelf.partners.models import Role
from studyshelf.services import Services
from tests.conftest import Member, World
from tests.html import attr, has_attr, parse_html
from tests.library.support import assert_problem, uploaded
from tests.library.test_captions_api import MP4, SRT, VTT, _org_of, added
from tests.links.support import EMBEDDED, create_link, link_path, visitor


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def moved_world(services: Services, clock: MovableClock) -> World:
    return World(dataclasses.replace(services, clock=clock))


def captioned_link(owner: Member) -> tuple[str, dict[str, str]]:
    file = uploaded(owner, owner.root_folder_id, "lecture.mp4", MP4)
    english = added(owner, file["id"], VTT, language="en", default="true")
    german = added(owner, file["id"], SRT, language="de")
    return link_path(create_link(owner, file["id"])), {"file": file["id"], "en": english["id"], "de": german["id"]}


def test_the_viewer_shows_caption_tracks_with_signed_urls(moved_world: World) -> None:
    owner = moved_world.member(moved_world.org())
    path, ids = captioned_link(owner)
    learner = visitor(owner)
    page = parse_html(learner.get(path, headers=EMBEDDED))
    tracks = page.select("video[data-media] track")
    assert [(attr(t, "kind"), attr(t, "srclang"), attr(t, "label"), has_attr(t, "default")) for t in tracks] == [
        ("captions", "en", "English", True),
        ("captions", "de", "Deutsch", False),
    ]
    assert page.select_one("[data-transcript]") is not None
    assert any("transcript.js" in attr(s, "src") for s in page.select("script[src]"))
    src = attr(tracks[0], "src")
    assert re.fullmatch(r"/m/[^/]+/\d+/[A-Za-z0-9_-]{22}/" + ids["en"] + r"/[0-9a-f]{64}/.+/lecture\.en\.vtt", src)
    answer = learner.get(src)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/vtt")
    assert answer.headers["cache-control"].startswith("public, max-age=")
    assert answer.content == VTT
    german = learner.get(attr(tracks[1], "src"))
    assert german.text.startswith("WEBVTT\n\n1\n00:00:00.500 --> 00:00:02.000\nZellen")


def test_track_urls_expire_and_renew_with_the_media(moved_world: World, clock: MovableClock) -> None:
    owner = moved_world.member(moved_world.org())
    path, ids = captioned_link(owner)
    learner = visitor(owner)
    page = parse_html(learner.get(path, headers=EMBEDDED))
    src = attr(page.one("track[srclang=en]"), "src")
    stage = page.one("[data-viewer]")
    clock.advance(moved_world.services.settings.media_url_ttl_seconds + 120)
    body = assert_problem(learner.get(src), 403, "media-refused")
    assert body["reason"] == "expired"
    fresh = learner.post(
        attr(stage, "data-renew-url"), json={"token": attr(stage, "data-token"), "file_id": ids["file"]}
    )
    assert fresh.status_code == 200, fresh.text
    captions = fresh.json()["captions"]
    assert [(c["id"], c["language"], c["label"], c["default"]) for c in captions] == [
        (ids["en"], "en", "English", True),
        (ids["de"], "de", "Deutsch", False),
    ]
    assert learner.get(captions[0]["url"]).content == VTT


def test_a_tampered_track_url_is_refused(owner: Member) -> None:
    path, _ids = captioned_link(owner)
    learner = visitor(owner)
    src = attr(parse_html(learner.get(path, headers=EMBEDDED)).one("track[srclang=en]"), "src")
    assert_problem(learner.get(src.replace("lecture.en.vtt", "lecture.de.vtt")), 403, "media-refused")


def test_audio_has_tracks_too_and_uncaptioned_media_has_none(owner: Member) -> None:
    audio = uploaded(owner, owner.root_folder_id, "talk.mp3", b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb" * 64)
    assert audio["category"] == "audio"
    added(owner, audio["id"], VTT, language="fr")
    page = parse_html(visitor(owner).get(link_path(create_link(owner, audio["id"])), headers=EMBEDDED))
    assert [attr(t, "srclang") for t in page.select("audio[data-media] track")] == ["fr"]
    plain = uploaded(owner, owner.root_folder_id, "plain.mp4", MP4 + b"\x01")
    page = parse_html(visitor(owner).get(link_path(create_link(owner, plain["id"])), headers=EMBEDDED))
    assert page.select("track") == []
    assert page.select_one("[data-transcript]") is None


def test_the_file_page_previews_with_tracks_and_manages_captions(owner: Member) -> None:
    file = uploaded(owner, owner.root_folder_id, "lecture.mp4", MP4)
    added(owner, file["id"], VTT, language="en", default="1")
    page = parse_html(owner.client.get(f"/files/{file['id']}"))
    track = page.one("video[data-preview] track")
    assert attr(track, "src").startswith(f"/api/v1/files/{file['id']}/captions/")
    assert page.select_one("form.captions-form") is not None
    added_page = owner.client.post(
        f"/files/{file['id']}/captions",
        files={"file": ("de.srt", SRT, "application/x-subrip")},
        data={"language": "de"},
        headers={**owner.headers(), "HX-Request": "true"},
    )
    assert added_page.status_code == 200, added_page.text
    assert "Added Deutsch captions: 1 cue (converted from SRT)." in added_page.headers["hx-trigger"]
    assert [attr(c, "id") for c in parse_html(added_page).select("#captions")] == ["captions"]
    refused = owner.client.post(
        f"/files/{file['id']}/captions",
        files={"file": ("bad.vtt", b"WEBVTT\n\n00:01.000 --> 00:00.500\nhi\n", "text/vtt")},
        data={"language": "fr"},
        headers={**owner.headers(), "HX-Request": "true", "Accept": "application/json"},
    )
    assert_problem(refused, 422, "caption-invalid")


def test_a_viewer_member_sees_no_caption_form(world: World, owner: Member) -> None:
    file = uploaded(owner, owner.root_folder_id, "lecture.mp4", MP4)
    reader = world.member(_org_of(world, owner), Role.VIEWER)
    page = parse_html(reader.client.get(f"/files/{file['id']}"))
    assert page.select_one("#captions") is not None
    assert page.select_one("form.captions-form") is None
    refused = reader.client.post(
        f"/files/{file['id']}/captions",
        files={"file": ("en.vtt", VTT, "text/vtt")},
        data={"language": "en"},
        headers={**reader.headers(), "Accept": "application/json"},
    )
    assert_problem(refused, 403, "permission-denied")
