"""The facts of a file as delivery shows it, gathered once and read by the hit, the beacon token and the media URL.

`ContentFacts` says what is shown (file, version, type, size, name, owner, folders); `ScopeFacts` says through
what it is seen (a share link, or an LTI launch's course and resource link) and for which partner.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from studyshelf.events import Hit
from studyshelf.events.beacon import BeaconClaims
from studyshelf.events.schema import ClientFacts
from studyshelf.library.access import content_path_ids
from studyshelf.library.captions import CAPTIONED_KINDS, CaptionTrack, tracks_of
from studyshelf.library.models import File, FileVersion
from studyshelf.library.sniff import category
from studyshelf.media.models import MediaJob
from studyshelf.signing import MediaClaims


@dataclass(frozen=True)
class ScopeFacts:
    """Whom a view serves: the partner organisation, and the share link or the LMS placement it came through."""

    partner_org_id: str
    link_id: str | None = None  # None for an LTI launch: its course and resource link say where it was seen
    course: str = ""
    resource_link: str = ""
    lms: str = ""  # an LTI launch's platform (moodle, canvas, other); else enrichment reads the referrer


def folder_path(db: Session, file: File) -> tuple[str, ...]:
    """The ids of the file's folder and its ancestors, root first."""
    found = content_path_ids(db, target_type="file", target_id=file.id)
    return tuple(str(i) for i in found[1][:-1]) if found else (str(file.folder_id),)


def processed(db: Session, version_id: uuid.UUID) -> dict[str, Any]:
    """The version's processed outputs as ContentFacts fields (none while it has none)."""
    job = db.get(MediaJob, version_id)
    return outputs_of(job.generation, job.renditions) if job is not None else {}


def outputs_of(generation: int | None, renditions: str | None) -> dict[str, Any]:
    """A media job's generation and renditions as ContentFacts fields (none before its first success)."""
    if not generation:
        return {}
    return {"media_generation": generation, "media_renditions": tuple((renditions or "").split())}


@dataclass(frozen=True)
class ContentFacts:
    """One version of one file as delivered."""

    file_id: str
    version_id: str
    owner_org_id: str
    folder_path: tuple[str, ...]
    content_type: str
    filename: str
    size: int
    sha256: str
    modified: int  # the version's creation, epoch seconds: the media URL's Last-Modified
    captions: tuple[CaptionTrack, ...] = ()  # a video's or audio's caption tracks, the default first
    media_generation: int = 0  # the version's processed outputs (renditions, poster), 0 while it has none
    media_renditions: tuple[str, ...] = ()

    @classmethod
    def of(
        cls, db: Session, file: File, version: FileVersion, *, folders: tuple[str, ...] | None = None
    ) -> ContentFacts:
        """The facts of a version; `folders` (the file's folder path) when the caller has read it already."""
        captioned = category(version.content_type) in CAPTIONED_KINDS
        return cls(
            file_id=str(file.id),
            version_id=str(version.id),
            owner_org_id=str(file.org_id),
            folder_path=folders if folders is not None else folder_path(db, file),
            content_type=version.content_type,
            filename=file.name,
            size=version.size,
            sha256=version.blob_sha256,
            modified=int(version.created_at.timestamp()),
            captions=tuple(tracks_of(db, file.id)) if captioned else (),
            **processed(db, version.id),
        )

    @property
    def kind(self) -> str:
        """The viewer's category: video, audio, image, pdf, document, text …"""
        return category(self.content_type)

    def hit(
        self,
        *,
        type_: str,
        at: datetime,
        scope: ScopeFacts,
        client: ClientFacts,
        session: str = "",
        sent_bytes: int = 0,
    ) -> Hit:
        return Hit(
            type=type_,
            at=at,
            link_id=scope.link_id,
            owner_org_id=self.owner_org_id,
            partner_org_id=scope.partner_org_id,
            file_id=self.file_id,
            version_id=self.version_id,
            folder_path=self.folder_path,
            content_type=self.content_type,
            filename=self.filename,
            session=session,
            course=scope.course,
            resource_link=scope.resource_link,
            lms=scope.lms,
            bytes=sent_bytes,
            **client,
        )

    def beacon_claims(
        self, *, scope: ScopeFacts, session: str, issued: int, expires: int, referer: str
    ) -> BeaconClaims:
        return BeaconClaims(
            link_id=scope.link_id or "",
            file_id=self.file_id,
            version_id=self.version_id,
            owner_org_id=self.owner_org_id,
            partner_org_id=scope.partner_org_id,
            folder_path=self.folder_path,
            content_type=self.content_type,
            filename=self.filename,
            session=session,
            size=self.size,
            issued=issued,
            expires=expires,
            course=scope.course,
            resource_link=scope.resource_link,
            referer=referer,
            lms=scope.lms,
        )

    def media_claims(self, *, scope_id: str, expires: int, download: bool) -> MediaClaims:
        return MediaClaims(
            expires=expires,
            link_id=scope_id,
            version_id=self.version_id,
            sha256=self.sha256,
            size=self.size,
            modified=self.modified,
            content_type=self.content_type,
            download=download,
            filename=self.filename,
        )
