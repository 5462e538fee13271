"""What synthetic traffic is about: organisations, their files and folders, and who may use which file.

Read from the app DB when it has content, so dashboards show real names (files, folder paths, the owner,
the partners it is granted to), and topped up or made up entirely from the seed otherwise.
"""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from studyshelf.analytics.enrich import extension_of
from studyshelf.library.models import File, FileVersion, Folder
from studyshelf.library.sniff import category
from studyshelf.partners.models import Grant, Organization, OrgKind, TargetType

# (category, extension, weight, median bytes, log-normal sigma) of synthetic files.
FILE_TYPES: Final = (
    ("pdf", "pdf", 38, 1_800_000, 1.0),
    ("video", "mp4", 12, 120_000_000, 0.9),
    ("video", "webm", 2, 80_000_000, 0.9),
    ("audio", "mp3", 5, 8_000_000, 0.7),
    ("audio", "m4a", 1, 6_000_000, 0.7),
    ("image", "png", 8, 400_000, 0.9),
    ("image", "jpg", 7, 600_000, 0.8),
    ("document", "docx", 10, 250_000, 1.0),
    ("document", "pptx", 8, 3_000_000, 1.0),
    ("document", "xlsx", 4, 120_000, 1.0),
    ("text", "txt", 2, 8_000, 1.0),
    ("text", "csv", 1, 40_000, 1.2),
    ("other", "zip", 2, 20_000_000, 1.0),
)
OPERATOR_NAME: Final = "Northwind Publishing"
PARTNER_NAMES: Final = (
    "Riverside University",
    "Lakeside College",
    "Hochschule Rheintal",
    "Université Lyon Est",
    "Midlands Training Ltd",
    "Universidad del Sol",
    "Nordfjord Folkehøgskole",
    "St Aidan's School",
    "Bayview Community College",
    "Technische Akademie Süd",
    "Ganges Institute of Technology",
    "Maple Leaf Polytechnic",
    "Università di Colle",
    "Harbour City Academy",
)
FILES_PER_COURSE: Final = 40
UNITS_PER_COURSE: Final = 6


@dataclass(frozen=True, slots=True)
class CatalogueFile:
    id: str
    version_id: str
    owner_org: str
    folder_path: tuple[str, ...]  # root first, down to the folder the file is in
    category: str
    extension: str
    size: int


@dataclass(frozen=True, slots=True)
class CatalogueOrg:
    id: str
    name: str
    operator: bool
    root_folder: str


@dataclass
class Catalogue:
    orgs: list[CatalogueOrg] = field(default_factory=list)
    files: list[CatalogueFile] = field(default_factory=list)  # most popular first
    users: dict[str, set[int]] = field(default_factory=dict)  # org id → files it may use (indexes)
    real_files: int = 0

    def allow(self, org_id: str, file_index: int) -> None:
        self.users.setdefault(org_id, set()).add(file_index)


def load_catalogue(db: Session, *, now: datetime) -> Catalogue:
    """The live organisations, files (current versions) and grants of the app DB."""
    roots: dict[uuid.UUID, uuid.UUID] = {}
    parents: dict[uuid.UUID, uuid.UUID | None] = {}
    for folder_id, parent_id, org_id in db.execute(
        select(Folder.id, Folder.parent_id, Folder.org_id).where(Folder.deleted_at.is_(None))
    ):
        parents[folder_id] = parent_id
        if parent_id is None:
            roots[org_id] = folder_id
    catalogue = Catalogue()
    for org_id, name, kind in db.execute(
        select(Organization.id, Organization.name, Organization.kind).order_by(Organization.created_at, Organization.id)
    ):
        if org_id in roots:
            catalogue.orgs.append(CatalogueOrg(str(org_id), name, kind == OrgKind.OPERATOR, str(roots[org_id])))
    rows = db.execute(
        select(
            File.id, File.folder_id, File.org_id, File.name, FileVersion.id, FileVersion.content_type, FileVersion.size
        )
        .join(FileVersion, File.current_version_id == FileVersion.id)
        .where(File.deleted_at.is_(None))
        .order_by(File.created_at, File.id)
    )
    grantees = _grantees(db, now=now)
    for file_id, folder_id, org_id, name, version_id, content_type, size in rows:
        path = _path(parents, folder_id)
        if path is None:
            continue  # inside a folder in the trash
        index = len(catalogue.files)
        catalogue.files.append(
            CatalogueFile(
                id=str(file_id),
                version_id=str(version_id),
                owner_org=str(org_id),
                folder_path=tuple(str(p) for p in path),
                category=category(content_type),
                extension=extension_of(name),
                size=int(size),
            )
        )
        catalogue.allow(str(org_id), index)
        for target in (file_id, *path):
            for grantee in grantees.get(target, ()):
                catalogue.allow(str(grantee), index)
    catalogue.real_files = len(catalogue.files)
    return catalogue


