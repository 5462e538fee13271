"""`backup replicate` follows new file versions: their blobs reach the backup at the next poll, and prune keeps
them; pruning counts its work first (its progress bar is determinate)."""

from __future__ import annotations

import os
import time
from datetime import timedelta

from studyshelf.ops import backup, backup_restore
from studyshelf.ops.backup_follow import OVERLAP_MS, BlobFollower
from studyshelf.ops.backup_pg import _blobs_as_of
from studyshelf.ops.backup_store import point_id, write_json
from studyshelf.services import Services
from tests.conftest import Member
from tests.library.support import uploaded
from tests.library.test_captions_api import MP4, VTT, added


def _digest_of(file: dict[str, object]) -> str:
    return str(file["sha256"])


def test_a_new_version_s_blob_is_copied_at_the_next_poll(owner: Member, services: Services) -> None:
    location = backup.location_of(services.settings)
    location.prepare()
    follower = BlobFollower(services, location)
    assert follower.poll() == 0

    first = uploaded(owner, owner.root_folder_id, "a.txt", b"first upload")
    second = uploaded(owner, owner.root_folder_id, "b.txt", b"second upload")
    same = uploaded(owner, owner.root_folder_id, "c.txt", b"first upload")  # the same bytes: one blob

    assert follower.poll() == 2
    held = set(location.blobs.iter_digests())
    assert {_digest_of(first), _digest_of(second), _digest_of(same)} <= held
    [followed] = location.followed_ids()
    assert set(location.followed_manifest(followed)) == held
    assert follower.poll() == 0  # nothing new: no copy, no manifest
    assert location.followed_ids() == [followed]


def test_a_new_caption_s_blob_is_followed_too(owner: Member, services: Services) -> None:
    location = backup.location_of(services.settings)
    location.prepare()
    follower = BlobFollower(services, location)
    video = uploaded(owner, owner.root_folder_id, "lecture.mp4", MP4)
    caption = added(owner, video["id"], VTT, language="en")
    assert follower.poll() == 2
    assert location.blobs.exists(_digest_of(video))
    assert location.blobs.exists(str(caption["sha256"]))


def test_a_version_committed_after_a_later_one_is_still_found(owner: Member, services: Services) -> None:
    """Ids are stamped before the commit: a slow transaction's version may sort before the cursor."""
    location = backup.location_of(services.settings)
    location.prepare()
    ahead = time.time_ns() // 1_000_000 + OVERLAP_MS // 2  # as if a newer version had been seen already
    follower = BlobFollower(services, location, start_ms=ahead)

    late = uploaded(owner, owner.root_folder_id, "late.txt", b"committed late")

    assert follower.poll() == 1
    assert location.blobs.exists(_digest_of(late))


def test_prune_keeps_followed_blobs_and_counts_its_work_first(owner: Member, services: Services) -> None:
    location = backup.location_of(services.settings)
    uploaded(owner, owner.root_folder_id, "old.txt", b"in the full manifest")
    backup.sync_blobs(services)  # a full blob manifest
    follower = BlobFollower(services, location)
    followed = uploaded(owner, owner.root_folder_id, "new.txt", b"followed in after it")
    assert follower.poll() == 1
    stray = location.blobs.writer()  # no manifest names it, and it is older than every manifest
    stray.write(b"referenced by nothing")
    stray_digest = stray.commit().sha256
    old = time.time() - 3600
    os.utime(location.blobs.path_for(stray_digest), (old, old))

    totals: list[int] = []
    steps: list[int] = []
    done = backup_restore.prune(
        services.settings, now=services.clock.now(), progress=steps.append, sizing=totals.append
    )

    assert done.blobs == 1
    assert totals == [len(steps)] == [1]
    assert location.blobs.exists(_digest_of(followed))
    assert not location.blobs.exists(stray_digest)


def test_prune_drops_followed_manifests_older_than_every_retained_full_one(services: Services) -> None:
    location = backup.location_of(services.settings)
    location.prepare()
    now = services.clock.now()
    days = services.settings.backup_retention_days
    ago = {"full1": 3.0, "followed1": 2.0, "full2": 1.0, "followed2": 0.5}
    at = {name: point_id(now - timedelta(days=days + back)) for name, back in ago.items()}
    for name, identifier in at.items():
        directory = location.followed if name.startswith("followed") else location.blob_manifests
        write_json(directory / f"{identifier}.json", {"blobs": {}})
    write_json(location.blob_manifests / f"{point_id(now)}.json", {"blobs": {}})

    plan = backup_restore.plan_prune(services.settings, now=now)

    assert plan.blob_manifests == [at["full1"]]  # full2, the newest one past the retention, stays
    assert plan.followed == [at["followed1"]]  # followed2 is needed with full2 for a restore at the cutoff
    assert plan.steps == 2


def test_a_postgresql_restore_takes_the_followed_blobs_after_the_last_full_manifest(services: Services) -> None:
    location = backup.location_of(services.settings)
    location.prepare()
    now = services.clock.now()
    write_json(location.blob_manifests / f"{point_id(now - timedelta(seconds=60))}.json", {"blobs": {"a" * 64: 1}})
    write_json(location.followed / f"{point_id(now - timedelta(seconds=90))}.json", {"blobs": {"b" * 64: 1}})
    write_json(location.followed / f"{point_id(now - timedelta(seconds=2))}.json", {"blobs": {"c" * 64: 1}})

    assert _blobs_as_of(location, None) == {"a" * 64, "c" * 64}
    assert _blobs_as_of(location, now - timedelta(seconds=30)) == {"a" * 64, "c" * 64}
    assert _blobs_as_of(location, now - timedelta(seconds=70)) == {"a" * 64, "b" * 64}


def test_a_blob_gone_from_the_store_is_reported_and_the_others_still_follow(owner: Member, services: Services) -> None:
    location = backup.location_of(services.settings)
    location.prepare()
    reported: list[Exception] = []
    follower = BlobFollower(services, location, report=reported.append)
    gone = uploaded(owner, owner.root_folder_id, "gone.txt", b"purged before the poll")
    kept = uploaded(owner, owner.root_folder_id, "kept.txt", b"still there")
    services.blobs.delete(_digest_of(gone))

    assert follower.poll() == 1

    assert location.blobs.exists(_digest_of(kept))
    assert [type(exc).__name__ for exc in reported] == ["BlobNotFound"]
    assert follower.poll() == 0  # handled: not reported again
    assert len(reported) == 1
