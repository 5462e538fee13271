"""The library's access model: what a viewer may see of many items at once, and how few statements that takes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from studyshelf.analytics.names import Names
from studyshelf.core.db import unit_of_work
from studyshelf.library import access
from studyshelf.library.files import add_file, delete_file
from studyshelf.library.folders import create_folder, get_root_folder
from studyshelf.library.models import Folder
from studyshelf.library.provisioning import provision_organization
from studyshelf.partners import service as partners
from studyshelf.partners.grants import create_grant
from studyshelf.partners.models import AuditEntry, Grant, GrantLevel, Organization, OrgKind, Role, TargetType, User
from studyshelf.partners.principal import Principal
from studyshelf.services import Services
from studyshelf.storage import StoredBlob

BLOB = StoredBlob(sha256="a" * 64, size=3)


@dataclass(frozen=True)
class Library:
    """Northwind shares Course / Week 1 with Campus; Course / Private stays its own; Campus has a folder of its own."""

    northwind: uuid.UUID
    campus: uuid.UUID
    student: uuid.UUID  # a viewer at Campus
    publisher: uuid.UUID  # an owner at Northwind
    course: uuid.UUID
    week: uuid.UUID
    notes: uuid.UUID  # Course / Week 1 / notes.pdf
    secret: uuid.UUID  # Course / Private / secret.pdf
    mine: uuid.UUID  # Campus: Own / mine.pdf
    own: uuid.UUID


def _member(db: Session, org: Organization, role: Role) -> Principal:
    user = partners.create_user(
        db, email=f"{role.value}-{uuid.uuid4().hex[:6]}@{org.slug}.test", password="long enough"
    )
    partners.add_member(db, user=user, org=org, role=role)
    db.refresh(user)
    return Principal(user=user)


@pytest.fixture
def lib(services: Services) -> Library:
    with unit_of_work(services.write_sessions) as db:
        northwind = provision_organization(db, name="Northwind", slug="northwind", kind=OrgKind.OPERATOR)
        campus = provision_organization(db, name="Campus", slug="campus", kind=OrgKind.PARTNER)
        publisher, student = _member(db, northwind, Role.OWNER), _member(db, campus, Role.VIEWER)
        editor = _member(db, campus, Role.EDITOR)
        root = get_root_folder(db, org_id=northwind.id)
        course = create_folder(db, principal=publisher, parent_id=root.id, name="Course", now=services.clock.now())
        week = create_folder(db, principal=publisher, parent_id=course.id, name="Week 1", now=services.clock.now())
        private = create_folder(db, principal=publisher, parent_id=course.id, name="Private", now=services.clock.now())
        pdf = {"blob": BLOB, "content_type": "application/pdf"}
        notes = add_file(db, principal=publisher, folder_id=week.id, name="notes.pdf", now=services.clock.now(), **pdf)
        secret = add_file(
            db, principal=publisher, folder_id=private.id, name="secret.pdf", now=services.clock.now(), **pdf
        )
        create_grant(
            db,
            principal=publisher,
            owner_org_id=northwind.id,
            target_type=TargetType.FOLDER,
            target_id=week.id,
            target_label=week.name,
            grantee_org_id=campus.id,
            level=GrantLevel.VIEW,
            expires_at=None,
            now=services.clock.now(),
        )
        own = create_folder(
            db,
            principal=editor,
            parent_id=get_root_folder(db, org_id=campus.id).id,
            name="Own",
            now=services.clock.now(),
        )
        mine = add_file(db, principal=editor, folder_id=own.id, name="mine.pdf", now=services.clock.now(), **pdf)
        return Library(
            northwind.id,
            campus.id,
            student.user.id,
            publisher.user.id,
            course.id,
            week.id,
            notes.id,
            secret.id,
            mine.id,
            own.id,
        )


def _principal(db: Session, user_id: uuid.UUID) -> Principal:
    user = db.get(User, user_id)
    assert user is not None
    return Principal(user=user)


def _viewers(db: Session, lib: Library) -> list[access.Viewer]:
    """Campus seen as an organisation (its report) and as one of its members (its dashboard)."""
    return [access.OrgViewer(lib.campus), _principal(db, lib.student)]


def test_a_partner_sees_shared_items_from_the_shared_folder_down(services: Services, lib: Library) -> None:
    with unit_of_work(services.read_sessions) as db:
        for viewer in _viewers(db, lib):
            files, folders = access.label_items(
                db,
                viewer=viewer,
                file_ids=[lib.notes, lib.mine],
                folder_ids=[lib.week, lib.own],
                now=services.clock.now(),
            )
            notes, mine = files[lib.notes], files[lib.mine]
            assert (notes.visible, notes.name, notes.path, notes.owner) == (True, "notes.pdf", ("Week 1",), "Northwind")
            assert notes.content_type == "application/pdf"
            assert (folders[lib.week].name, folders[lib.week].path) == ("Week 1", ())
            # Its own items show their path from below its library root.
            assert (mine.name, mine.path, mine.owner) == ("mine.pdf", ("Own",), "Campus")
            assert (folders[lib.own].name, folders[lib.own].path) == ("Own", ())


def test_names_of_items_without_a_grant_are_not_revealed(services: Services, lib: Library) -> None:
    with unit_of_work(services.read_sessions) as db:
        for viewer in _viewers(db, lib):
            files, folders = access.label_items(
                db, viewer=viewer, file_ids=[lib.secret], folder_ids=[lib.course], now=services.clock.now()
            )
            for label in (files[lib.secret], folders[lib.course]):
                assert (label.exists, label.visible, label.name, label.path) == (True, False, "", ())
                assert label.content_type is None
                assert label.owner == "Northwind"


def test_the_owner_sees_everything_below_its_root(services: Services, lib: Library) -> None:
    with unit_of_work(services.read_sessions) as db:
        for viewer in (access.OrgViewer(lib.northwind), _principal(db, lib.publisher)):
            files, _ = access.label_items(
                db, viewer=viewer, file_ids=[lib.notes, lib.secret], folder_ids=[], now=services.clock.now()
            )
            assert files[lib.notes].path == ("Course", "Week 1")
            assert (files[lib.secret].name, files[lib.secret].path) == ("secret.pdf", ("Course", "Private"))


def test_trashed_and_unknown_items(services: Services, lib: Library) -> None:
    with unit_of_work(services.write_sessions) as db:
        delete_file(db, principal=_principal(db, lib.publisher), file_id=lib.notes, now=services.clock.now())
    unknown = uuid.uuid4()
    with unit_of_work(services.read_sessions) as db:
        files, folders = access.label_items(
            db,
            viewer=access.OrgViewer(lib.campus),
            file_ids=[lib.notes, unknown],
            folder_ids=[unknown],
            now=services.clock.now(),
        )
    assert (files[lib.notes].name, files[lib.notes].deleted, files[lib.notes].visible) == ("notes.pdf", True, True)
    assert not files[unknown].exists
    assert not folders[unknown].exists


def test_an_expired_grant_reveals_nothing(services: Services, lib: Library) -> None:
    with unit_of_work(services.write_sessions) as db:
        for grant in db.scalars(select(Grant).where(Grant.target_id == lib.week)):
            grant.expires_at = services.clock.now() - timedelta(minutes=1)
    with unit_of_work(services.read_sessions) as db:
        for viewer in _viewers(db, lib):
            files, _ = access.label_items(
                db, viewer=viewer, file_ids=[lib.notes], folder_ids=[], now=services.clock.now()
            )
            assert (files[lib.notes].visible, files[lib.notes].name) == (False, "")


def test_breadcrumbs_start_at_the_shared_folder(services: Services, lib: Library) -> None:
    with unit_of_work(services.read_sessions) as db:
        week = db.get(Folder, lib.week)
        assert week is not None
        for viewer in _viewers(db, lib):
            assert [f.name for f in access.visible_path(db, viewer=viewer, folder=week, now=services.clock.now())] == [
                "Week 1"
            ]
        owner = _principal(db, lib.publisher)
        assert [f.name for f in access.visible_path(db, viewer=owner, folder=week, now=services.clock.now())] == [
            "Library",
            "Course",
            "Week 1",
        ]


def test_a_platform_admin_reading_names_of_another_organisation_is_audited(services: Services, lib: Library) -> None:
    with unit_of_work(services.write_sessions) as db:
        admin = _member(db, db.get(Organization, lib.campus) or pytest.fail("no campus"), Role.VIEWER)
        admin.user.is_platform_admin = True
        files, _ = access.label_items(db, viewer=admin, file_ids=[lib.secret], folder_ids=[], now=services.clock.now())
        assert files[lib.secret].name == "secret.pdf"
        db.flush()
        entries = db.scalars(select(AuditEntry).where(AuditEntry.action == "platform_admin.view"))
        assert [(e.target_type, e.target_id) for e in entries] == [("file", str(lib.secret))]


@contextmanager
def _statements(services: Services) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(services.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(services.engine, "before_cursor_execute", count)


def _many_files(services: Services, lib: Library, count: int) -> list[uuid.UUID]:
    with unit_of_work(services.write_sessions) as db:
        publisher = _principal(db, lib.publisher)
        folders = [lib.course, lib.week]
        for depth in range(4):  # Week 1 / Level 0 / … / Level 3
            folders.append(
                create_folder(
                    db, principal=publisher, parent_id=folders[-1], name=f"Level {depth}", now=services.clock.now()
                ).id
            )
        return [
            add_file(
                db,
                principal=publisher,
                folder_id=folders[n % len(folders)],
                name=f"file {n}.pdf",
                blob=BLOB,
                content_type="application/pdf",
                now=services.clock.now(),
            ).id
            for n in range(count)
        ]


@pytest.mark.parametrize("viewer_kind", ["organisation", "principal"])
def test_many_ids_take_a_bounded_number_of_statements(services: Services, lib: Library, viewer_kind: str) -> None:
    file_ids = _many_files(services, lib, 120)
    with unit_of_work(services.read_sessions) as db:
        folder_ids = list(db.scalars(select(Folder.id)))
        viewer = access.OrgViewer(lib.campus) if viewer_kind == "organisation" else _principal(db, lib.student)
        db.scalar(select(Folder.id).limit(1))  # the transaction is open before counting
        with _statements(services) as few:
            access.label_items(
                db, viewer=viewer, file_ids=file_ids[:2], folder_ids=folder_ids[:2], now=services.clock.now()
            )
        with _statements(services) as many:
            files, folders = access.label_items(
                db, viewer=viewer, file_ids=file_ids, folder_ids=folder_ids, now=services.clock.now()
            )
    assert len(many) == len(few) <= 4, many
    assert sum(label.visible for label in files.values()) == 100  # those in Week 1 and below it, not in Course
    assert len(folders) == len(folder_ids)


def test_the_dashboard_names_a_page_in_one_batch(services: Services, lib: Library) -> None:
    with unit_of_work(services.read_sessions) as db:
        names = Names(db, _principal(db, lib.student), lib.campus, now=services.clock.now())
        db.scalar(select(Folder.id).limit(1))
        with _statements(services) as batch:
            names.learn(files=[str(lib.notes), str(lib.secret), "not an id"], folders=[str(lib.week), str(lib.course)])
        with _statements(services) as later:
            found = [names.file(str(lib.notes)), names.file(str(lib.secret)), names.file("not an id")]
            folders = [names.folder(str(lib.week)), names.folder(str(lib.course))]
    assert found == [("notes.pdf", "pdf"), None, None]
    assert folders == ["Week 1", None]
    assert len(batch) <= 4
    assert later == []
