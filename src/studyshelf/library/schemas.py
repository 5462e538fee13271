"""API shapes for folders, files, versions and the trash."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from studyshelf.partners.models import Role
from studyshelf.partners.schemas import OrgRead, UserRead

OnConflict = Literal["fail", "rename"]


class FolderCreate(BaseModel):
    name: str = Field(min_length=1, max_length=1024)
    parent_id: uuid.UUID


class FolderUpdate(BaseModel):
    """Rename (name), move (parent_id), or both."""

    name: str | None = Field(default=None, min_length=1, max_length=1024)
    parent_id: uuid.UUID | None = None


class FileUpdate(BaseModel):
    """Rename (name), move (folder_id), or both."""

    name: str | None = Field(default=None, min_length=1, max_length=1024)
    folder_id: uuid.UUID | None = None


class Crumb(BaseModel):
    id: uuid.UUID
    name: str


class FolderRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    org_id: uuid.UUID
    parent_id: uuid.UUID | None
    name: str
    created_at: datetime
    updated_at: datetime
    path: list[Crumb] = Field(default_factory=list, description="From the root down to this folder.")


class VersionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    number: int
    size: int
    content_type: str
    sha256: str
    created_at: datetime
    content_url: str


class FileRead(BaseModel):
    id: uuid.UUID
    org_id: uuid.UUID
    folder_id: uuid.UUID
    name: str
    size: int
    content_type: str
    category: str
    sha256: str
    version: int
    created_at: datetime
    updated_at: datetime
    content_url: str


class EntryRead(BaseModel):
    kind: Literal["folder", "file"]
    id: uuid.UUID
    name: str
    size: int | None
    content_type: str | None
    updated_at: datetime


class ChildrenPage(BaseModel):
    items: list[EntryRead]
    next_cursor: str | None = Field(description="Pass as ?cursor= to get the next page; null on the last page.")


class TrashItemRead(BaseModel):
    kind: Literal["folder", "file"]
    id: uuid.UUID
    name: str
    parent_id: uuid.UUID
    deleted_at: datetime
    purge_at: datetime


class MyOrgRead(OrgRead):
    role: Role
    root_folder_id: uuid.UUID


class MeRead(BaseModel):
    user: UserRead
    organizations: list[MyOrgRead]
    current_org_id: uuid.UUID | None


class CaptionRead(BaseModel):
    id: uuid.UUID
    file_id: uuid.UUID
    language: str = Field(description="BCP 47 tag in canonical case: en, de, pt-BR, zh-Hant")
    label: str
    default: bool = Field(description="shown when the viewer opens (one per file at most)")
    size: int = Field(description="bytes of the stored WebVTT")
    cues: int
    source_format: Literal["vtt", "srt"] = Field(description="what was uploaded; SRT is stored converted to WebVTT")
    sha256: str
    created_at: datetime
    updated_at: datetime
    content_url: str


class CaptionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str | None = Field(default=None, max_length=100)
    default: bool | None = None