def _grantees(db: Session, *, now: datetime) -> dict[uuid.UUID, set[uuid.UUID]]:
    found: dict[uuid.UUID, set[uuid.UUID]] = {}
    for target_id, grantee, target_type in db.execute(
        select(Grant.target_id, Grant.grantee_org_id, Grant.target_type).where(
            Grant.revoked_at.is_(None), or_(Grant.expires_at.is_(None), Grant.expires_at > now)
        )
    ):
        if target_type in (TargetType.FILE, TargetType.FOLDER):
            found.setdefault(target_id, set()).add(grantee)
    return found


def _path(parents: dict[uuid.UUID, uuid.UUID | None], folder_id: uuid.UUID) -> list[uuid.UUID] | None:
    path: list[uuid.UUID] = []
    current: uuid.UUID | None = folder_id
    while current is not None:
        if current not in parents or len(path) > 64:
            return None
        path.append(current)
        current = parents[current]
    return path[::-1]


def _synthetic_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def synthesise(catalogue: Catalogue, *, rng: random.Random, files: int) -> Catalogue:
    """Add `files` synthetic files (in synthetic course and unit folders below the owners' root folders),
    shared with a few partners each; add an operator and partners first when there are no organisations."""
    if not catalogue.orgs:
        catalogue.orgs.append(CatalogueOrg(_synthetic_id(rng), OPERATOR_NAME, True, _synthetic_id(rng)))
        for name in PARTNER_NAMES:
            catalogue.orgs.append(CatalogueOrg(_synthetic_id(rng), name, False, _synthetic_id(rng)))
    if files <= 0:
        return catalogue
    operators = [o for o in catalogue.orgs if o.operator] or catalogue.orgs[:1]
    partners = [o for o in catalogue.orgs if o not in operators]
    # The operator publishes most content; a few partners publish some of their own.
    owners = [(o, 7.0 / len(operators)) for o in operators] + [(o, 1.0) for o in partners[:3]]
    owner_weights = [w for _, w in owners]
    type_weights = [t[2] for t in FILE_TYPES]
    start = len(catalogue.files)
    courses = math.ceil(files / FILES_PER_COURSE)
    for _ in range(courses):
        owner = rng.choices(owners, owner_weights)[0][0]
        course = _synthetic_id(rng)
        units = [_synthetic_id(rng) for _ in range(UNITS_PER_COURSE)]
        others = [p for p in partners if p is not owner]
        shared = 1 + int(rng.random() ** 1.5 * 8) if owner.operator else rng.randrange(3)
        users = [owner.id, *(p.id for p in rng.sample(others, min(shared, len(others))))]
        for _ in range(min(FILES_PER_COURSE, start + files - len(catalogue.files))):
            kind, extension, _, median, sigma = rng.choices(FILE_TYPES, type_weights)[0]
            unit = rng.choice(units)
            index = len(catalogue.files)
            catalogue.files.append(
                CatalogueFile(
                    id=_synthetic_id(rng),
                    version_id=_synthetic_id(rng),
                    owner_org=owner.id,
                    folder_path=(owner.root_folder, course)
                    if rng.random() < 0.2
                    else (owner.root_folder, course, unit),
                    category=kind,
                    extension=extension,
                    size=max(200, int(rng.lognormvariate(math.log(median), sigma))),
                )
            )
            for org_id in users:
                catalogue.allow(org_id, index)
    _shuffle_synthetic(catalogue, rng=rng, start=start)
    return catalogue


def _shuffle_synthetic(catalogue: Catalogue, *, rng: random.Random, start: int) -> None:
    """Popularity follows list order: real files lead, the synthetic ones are ranked at random."""
    order = list(range(start, len(catalogue.files)))
    rng.shuffle(order)
    new_index = {old: start + i for i, old in enumerate(order)}
    catalogue.files[start:] = [catalogue.files[old] for old in order]
    catalogue.users = {org: {new_index.get(i, i) for i in indexes} for org, indexes in catalogue.users.items()}
