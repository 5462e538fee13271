"""The demo: an operator, a partner, the admin user and a course's worth of materials."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from importlib.resources.abc import Traversable

from rich.console import Console
from rich.panel import Panel
from sqlalchemy import select
from sqlalchemy.orm import Session

from studyshelf.core.db import unit_of_work
from studyshelf.library.caption_text import read_caption_file
from studyshelf.library.captions import add_caption, write_caption_blob
from studyshelf.library.files import add_file
from studyshelf.library.folders import create_folder, get_root_folder
from studyshelf.library.listing import list_children
from studyshelf.library.provisioning import provision_organization
from studyshelf.library.sniff import sniff_content_type
from studyshelf.partners import service as partners
from studyshelf.partners.models import Organization, OrgKind, Role, User
from studyshelf.partners.principal import Principal
from studyshelf.services import Services
from studyshelf.storage import BlobStore, StoredBlob

CHUNK_BYTES = 1 << 20
OPERATOR = ("Northwind Publishing", "northwind", OrgKind.OPERATOR)
PARTNER = ("Riverside University", "riverside", OrgKind.PARTNER)
COURSE = "Biology 101"


@dataclass(frozen=True)
class DemoFile:
    asset: str  # file name in studyshelf/demo/assets
    folder: str  # sub-folder of the course folder
    name: str  # name shown in the library


DEMO_FILES = (
    DemoFile("cell-structure.pdf", "Week 1 — Cells", "Cell structure.pdf"),
    DemoFile("cell-diagram.png", "Week 1 — Cells", "Cell diagram.png"),
    DemoFile("mitosis-lecture.mp4", "Media", "Mitosis — lecture.mp4"),
    DemoFile("pronunciation-guide.mp3", "Media", "Pronunciation guide.mp3"),
    DemoFile("course-handbook.docx", "Handouts", "Course handbook.docx"),
    DemoFile("marks-template.xlsx", "Handouts", "Marks template.xlsx"),
)


@dataclass(frozen=True)
class DemoCaptions:
    asset: str
    language: str
    default: bool


# Captions of the demo lecture: English as WebVTT (shown by default), German as SRT (converted on the way in).
DEMO_CAPTIONS = {
    "Mitosis — lecture.mp4": (
        DemoCaptions("mitosis-lecture.en.vtt", "en", default=True),
        DemoCaptions("mitosis-lecture.de.srt", "de", default=False),
    )
}


def asset(name: str) -> Traversable:
    """A demo asset shipped inside the package."""
    return resources.files("studyshelf.demo").joinpath("assets", name)


def seed_demo(services: Services, *, console: Console, only_if_empty: bool) -> None:
    """Create (or complete) the demo; running it again adds nothing twice."""
    now = services.clock.now()
    with unit_of_work(services.write_sessions) as db:
        if only_if_empty and db.scalar(select(Organization.id).limit(1)) is not None:
            console.print("StudyShelf is already set up; the demo was not added.")
            return
        operator = _organization(db, *OPERATOR)
        partner = _organization(db, *PARTNER)
        admin, password = _admin(db, email=services.settings.admin_email, password=services.settings.admin_password)
        partners.add_member(db, user=admin, org=operator, role=Role.OWNER)
        partners.add_member(db, user=admin, org=partner, role=Role.ADMIN)
        principal = Principal(user=admin)
        course = _folder(db, principal, parent_id=get_root_folder(db, org_id=operator.id).id, name=COURSE, now=now)
        # Blobs are written before the commit; if the commit fails, recover_storage removes them at the next start.
        added = 0
        for item in DEMO_FILES:
            folder = _folder(db, principal, parent_id=course, name=item.folder, now=now)
            if _child_id(db, principal, folder_id=folder, name=item.name, now=now) is None:
                blob, content_type = _store(services.blobs, asset(item.asset), item.name)
                file = add_file(
                    db,
                    principal=principal,
                    folder_id=folder,
                    name=item.name,
                    blob=blob,
                    content_type=content_type,
                    now=now,
                )
                _caption(services, db, principal, file.id, DEMO_CAPTIONS.get(item.name, ()), now=now)
                added += 1
    console.print(
        f"Demo ready: [bold]{operator.name}[/bold] ({operator.slug}) and [bold]{partner.name}[/bold] "
        f"({partner.slug}), {added} new files in {COURSE}."
    )
    if password is not None:
        console.print(
            Panel.fit(
                f"E-mail:   [bold]{admin.email}[/bold]\nPassword: [bold]{password}[/bold]",
                title="Admin sign-in (the password is shown only this once)",
                border_style="yellow",
            )
        )
    else:
        console.print(f"Sign in as [bold]{admin.email}[/bold].")


def _caption(
    services: Services,
    db: Session,
    principal: Principal,
    file_id: uuid.UUID,
    tracks: tuple[DemoCaptions, ...],
    *,
    now: datetime,
) -> None:
    for track in tracks:
        text = read_caption_file(asset(track.asset).read_bytes(), filename=track.asset)
        blob = write_caption_blob(services.blobs, text).commit()
        add_caption(
            db,
            principal=principal,
            file_id=file_id,
            blob=blob,
            text=text,
            language=track.language,
            label=None,
            default=track.default,
            now=now,
        )


def _organization(db: Session, name: str, slug: str, kind: OrgKind) -> Organization:
    existing = db.scalar(select(Organization).where(Organization.slug == slug))
    return existing or provision_organization(db, name=name, slug=slug, kind=kind)


def _admin(db: Session, *, email: str, password: str | None) -> tuple[User, str | None]:
    """The admin user, created when missing; return it and the password to show (only if generated)."""
    existing = db.scalar(select(User).where(User.email == email.strip().lower()))
    if existing is not None:
        existing.is_platform_admin = True
        return existing, None
    generated = password is None
    password = password or secrets.token_urlsafe(12)
    user = partners.create_user(db, email=email, password=password, name="Administrator")
    user.is_platform_admin = True
    return user, password if generated else None


def _child_id(db: Session, principal: Principal, *, folder_id: uuid.UUID, name: str, now: datetime) -> uuid.UUID | None:
    entries, _ = list_children(db, principal=principal, folder_id=folder_id, limit=500, now=now)
    return next((entry.id for entry in entries if entry.name == name), None)


def _folder(db: Session, principal: Principal, *, parent_id: uuid.UUID, name: str, now: datetime) -> uuid.UUID:
    existing = _child_id(db, principal, folder_id=parent_id, name=name, now=now)
    if existing is not None:
        return existing
    return create_folder(db, principal=principal, parent_id=parent_id, name=name, now=now).id


def _store(blobs: BlobStore, source: Traversable, name: str) -> tuple[StoredBlob, str]:
    """Stream a packaged file into the blob store in 1 MiB chunks; return the blob and its sniffed type."""
    writer = blobs.writer()
    try:
        with source.open("rb") as handle:
            while chunk := handle.read(CHUNK_BYTES):
                writer.write(chunk)
        blob = writer.commit()
    except BaseException:
        writer.abort()
        raise
    return blob, sniff_content_type(writer.head, name)
