"""Property: over random folder trees and random grant sets, what a partner may read and change equals a
simple reference model (an item is reachable through a live grant on itself or any folder above it)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from studyshelf.core.clock import utcnow
from studyshelf.core.db import unit_of_work
from studyshelf.core.errors import NotFound, PermissionDenied
from studyshelf.library.folders import get_folder, get_root_folder
from studyshelf.library.models import Folder
from studyshelf.library.provisioning import provision_organization
from studyshelf.partners import service as partners
from studyshelf.partners.models import Grant, GrantLevel, OrgKind, Role, TargetType, User
from studyshelf.partners.permissions import Permission
from studyshelf.partners.principal import Principal
from studyshelf.services import Services

STATES = ("live", "expired", "revoked")


@dataclass(frozen=True)
class Tree:
    parents: list[int]  # parents[i] is the index of folder i+1's parent (folder 0 is the root)
    grants: list[tuple[int, GrantLevel, str]]  # (folder, level, state)


@st.composite
def trees(draw: st.DrawFn) -> Tree:
    size = draw(st.integers(min_value=1, max_value=9))
    parents = [draw(st.integers(min_value=0, max_value=i)) for i in range(size)]
    grants = draw(
        st.lists(
            st.tuples(
                st.integers(min_value=0, max_value=size), st.sampled_from(list(GrantLevel)), st.sampled_from(STATES)
            ),
            max_size=4,
        )
    )
    return Tree(parents, grants)


def ancestors(tree: Tree, node: int) -> list[int]:
    chain = [node]
    while chain[-1] != 0:
        chain.append(tree.parents[chain[-1] - 1])
    return chain


def reference(tree: Tree, node: int, permission: Permission) -> bool:
    wanted = {GrantLevel.VIEW, GrantLevel.MANAGE} if permission is Permission.LIBRARY_READ else {GrantLevel.MANAGE}
    above = set(ancestors(tree, node))
    return any(folder in above and level in wanted and state == "live" for folder, level, state in tree.grants)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=trees())
def test_grant_inheritance_matches_the_reference_model(services: Services, tree: Tree) -> None:
    tag = uuid.uuid4().hex[:8]
    now = utcnow()
    with unit_of_work(services.write_sessions) as db:
        owner = provision_organization(db, name="Owner", slug=f"owner-{tag}", kind=OrgKind.OPERATOR)
        partner = provision_organization(db, name="Partner", slug=f"partner-{tag}", kind=OrgKind.PARTNER)
        editor = partners.create_user(db, email=f"editor-{tag}@partner.test", password="long enough")
        partners.add_member(db, user=editor, org=partner, role=Role.EDITOR)
        root = get_root_folder(db, org_id=owner.id)
        folders = [root]
        for index, parent in enumerate(tree.parents):
            folder = Folder(org_id=owner.id, parent_id=folders[parent].id, name=f"f{index}", name_key=f"f{index}")
            db.add(folder)
            db.flush()
            folders.append(folder)
        for node, level, state in tree.grants:
            db.add(
                Grant(
                    owner_org_id=owner.id,
                    grantee_org_id=partner.id,
                    target_type=TargetType.FOLDER,
                    target_id=folders[node].id,
                    level=level,
                    expires_at=now - timedelta(minutes=1) if state == "expired" else None,
                    revoked_at=now if state == "revoked" else None,
                )
            )
        folder_ids = [f.id for f in folders]
        editor_id = editor.id

    with unit_of_work(services.read_sessions) as db:
        user = db.get(User, editor_id)
        assert user is not None
        principal = Principal(user=user)
        for node, folder_id in enumerate(folder_ids):
            for permission in (Permission.LIBRARY_READ, Permission.LIBRARY_WRITE):
                try:
                    get_folder(
                        db, principal=principal, folder_id=folder_id, permission=permission, now=services.clock.now()
                    )
                    allowed = True
                except (NotFound, PermissionDenied):
                    allowed = False
                assert allowed == reference(tree, node, permission), (node, permission, tree)
