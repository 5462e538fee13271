"""Snapshot points: the restore drill, refusals, verify naming what is corrupt, prune keeping referenced blobs."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, create_engine, select

from studyshelf.core.errors import Conflict, Invalid
from studyshelf.library.jobs import purge_trash
from studyshelf.ops import backup, backup_restore
from studyshelf.ops.backup_store import point_time
from studyshelf.partners.models import OrgKind
from studyshelf.services import Services
from studyshelf.warehouse.duckdb import DuckDBWarehouse
from tests.analytics.support import event
from tests.conftest import Member, World
from tests.library.support import make_folder, uploaded
from tests.links.support import create_link


def _every_row(database: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order, read through reflection (so no table is forgotten)."""
    engine = create_engine(f"sqlite:///{database}")
    metadata = MetaData()
    metadata.reflect(engine)
    try:
        with engine.connect() as conn:
            return {
                name: [tuple(row) for row in conn.execute(select(table).order_by(*table.primary_key.columns))]
                for name, table in metadata.tables.items()
            }
    finally:
        engine.dispose()


def _fill(world: World, owner: Member) -> None:
    """Organisations, users, folders, files (one of 3 MiB), a grant, a link and analytics events."""
    partner = world.org("riverside", OrgKind.PARTNER)
    world.member(partner)
    folder = make_folder(owner, owner.root_folder_id, "Week 1")
    uploaded(owner, folder["id"], "notes.txt", b"lecture notes\n")
    big = uploaded(owner, folder["id"], "lecture.bin", os.urandom(3 * 1024 * 1024))
    body = {"target_type": "folder", "target_id": folder["id"], "grantee_org_id": str(partner.id), "level": "view"}
    assert owner.client.post("/api/v1/grants", json=body, headers=owner.headers()).status_code == 201
    assert create_link(owner, big["id"]).status_code == 201
    world.services.warehouse.insert([event(), event("download"), event()])


def _blob_bytes(root: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in root.glob("??/??/*")}


def test_restore_drill_brings_back_every_row_and_every_blob_byte(
    world: World, owner: Member, services: Services, tmp_path: Path
) -> None:
    _fill(world, owner)
    database = services.settings.data_dir / "studyshelf.sqlite3"
    rows, blobs = _every_row(database), _blob_bytes(services.settings.data_dir / "blobs")
    events = services.warehouse.count()
    identifier = backup.create_point(services)
    services.warehouse.close()
    services.engine.dispose()
    for path in sorted(services.settings.data_dir.rglob("*"), reverse=True):  # the disaster
        path.rmdir() if path.is_dir() else path.unlink()

    target = tmp_path / "restored"
    totals: list[int] = []
    advanced: list[int] = []
    done = backup_restore.restore(
        services.settings, target=target, at=None, progress=advanced.append, sizing=totals.append
    )

    assert done.source == f"snapshot {identifier}"
    assert totals == [sum(len(data) for data in blobs.values())] == [sum(advanced)]  # the bar ends full
    assert done.missing_blobs == []
    assert _every_row(target / "studyshelf.sqlite3") == rows
    assert len(rows["files"]) == 2
    assert rows["grants"]
    assert rows["links"]
    assert _blob_bytes(target / "blobs") == blobs
    restored_warehouse = DuckDBWarehouse(target / "warehouse.duckdb")
    try:
        assert restored_warehouse.count() == events == 3
    finally:
        restored_warehouse.close()
    assert backup_restore.verify_point(services.settings, identifier) == []


def test_restore_refuses_a_non_empty_target_and_the_live_data_dir(services: Services, tmp_path: Path) -> None:
    backup.create_point(services)
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine")
    with pytest.raises(Conflict, match="not empty"):
        backup_restore.restore(services.settings, target=occupied, at=None)
    with pytest.raises(Conflict):
        backup_restore.restore(services.settings, target=services.settings.data_dir, at=None)
    assert [p.name for p in occupied.iterdir()] == ["keep.txt"]


def test_verify_names_a_corrupt_blob_and_a_corrupt_database_and_restore_offers_the_previous_point(
    owner: Member, services: Services, tmp_path: Path
) -> None:
    uploaded(owner, owner.root_folder_id, "a.txt", b"first")
    earlier = backup.create_point(services)
    blob = uploaded(owner, owner.root_folder_id, "b.txt", b"second")
    later = backup.create_point(services)
    location = backup.location_of(services.settings)
    digest = next(d for d in location.manifest(later).blobs if d not in location.manifest(earlier).blobs)
    location.blobs.path_for(digest).write_bytes(b"bit rot")
    snapshot = location.points_dir / later / backup.DATABASE_FILE
    with snapshot.open("r+b") as handle:
        handle.seek(200)
        handle.write(b"\xff" * 64)

    problems = backup_restore.verify_point(services.settings, later)

    assert any(str(snapshot) in p and "checksum" in p for p in problems)
    assert any(digest in p and "checksum" in p for p in problems)
    assert backup_restore.verify_point(services.settings, earlier) == []
    with pytest.raises(Invalid, match=f"{later} is corrupt.*previous point is {earlier}"):
        backup_restore.restore(services.settings, target=tmp_path / "out", at=None)
    assert blob["id"]


def test_prune_drops_old_points_but_keeps_blobs_a_retained_point_references(owner: Member, services: Services) -> None:
    uploaded(owner, owner.root_folder_id, "kept.txt", b"kept by both points")
    gone = uploaded(owner, owner.root_folder_id, "gone.txt", b"only in the old point")
    old = backup.create_point(services)
    assert owner.client.delete(f"/api/v1/files/{gone['id']}", headers=owner.headers()).status_code in {200, 204}
    purge_trash(services, retention_days=0)
    new = backup.create_point(services)
    location = backup.location_of(services.settings)
    only_old = set(location.manifest(old).blobs) - set(location.manifest(new).blobs)
    assert len(only_old) == 1
    between = point_time(old) + (point_time(new) - point_time(old)) / 2
    now = between + timedelta(days=services.settings.backup_retention_days)

    done = backup_restore.prune(services.settings, now=now)

    assert done.points == 1
    assert location.point_ids() == [new]
    held = set(location.blobs.iter_digests())
    assert held == set(location.manifest(new).blobs)
    assert not only_old & held
    assert uuid.UUID(gone["id"])
