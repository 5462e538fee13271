"""The daily report's shape (JSON, the webhook's body, the API's answers) and the report settings' API shapes.

`DailyReport` is a published format: fields are only ever added, never renamed or removed, and
`format` names its version.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

REPORT_FORMAT: Final = "studyshelf.daily-report.v1"
DayStatus = Literal["ready", "pending", "open", "none"]


class ReportMetrics(BaseModel):
    views: int
    viewers: int = Field(description="unique pseudonymous viewers that day")
    load_ok: int = Field(description="media that loaded")
    fails: int = Field(description="media that failed to load")
    fail_rate: float | None = Field(description="fails / (load_ok + fails), 4 decimals; null when nothing loaded")
    downloads: int
    blocked: int = Field(description="refused requests (expired, revoked, wrong site, …)")
    bytes: int = Field(description="bytes delivered")


class ReportRow(ReportMetrics):
    key: str = Field(description="the value: a file or folder id, a country code, a browser, a type; '' = unknown")
    name: str = Field(description="what the UI shows for the key")


class ItemRow(ReportRow):
    path: str = Field(description="folders from the library root (or, for shared content, the shared folder) down")
    owner: str = Field(description="the organisation whose library holds the item")
    deleted: bool = Field(description="the item is in the trash or deleted since")


class OrgRef(BaseModel):
    id: uuid.UUID
    name: str
    slug: str


class DailyReport(BaseModel):
    """One organisation's usage on one day of its time zone: its own content, and its use of content shared with it."""

    format: Literal["studyshelf.daily-report.v1"] = REPORT_FORMAT
    org: OrgRef
    day: date
    time_zone: str
    start: datetime = Field(description="the day's first instant, in the time zone")
    end: datetime = Field(description="the next day's first instant, in the time zone")
    rolled_at: datetime | None
    totals: ReportMetrics
    files: list[ItemRow]
    folders: list[ItemRow] = Field(description="per folder the files are directly in")
    countries: list[ReportRow]
    browsers: list[ReportRow]
    categories: list[ReportRow] = Field(description="file types: document, video, audio, image, …")
    extensions: list[ReportRow]


class DeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    sent_at: datetime | None
    attempts: int
    last_error: str


class ReportLinks(BaseModel):
    json_: str = Field(alias="json")
    csv: str

    model_config = ConfigDict(populate_by_name=True)


class ReportDayRead(BaseModel):
    day: date
    status: DayStatus = Field(
        description=(
            "ready: rolled up; pending: over but not rolled up yet; open: today; "
            "none: before the first day with usage (nothing to report)"
        )
    )
    views: int | None = Field(description="the day's views, once ready")
    fails: int | None
    delivery: DeliveryRead | None = Field(description="sending by e-mail or webhook, when configured")
    links: ReportLinks | None = Field(description="downloads, once ready")


class ReportDayList(BaseModel):
    org_id: uuid.UUID
    time_zone: str
    from_: date = Field(alias="from")
    to: date
    days: list[ReportDayRead] = Field(description="newest first")

    model_config = ConfigDict(populate_by_name=True)


class ReportSettingsRead(BaseModel):
    org_id: uuid.UUID
    time_zone: str = Field(description="IANA time zone of the organisation's days, e.g. Europe/Berlin")
    emails: list[str] = Field(description="who gets each day's report (CSV attached)")
    webhook_url: str = Field(
        description=(
            "https URL that gets each day's report as JSON; '' for none. Whole for admins (can_edit); "
            "for other roles only scheme and host, e.g. https://hooks.example.com/…"
        )
    )
    webhook_secret: str | None = Field(
        description="key of the X-StudyShelf-Signature HMAC (admins only; null for other roles)"
    )
    can_edit: bool


class ReportSettingsUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    time_zone: str = Field(min_length=1, max_length=64)
    emails: list[str] = Field(default_factory=list, max_length=20)
    webhook_url: str = Field(default="", max_length=500)
