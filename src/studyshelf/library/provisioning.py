"""Organisation provisioning: an organisation is born with the root folder of its library."""

from __future__ import annotations

from sqlalchemy.orm import Session

from studyshelf.core.names import name_key
from studyshelf.library.models import Folder
from studyshelf.partners import service as partners
from studyshelf.partners.models import Organization, OrgKind

ROOT_NAME = "Library"


def provision_organization(db: Session, *, name: str, slug: str, kind: OrgKind) -> Organization:
    """Create an organisation together with its root folder."""
    org = partners.create_organization(db, name=name, slug=slug, kind=kind)
    db.add(Folder(org_id=org.id, parent_id=None, name=ROOT_NAME, name_key=name_key(ROOT_NAME)))
    db.flush()
    return org
