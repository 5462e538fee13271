"""Media processing end to end: the demo video becomes HLS renditions that ffprobe decodes; bad input fails
clearly and loses nothing; the status shows in the API and on the file page; rendition sets are served by
one signature per prefix."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from studyshelf.app import create_app
from studyshelf.core.clock import MovableClock
from studyshelf.library.jobs import purge_trash
from studyshelf.library.models import File, FileVersion
from studyshelf.media import service
from studyshelf.media.models import MediaJob, MediaOutput
from studyshelf.media.tools import Tools
from studyshelf.media.worker import discover, process_next, process_pending
from studyshelf.services import Services
from studyshelf.signing import SetClaims, sign_set
from tests.conftest import Member
from tests.library.support import assert_problem, uploaded
from tests.links.support import EMBEDDED, create_link, link_path

DEMO = Path(__file__).parents[2] / "src/studyshelf/demo/assets/mitosis-lecture.mp4"
pytestmark = pytest.mark.usefixtures("_ffmpeg")


@pytest.fixture
def _ffmpeg(services: Services) -> None:
    from tests.conftest import require_service

    require_service(not Tools.find(services.settings).missing(), "ffmpeg and poppler-utils")


def upload_demo(owner: Member, name: str = "Mitosis.mp4", data: bytes | None = None) -> dict[str, Any]:
    return uploaded(owner, owner.root_folder_id, name, DEMO.read_bytes() if data is None else data)


def version_of(services: Services, file_id: str) -> uuid.UUID:
    with services.read_sessions() as db:
        file = db.get(File, uuid.UUID(file_id))
        assert file is not None
        assert file.current_version_id is not None
        return file.current_version_id


def parse_playlist(text: str) -> list[tuple[str, str]]:
    """(tag line, URI) pairs of an M3U8, checking its header; URIs are the non-tag lines."""
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines[0] == "#EXTM3U"
    pairs, tag = [], ""
    for line in lines[1:]:
        if line.startswith("#"):
            tag = line
        else:
            pairs.append((tag, line))
    return pairs


def test_demo_video_becomes_hls_renditions_that_decode(services: Services, owner: Member, tmp_path: Path) -> None:
    body = upload_demo(owner)
    assert owner.client.get(f"/api/v1/files/{body['id']}/processing").json()["state"] == "queued"
    assert process_pending(services) == 1
    version_id = version_of(services, body["id"])
    status = owner.client.get(f"/api/v1/files/{body['id']}/processing").json()
    assert status["state"] == "done", status
    assert status["percent"] == 100
    assert status["renditions"] == ["360p"]  # a 640×360 source is never upscaled
    assert status["duration_seconds"] == pytest.approx(10, abs=0.2)
    with services.read_sessions() as db:
        outputs = service.outputs_of(db, version_id=version_id)
    assert {"master.m3u8", "360p/index.m3u8", "poster.jpg", "thumb.jpg", "sprite.jpg", "thumbs.vtt"} <= set(outputs)

    def read(path: str) -> bytes:
        found = outputs[path]
        return b"".join(services.blobs.read_range(found.blob_sha256, 0, found.size))

    master = parse_playlist(read("master.m3u8").decode())
    assert [uri for _, uri in master] == ["360p/index.m3u8"]
    assert "RESOLUTION=640x360" in master[0][0]
    assert 'CODECS="avc1' in master[0][0]
    variant_text = read("360p/index.m3u8").decode()
    assert "#EXT-X-ENDLIST" in variant_text
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in variant_text
    segments = parse_playlist(variant_text)
    durations = [float(re.match(r"#EXTINF:([0-9.]+),", tag).group(1)) for tag, _ in segments]  # type: ignore[union-attr]
    assert sum(durations) == pytest.approx(10, abs=0.2)
    assert all(d <= 6 for d in durations)
    assert max(durations) >= 4
    for _, uri in segments:
        assert uri in [p.removeprefix("360p/") for p in outputs]
    segment = tmp_path / "seg.ts"
    segment.write_bytes(read("360p/" + segments[1][1]))
    probe = subprocess.run(  # noqa: S603 - a fixed program
        ["/usr/bin/ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", str(segment)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert set(probe.stdout.split()) == {"h264", "aac"}
    vtt = read("thumbs.vtt").decode()
    assert vtt.startswith("WEBVTT")
    assert "sprite.jpg#xywh=0,0,160,90" in vtt
    assert read("poster.jpg")[:2] == b"\xff\xd8"
    # The file page's panel, the poster route for members, and the library row's thumbnail
    assert "Streams in 360p" in owner.client.get(f"/files/{body['id']}/processing").text
    poster = owner.client.get(f"/api/v1/files/{body['id']}/previews/poster.jpg")
    assert poster.status_code == 200
    assert poster.headers["content-type"] == "image/jpeg"


def test_processing_again_is_idempotent_and_outputs_survive_purges(services: Services, owner: Member) -> None:
    body = upload_demo(owner)
    process_pending(services)
    version_id = version_of(services, body["id"])
    with services.read_sessions() as db:
        first = service.outputs_of(db, version_id=version_id)
    again = owner.client.post(f"/api/v1/files/{body['id']}/processing", headers=owner.headers())
    assert again.status_code == 202
    assert again.json()["state"] == "queued"
    process_pending(services)
    with services.read_sessions() as db:
        second = service.outputs_of(db, version_id=version_id)
        job = db.get(MediaJob, version_id)
        assert job is not None
        assert job.generation == 2
    assert {p: o.blob_sha256 for p, o in second.items()}.keys() == {p: o.blob_sha256 for p, o in first.items()}.keys()
    purge_trash(services, retention_days=0)  # the renditions' blobs are referenced: nothing is deleted
    for found in second.values():
        assert services.blobs.exists(found.blob_sha256)


def test_new_version_is_processed(services: Services, owner: Member) -> None:
    body = upload_demo(owner)
    process_pending(services)
    response = owner.client.post(
        f"/api/v1/files/{body['id']}/versions",
        files={"file": ("Mitosis.mp4", DEMO.read_bytes()[:-10] + b"x" * 10, "video/mp4")},
        headers=owner.headers(),
    )
    assert response.status_code == 201, response.text
    assert owner.client.get(f"/api/v1/files/{body['id']}/processing").json()["state"] == "queued"
    assert process_pending(services) == 1


def test_truncated_video_fails_clearly_and_the_original_stays(services: Services, owner: Member) -> None:
    data = DEMO.read_bytes()[:4000]
    body = upload_demo(owner, "Truncated.mp4", data)
    process_pending(services)
    status = owner.client.get(f"/api/v1/files/{body['id']}/processing").json()
    assert status["state"] == "failed"
    assert status["error"]
    assert "ffprobe" in status["error"] or "stream" in status["error"]
    content = owner.client.get(f"/api/v1/files/{body['id']}/content")
    assert content.status_code == 200
    assert content.content == data
    page = owner.client.get(f"/files/{body['id']}/processing").text
    assert "Processing failed" in page
    assert "original is unchanged" in page
    # failed for good: no retry is queued for input that cannot be processed
    with services.read_sessions() as db:
        job = db.get(MediaJob, version_of(services, body["id"]))
        assert job is not None
        assert job.attempts == 1


def test_video_without_audio_and_audio_without_video(services: Services, owner: Member, tmp_path: Path) -> None:
    silent, wav = tmp_path / "silent.mp4", tmp_path / "tone.wav"
    base = ["/usr/bin/ffmpeg", "-v", "error", "-f", "lavfi"]
    testsrc = [*base, "-i", "testsrc=size=320x240:rate=25:duration=3", "-pix_fmt", "yuv420p", str(silent)]
    subprocess.run(testsrc, check=True)  # noqa: S603
    subprocess.run([*base, "-i", "sine=frequency=440:duration=2", str(wav)], check=True)  # noqa: S603
    video = upload_demo(owner, "Silent.mp4", silent.read_bytes())
    audio = upload_demo(owner, "Tone.wav", wav.read_bytes())
    process_pending(services)
    video_status = owner.client.get(f"/api/v1/files/{video['id']}/processing").json()
    assert video_status["state"] == "done"
    assert video_status["renditions"] == ["240p"]
    audio_status = owner.client.get(f"/api/v1/files/{audio['id']}/processing").json()
    assert audio_status["state"] == "done"
    assert audio_status["renditions"] == ["audio"]


def test_too_long_media_fails_clearly(services: Services, owner: Member) -> None:
    short = services.settings.model_copy(update={"media_max_duration_seconds": 5})
    services_short = replace(services, settings=short)
    body = upload_demo(owner)
    process_pending(services_short)
    status = owner.client.get(f"/api/v1/files/{body['id']}/processing").json()
    assert status["state"] == "failed"
    assert "longer than" in status["error"]


def test_pdf_and_image_thumbnails(services: Services, owner: Member, tmp_path: Path) -> None:
    png = tmp_path / "big.png"
    testsrc = ["/usr/bin/ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=640x480", "-frames:v", "1"]
    subprocess.run([*testsrc, str(png)], check=True)  # noqa: S603
    image = upload_demo(owner, "Diagram.png", png.read_bytes())
    pdf = upload_demo(owner, "Notes.pdf", _two_page_pdf())
    # The library draws a thumbnail only where one exists: none before processing, no request for a missing one.
    assert "row-thumb" not in owner.client.get(f"/library/{owner.root_folder_id}").text
    process_pending(services)
    listing = owner.client.get(f"/library/{owner.root_folder_id}").text
    for body in (image, pdf):
        assert f'src="/api/v1/files/{body["id"]}/previews/thumb.jpg"' in listing
    pdf_status = owner.client.get(f"/api/v1/files/{pdf['id']}/processing").json()
    assert pdf_status["state"] == "done", pdf_status
    assert pdf_status["page_count"] == 2
    assert pdf_status["thumbnail_url"]
    thumb = owner.client.get(pdf_status["thumbnail_url"])
    assert thumb.status_code == 200
    assert thumb.content[:2] == b"\xff\xd8"
    image_status = owner.client.get(f"/api/v1/files/{image['id']}/processing").json()
    assert image_status["state"] == "done"
    assert image_status["thumbnail_url"]


def test_missing_ffmpeg_warns_and_serves_the_original(services: Services, owner: Member) -> None:
    settings = services.settings.model_copy(update={"ffmpeg_path": "/nonexistent/ffmpeg"})
    without = replace(services, settings=settings)
    with TestClient(create_app(services=without)) as client:
        ready = client.get("/readyz").json()
    assert ready["status"] == "degraded"
    assert ready["media"].startswith("warning: ffmpeg")
    body = upload_demo(owner)
    process_pending(without)
    status = owner.client.get(f"/api/v1/files/{body['id']}/processing").json()
    assert status["state"] == "failed"
    assert "ffmpeg is not installed" in status["error"]
    assert owner.client.get(f"/api/v1/files/{body['id']}/content").status_code == 200


def test_transient_failure_is_retried_with_back_off(services: Services, owner: Member) -> None:
    clock = MovableClock()
    timed = replace(services, clock=clock)
    body = upload_demo(owner)
    discover(timed)
    version_id = version_of(services, body["id"])
    with services.read_sessions() as db:  # the blob vanishes for a while: a storage fault, not the input's
        version = db.get(FileVersion, version_id)
        assert version is not None
        digest = version.blob_sha256
    hidden = services.blobs.local_path(digest)
    assert hidden is not None
    moved = hidden.with_suffix(".away")
    hidden.rename(moved)
    assert process_next(timed, holder="w1") == "queued"
    assert process_next(timed, holder="w1") is None  # backing off
    moved.rename(hidden)
    clock.advance(timedelta(minutes=1, seconds=1).total_seconds())
    assert process_next(timed, holder="w1") == "done"


def test_rendition_set_urls(services: Services, owner: Member) -> None:
    body = upload_demo(owner)
    process_pending(services)
    version_id = version_of(services, body["id"])
    path = link_path(create_link(owner, body["id"]))
    with TestClient(create_app(services=services)) as anonymous:
        page = anonymous.get(path, headers=EMBEDDED)
        assert page.status_code == 200
        hls_url = re.search(r'data-hls-src="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        assert hls_url.startswith("/m/~/")
        assert hls_url.endswith("/master.m3u8")
        assert 'poster="/m/~/' in page.text
        master = anonymous.get(hls_url)
        assert master.status_code == 200
        assert master.headers["content-type"].startswith("application/vnd.apple.mpegurl")
        assert master.headers["cache-control"].startswith("public, max-age=")
        prefix = hls_url.removesuffix("master.m3u8")
        segment = anonymous.get(prefix + "360p/seg-00001.ts", headers={"range": "bytes=0-187"})
        assert segment.status_code == 206
        assert segment.content[0] == 0x47
        assert_problem(anonymous.get(prefix + "360p/seg-09999.ts"), 404, "media-not-found")
        assert_problem(anonymous.get(prefix + "../poster.jpg"), 403, "media-refused")
        forged = prefix[:-8] + ("A" if prefix[-8] != "A" else "B") + prefix[-7:]
        assert_problem(anonymous.get(forged + "master.m3u8"), 403, "media-refused")
        expired = sign_set(services.signer, SetClaims(1, "x" * 22, str(version_id), 1))
        refused = anonymous.get(expired + "master.m3u8")
        assert_problem(refused, 403, "media-refused")
        # Renewal (as today): fresh URLs for a playing viewer, the rendition set's among them
        token = re.search(r'data-token="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        renewed = anonymous.post(f"{path}/media", json={"token": token, "file_id": body["id"]})
        assert renewed.status_code == 200, renewed.text
        fresh = renewed.json()
        assert fresh["hls_url"].startswith("/m/~/")
        assert fresh["hls_url"].endswith("/master.m3u8")
        assert fresh["poster_url"].startswith(fresh["media_prefix"])
        assert anonymous.get(fresh["hls_url"]).status_code == 200


def _two_page_pdf() -> bytes:
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def test_discovery_skips_documents_and_deleted_files(services: Services, owner: Member) -> None:
    uploaded(owner, owner.root_folder_id, "notes.txt", b"plain text")
    assert discover(services) == 0
    with services.read_sessions() as db:
        assert db.execute(select(MediaOutput)).first() is None


def test_progress_is_reported_while_running_and_shown(services: Services, owner: Member) -> None:
    body = upload_demo(owner)
    discover(services)
    with services.write_sessions() as db, db.begin():
        claimed = service.claim(db, holder="w1", now=services.clock.now(), lease=timedelta(minutes=5))
    assert claimed is not None
    with services.write_sessions() as db, db.begin():
        service.report_progress(db, version_id=claimed.version_id, holder="w1", percent=42, now=services.clock.now())
        service.report_progress(db, version_id=claimed.version_id, holder="w2", percent=99, now=services.clock.now())
    status = owner.client.get(f"/api/v1/files/{body['id']}/processing").json()
    assert status["state"] == "running"
    assert status["percent"] == 42  # only the holder of the lease reports
    panel = owner.client.get(f"/files/{body['id']}/processing").text
    assert 'value="42"' in panel
    assert 'hx-trigger="load delay:2s"' in panel  # it asks again while running
    with services.write_sessions() as db, db.begin():  # another worker cannot take it while the lease holds
        assert service.claim(db, holder="w2", now=services.clock.now(), lease=timedelta(minutes=5)) is None


def test_ffmpeg_progress_follows_the_encode(services: Services, tmp_path: Path) -> None:
    from studyshelf.media.produce import Job, produce

    fractions: list[float] = []
    job = Job("video", "video/mp4", DEMO, tmp_path, timeout=120, max_duration=3600)
    produce(Tools.find(services.settings), job, fractions.append)
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0
    assert len({round(f, 1) for f in fractions}) >= 3  # intermediate positions, from -progress pipe:1


def test_cli_backfill_retry_failed_and_status(
    services: Services, owner: Member, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from studyshelf.cli import app

    for name in [n for n in os.environ if n.startswith("STUDYSHELF_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("STUDYSHELF_DATA_DIR", str(services.settings.data_dir))
    monkeypatch.setenv("STUDYSHELF_DATABASE_URL", services.settings.resolved_database_url)
    monkeypatch.setenv("STUDYSHELF_SECRET_KEY", services.settings.secret_key)
    body = upload_demo(owner, "Truncated.mp4", DEMO.read_bytes()[:4000])
    runner = CliRunner()
    backfill = runner.invoke(app, ["media", "backfill"])
    assert backfill.exit_code == 0, backfill.output
    assert "Queued 1 file versions" in backfill.output
    assert runner.invoke(app, ["media", "process"]).exit_code == 0
    assert owner.client.get(f"/api/v1/files/{body['id']}/processing").json()["state"] == "failed"
    assert "failed   1" in runner.invoke(app, ["media", "status"]).output
    again = runner.invoke(app, ["media", "backfill", "--retry-failed"])
    assert "Queued 1 file versions" in again.output
    assert owner.client.get(f"/api/v1/files/{body['id']}/processing").json()["state"] == "queued"


def test_too_little_disk_is_retried_later_and_says_why(
    services: Services, owner: Member, monkeypatch: pytest.MonkeyPatch
) -> None:
    from studyshelf.media import worker

    body = upload_demo(owner)
    monkeypatch.setattr(worker, "DISK_FACTOR", 10**9)  # wants far more than any disk has
    assert process_next(services, holder="w1") is None  # not queued yet: found by discovery first
    discover(services)
    assert process_next(services, holder="w1") == "queued"
    status = owner.client.get(f"/api/v1/files/{body['id']}/processing").json()
    assert "free in the data dir" in status["error"]
    assert "retried" in status["error"]
