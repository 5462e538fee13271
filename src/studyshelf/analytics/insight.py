"""One file's or one folder's performance: the figures behind /analytics/files/{id} and /analytics/folders/{id}.

The page takes the dashboard's period and filters (dashboard.parse_query), adds its own file or folder (a
folder counts its whole subtree), and reads the organisation's scope only: usage of its own content and its own
usage of others'. The summary (totals, series) comes through analytics.service; the failures by audience, the
load-time histogram and the figures per version, placement and file come from one Warehouse.insight scan.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from studyshelf.analytics import insight_names, service
from studyshelf.analytics.dashboard import FILTERS, PERIOD_PARAMETERS, DashboardQuery, parse_query
from studyshelf.analytics.names import Names
from studyshelf.analytics.reports.org_settings import zone
from studyshelf.core.errors import Invalid, NotFound, Unavailable
from studyshelf.library import access, files, folders
from studyshelf.library.sniff import category
from studyshelf.partners.permissions import Permission, require
from studyshelf.partners.principal import Principal
from studyshelf.warehouse import LOAD_BUCKETS_MS, Bucket, Insight, Metrics, Warehouse, WarehouseError

Kind = Literal["file", "folder"]
# A folder ranks its files by fail rate only among files opened at least this often: two fails in three views
# say little, and would push the files with real problems down the list.
MIN_VIEWS_TO_RANK: Final = 20
RANKED_FILES: Final = 25
PERIOD_PARAMS: Final = frozenset(PERIOD_PARAMETERS)
NO_INSIGHT: Final = Insight(
    failures=[], loads=[], histogram=(0,) * (len(LOAD_BUCKETS_MS) + 1), versions=[], placements=[], files=[]
)


@dataclass(frozen=True)
class VersionInfo:
    number: int
    created_at: datetime
    size: int
    current: bool


@dataclass(frozen=True)
class Target:
    """The file or folder a page is about, as the principal may name it."""

    kind: Kind
    id: uuid.UUID
    name: str
    path: list[tuple[uuid.UUID, str]]  # the visible folders above it (a folder's own name last)
    file_kind: str = "folder"  # a file's category (pdf, video, …)
    versions: dict[str, VersionInfo] = field(default_factory=dict)  # a file's versions by id


@dataclass(frozen=True)
class RankedFile:
    key: str
    name: str | None  # None when the file is gone or no longer visible
    file_kind: str
    metrics: Metrics


@dataclass(frozen=True)
class Report:
    target: Target
    query: DashboardQuery
    bucket: Bucket
    totals: Metrics
    series: list[tuple[datetime, Metrics]]
    insight: Insight
    placement_names: dict[str, str]  # link ids and course ids → their labels and titles, where known
    ranked_files: list[RankedFile]  # a folder's files by fail rate (MIN_VIEWS_TO_RANK views or more)
    unranked_files: int  # a folder's files with usage but too few views to rank

    @property
    def empty(self) -> bool:
        t = self.totals
        return not (t.views or t.load_ok or t.fails or t.downloads or t.blocked or t.bytes)


def page_url(kind: Kind, target_id: uuid.UUID | str, query: DashboardQuery, **changes: str | None) -> str:
    """The URL of a file's or folder's page for a period and filters (the dashboard's parameters)."""
    text = urlencode(query.params(**changes))
    path = f"/analytics/{kind}s/{target_id}"
    return f"{path}?{text}" if text else path


def parse(
    params: Mapping[str, str],
    *,
    kind: Kind,
    db: Session,
    org_id: uuid.UUID,
    now: datetime,
    extra: frozenset[str] = frozenset(),
) -> DashboardQuery:
    """The dashboard's period and filters, in days of the organisation's time zone; a parameter the page does not
    know is Invalid, not ignored."""
    unknown = sorted(set(params) - PERIOD_PARAMS - set(FILTERS) - extra)
    if unknown:
        known = ", ".join(sorted(PERIOD_PARAMS | set(FILTERS)))
        raise Invalid(f"Unknown parameter `{unknown[0]}`; the page takes {known}.")
    tz = service.time_zone(db, org_id=org_id)
    own = {name: value for name, value in params.items() if name not in extra}
    query = parse_query(own, today=now.astimezone(zone(tz)).date(), tz=tz)
    if kind == "file" and "file" in query.filters:
        raise Invalid("A file's page is about its own file: remove the `file` filter.")
    return query


def file_target(db: Session, *, principal: Principal, file_id: uuid.UUID, now: datetime) -> Target:
    """The file as the principal sees it; NotFound when it is another organisation's or not visible."""
    file = files.get_file(db, principal=principal, file_id=file_id, now=now)
    current = file.current_version
    versions = {
        str(v.id): VersionInfo(v.number, v.created_at, v.size, current is not None and v.id == current.id)
        for v in files.list_versions(db, principal=principal, file_id=file.id, now=now)
    }
    try:
        folder = folders.get_folder(db, principal=principal, folder_id=file.folder_id, now=now)
        path = [(f.id, f.name) for f in access.visible_path(db, viewer=principal, folder=folder, now=now)]
    except NotFound:  # a file shared alone has no visible folders; the page needs none
        path = []
    kind = category(current.content_type) if current is not None else "other"
    return Target("file", file.id, file.name, path, kind, versions)


def folder_target(db: Session, *, principal: Principal, folder_id: uuid.UUID, now: datetime) -> Target:
    """The folder as the principal sees it; NotFound when it is another organisation's or not visible."""
    folder = folders.get_folder(db, principal=principal, folder_id=folder_id, now=now)
    path = [(f.id, f.name) for f in access.visible_path(db, viewer=principal, folder=folder, now=now)]
    return Target("folder", folder.id, folder.name, path)


def report(
    db: Session,
    warehouse: Warehouse,
    *,
    principal: Principal,
    org_id: uuid.UUID,
    target: Target,
    query: DashboardQuery,
    now: datetime,
    details: bool = True,
) -> Report:
    """Every figure of the target's page, in the organisation's scope; without `details`, the headline figures
    only (totals and series, from the rollups when they hold the period) and an empty insight: the page's shell,
    whose tables come after it as a fragment."""
    require(principal, Permission.ANALYTICS_READ, org_id, what="organisation")
    built = service.build_query(
        org_id=org_id,
        start=query.start,
        end=query.end,
        filters=query.filters | {target.kind: str(target.id)},
        breakdown=None,
        bucket=None,
        parts=frozenset({"totals", "series"}),
    )
    summary = service.summarise(warehouse, principal=principal, org_id=org_id, query=built, db=db, now=now)
    if not details:
        return Report(target, query, built.bucket, summary.totals, summary.series, NO_INSIGHT, {}, [], 0)
    try:
        found = warehouse.insight(built)
    except WarehouseError as exc:
        raise Unavailable("Usage figures are not available right now; try again shortly.") from exc
    ranked: list[RankedFile] = []
    unranked = 0
    if target.kind == "folder":
        ranked, unranked = _rank_files(db, principal, org_id, found, now=now)
    placement_names = insight_names.placement_names(
        db,
        org_id=org_id,
        link_ids=[p.link_id for p in found.placements if p.link_id],
        courses=[p.course for p in found.placements if p.course],
    )
    return Report(
        target=target,
        query=query,
        bucket=built.bucket,
        totals=summary.totals,
        series=summary.series,
        insight=found,
        placement_names=placement_names,
        ranked_files=ranked,
        unranked_files=unranked,
    )


def _rank_files(
    db: Session, principal: Principal, org_id: uuid.UUID, found: Insight, *, now: datetime
) -> tuple[list[RankedFile], int]:
    """The folder's files with enough views, worst fail rate first (then most fails, then most views)."""
    enough = [(key, m) for key, m in found.files if m.views >= MIN_VIEWS_TO_RANK]
    enough.sort(key=lambda item: (-(item[1].fail_rate or 0.0), -item[1].fails, -item[1].views, item[0]))
    enough = enough[:RANKED_FILES]
    names = Names(db, principal, org_id, now=now)
    names.learn(files=[key for key, _m in enough])
    ranked = []
    for key, m in enough:
        named = names.file(key)
        ranked.append(RankedFile(key, named[0] if named else None, named[1] if named else "file", m))
    return ranked, len(found.files) - len([1 for _k, m in found.files if m.views >= MIN_VIEWS_TO_RANK])
