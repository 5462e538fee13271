"""The upload size limit (STUDYSHELF_MAX_UPLOAD_BYTES): 413, and nothing kept anywhere."""

from __future__ import annotations

import pytest

from studyshelf.services import Services
from studyshelf.settings import Settings
from tests.conftest import Member
from tests.library.support import assert_problem, stored_state, tmp_files, upload, uploaded


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Every test here runs with a 1 KiB upload limit."""
    return settings.model_copy(update={"max_upload_bytes": 1024})


def test_upload_limit_is_enforced_and_nothing_is_kept(owner: Member, services: Services) -> None:
    uploaded(owner, owner.root_folder_id, "small.txt", b"x" * 1024)
    before = stored_state(services)
    assert_problem(upload(owner, owner.root_folder_id, "big.bin", b"y" * 1025), 413, "too-large")
    # Far over the limit: refused from Content-Length before a byte is read.
    assert_problem(upload(owner, owner.root_folder_id, "huge.bin", b"z" * 200_000), 413, "too-large")
    assert stored_state(services) == before
    assert tmp_files(services) == []
    file_id = before.files[0][0]
    response = owner.client.post(
        f"/api/v1/files/{file_id}/versions", files={"file": ("v2.txt", b"w" * 2048)}, headers=owner.headers()
    )
    assert_problem(response, 413, "too-large")
    assert stored_state(services) == before
