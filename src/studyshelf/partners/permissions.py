"""The one permission policy: every decision about who may do what goes through here.

Roles inside an organisation: viewer (read, analytics) < editor (content, links) < admin (members,
grants, LMS registrations, settings and the secrets in them, lifting a leak-radar suspension) < owner.
Another organisation's content is reachable only through a grant on the item or one of its folders:
`view` lets the grantee's members read, `manage` lets its editors change content below the granted
folder. Platform admins (operator staff) may read everything; they change only what their own roles
allow, and that is audited like any change.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from studyshelf.core.errors import NotFound, PermissionDenied
from studyshelf.partners.models import Grant, GrantLevel, OrgKind, Role
from studyshelf.partners.principal import Principal


class Permission(enum.StrEnum):
    """`<scope>:<action>`."""

    LIBRARY_READ = "library:read"
    LIBRARY_WRITE = "library:write"
    LIBRARY_SHARE = "library:share"
    MEMBERS_MANAGE = "members:manage"
    AUDIT_READ = "audit:read"
    ANALYTICS_READ = "analytics:read"
    LINK_REACTIVATE = "link:reactivate"  # lift a suspension of the leak radar
    SETTINGS_MANAGE = "settings:manage"  # change organisation settings, read their secrets (webhook URLs)


_LOWEST_ROLE = {
    Permission.LIBRARY_READ: Role.VIEWER,
    Permission.LIBRARY_WRITE: Role.EDITOR,
    Permission.LIBRARY_SHARE: Role.ADMIN,
    Permission.MEMBERS_MANAGE: Role.ADMIN,
    Permission.AUDIT_READ: Role.ADMIN,
    Permission.ANALYTICS_READ: Role.VIEWER,
    Permission.LINK_REACTIVATE: Role.ADMIN,
    Permission.SETTINGS_MANAGE: Role.ADMIN,
}
# What a grant can extend to another organisation's members, and the role they need for it.
_GRANTABLE = {
    Permission.LIBRARY_READ: (GrantLevel.VIEW, Role.VIEWER),
    Permission.LIBRARY_WRITE: (GrantLevel.MANAGE, Role.EDITOR),
}


@dataclass(frozen=True)
class ContentScope:
    """Where an item lives: its owner, and the ids from the owner's root down to the item."""

    owner_org_id: uuid.UUID
    path_ids: tuple[uuid.UUID, ...]


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


def acting_org_ids(principal: Principal) -> list[uuid.UUID]:
    """Organisations the principal acts for (one, for an organisation-scoped token)."""
    return [m.org_id for m in principal.user.memberships if role_in(principal, m.org_id) is not None]


def allows(principal: Principal, permission: Permission, org_id: uuid.UUID) -> bool:
    """Organisation-level permission (members, grants, audit, own library)."""
    role = role_in(principal, org_id)
    if role is not None and role.rank >= _LOWEST_ROLE[permission].rank:
        return True
    return permission is Permission.LIBRARY_READ and principal.user.is_platform_admin and principal.token is None


def reaches_only_as_platform_admin(principal: Principal, org_id: uuid.UUID) -> bool:
    """True when the principal reads this organisation only because of the platform-admin flag (audited)."""
    return role_in(principal, org_id) is None and allows(principal, Permission.LIBRARY_READ, org_id)


def operates_platform(principal: Principal) -> bool:
    """Platform admins (operator staff), signed in rather than through a token, see the platform's operations."""
    return principal.user.is_platform_admin and principal.token is None


def require_platform_operator(principal: Principal) -> None:
    if not operates_platform(principal):
        raise PermissionDenied("Only the operator's platform admins may see this page.")


def operates_alarms(principal: Principal) -> bool:
    """Operator admins (an admin or owner of an operator organisation, through a token too) run the platform's alarm
    rules, contacts and every incident; platform admins signed in do too."""
    return is_operator_admin(principal)


def is_operator_admin(principal: Principal) -> bool:
    """An admin or owner of an operator organisation (through a token too), or a platform admin signed in."""
    if operates_platform(principal):
        return True
    return any(
        m.organization.kind is OrgKind.OPERATOR
        and (role := role_in(principal, m.org_id)) is not None
        and role.rank >= Role.ADMIN.rank
        for m in principal.user.memberships
    )


def require_operator_admin(principal: Principal, *, what: str) -> None:
    if not is_operator_admin(principal):
        raise PermissionDenied(f"Only the operator's admins may {what}.")


def require_alarm_operator(principal: Principal) -> None:
    if not operates_alarms(principal):
        raise PermissionDenied("Only the operator's admins may change alarms.")


def require(principal: Principal, permission: Permission, org_id: uuid.UUID, *, what: str = "item") -> None:
    """Raise unless allowed; someone who cannot even read the organisation gets NotFound (no leak)."""
    if allows(principal, permission, org_id):
        return
    if allows(principal, Permission.LIBRARY_READ, org_id):
        raise PermissionDenied(f"Your role does not allow this on the {what}.")
    raise NotFound(f"No such {what}.")


def is_active_grant(grant: Grant, now: datetime) -> bool:
    return grant.revoked_at is None and (grant.expires_at is None or grant.expires_at > now)


def content_allows(
    principal: Principal, permission: Permission, scope: ContentScope, grants: Iterable[Grant], *, now: datetime
) -> bool:
    """Whether the principal may act on an item, through its own organisation or a live grant on its path."""
    if allows(principal, permission, scope.owner_org_id):
        return True
    if permission not in _GRANTABLE:
        return False
    level_needed, role_needed = _GRANTABLE[permission]
    path = set(scope.path_ids)
    for grant in grants:
        if grant.owner_org_id != scope.owner_org_id or grant.target_id not in path or not is_active_grant(grant, now):
            continue
        if level_needed is GrantLevel.MANAGE and grant.level is not GrantLevel.MANAGE:
            continue
        role = role_in(principal, grant.grantee_org_id)
        if role is not None and role.rank >= role_needed.rank:
            return True
    return False


def require_content(
    principal: Principal,
    permission: Permission,
    scope: ContentScope,
    grants: Sequence[Grant],
    *,
    now: datetime,
    what: str = "item",
) -> None:
    """Raise NotFound when the principal cannot see the item, PermissionDenied when it can but may not act."""
    if content_allows(principal, permission, scope, grants, now=now):
        return
    if permission is not Permission.LIBRARY_READ and content_allows(
        principal, Permission.LIBRARY_READ, scope, grants, now=now
    ):
        raise PermissionDenied(f"You may not change this {what}.")
    raise NotFound(f"No such {what}.")


def assignable_roles(principal: Principal, org_id: uuid.UUID) -> list[Role]:
    """Roles this principal may give others: owners give any role, admins up to admin."""
    role = role_in(principal, org_id)
    if role is None or role.rank < Role.ADMIN.rank:
        return []
    return [r for r in Role if r.rank <= role.rank]
