"""The one permission policy: every decision about who may do what goes through here."""

from __future__ import annotations

import enum
import uuid

from studyshelf.core.errors import NotFound, PermissionDenied
from studyshelf.partners.models import Role
from studyshelf.partners.principal import Principal


class Permission(enum.StrEnum):
    """`<scope>:<action>`; each maps to the lowest role that holds it."""

    LIBRARY_READ = "library:read"
    LIBRARY_WRITE = "library:write"
    ORG_ADMIN = "org:admin"


_LOWEST_ROLE = {
    Permission.LIBRARY_READ: Role.VIEWER,
    Permission.LIBRARY_WRITE: Role.EDITOR,
    Permission.ORG_ADMIN: Role.ADMIN,
}


def role_in(principal: Principal, org_id: uuid.UUID) -> Role | None:
    """The role the principal acts with in an organisation, after any token cap; None if none."""
    token = principal.token
    if token is not None and token.org_id is not None and token.org_id != org_id:
        return None
    membership = next((m for m in principal.user.memberships if m.org_id == org_id), None)
    if membership is None:
        return None
    role = membership.role
    if token is not None and token.role is not None and token.role.rank < role.rank:
        role = token.role
    return role


def allows(principal: Principal, permission: Permission, org_id: uuid.UUID) -> bool:
    role = role_in(principal, org_id)
    return role is not None and role.rank >= _LOWEST_ROLE[permission].rank


def require(principal: Principal, permission: Permission, org_id: uuid.UUID, *, what: str = "item") -> None:
    """Raise unless the principal holds the permission in the organisation.

    Someone who cannot even read gets NotFound, so nothing leaks across tenants.
    """
    if allows(principal, permission, org_id):
        return
    if allows(principal, Permission.LIBRARY_READ, org_id):
        raise PermissionDenied(f"Your role does not allow changing this {what}.")
    raise NotFound(f"No such {what}.")


def readable_org_ids(principal: Principal) -> list[uuid.UUID]:
    """Organisations whose library the principal may read (for filtering list queries in SQL)."""
    return [m.org_id for m in principal.user.memberships if allows(principal, Permission.LIBRARY_READ, m.org_id)]
