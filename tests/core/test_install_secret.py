"""The install secret: generated on first start, kept in the data dir, never a value the code ships."""

from __future__ import annotations

import base64
import stat
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pydantic import ValidationError

from studyshelf.settings import PUBLISHED_SECRET_KEYS, SECRET_KEY_FILE, Settings, load_or_create_install_secret
from studyshelf.signing import MediaClaims, MediaRefused, MediaSigner

NOW = 1_900_000_000
CLAIMS = MediaClaims(
    expires=NOW + 300,
    link_id="abc",
    version_id=str(uuid.uuid4()),
    sha256="0" * 64,
    size=10,
    modified=1_700_000_000,
    content_type="application/pdf",
    download=False,
    filename="notes.pdf",
)


def test_first_start_generates_a_private_256_bit_secret(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "var")
    path = tmp_path / "var" / SECRET_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == settings.secret_key
    assert len(base64.urlsafe_b64decode(settings.secret_key + "==")) * 8 >= 256
    assert Settings(data_dir=tmp_path / "var").secret_key == settings.secret_key  # kept across restarts
    assert settings.secret_key not in repr(settings)


def test_two_installs_never_share_a_secret(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path / "one")
    second = Settings(data_dir=tmp_path / "two")
    assert first.secret_key != second.secret_key
    path = MediaSigner.from_settings(first).sign(CLAIMS)
    assert MediaSigner.from_settings(first).verify(path, NOW) == CLAIMS
    with pytest.raises(MediaRefused):
        MediaSigner.from_settings(second).verify(path, NOW)


def test_the_environment_overrides_the_generated_secret(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STUDYSHELF_SECRET_KEY", "e" * 40)
    assert Settings(data_dir=tmp_path).secret_key == "e" * 40
    assert not (tmp_path / SECRET_KEY_FILE).exists()


def test_no_published_value_is_accepted(tmp_path: Path) -> None:
    for published in PUBLISHED_SECRET_KEYS:
        for environment in ("development", "test", "production"):
            with pytest.raises(ValidationError, match="published"):
                Settings(data_dir=tmp_path, environment=environment, secret_key=published)


def test_a_secret_file_others_can_read_is_refused(tmp_path: Path) -> None:
    Settings(data_dir=tmp_path)
    (tmp_path / SECRET_KEY_FILE).chmod(0o644)
    with pytest.raises(ValidationError, match="chmod 600"):
        Settings(data_dir=tmp_path)


def test_a_truncated_secret_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / SECRET_KEY_FILE
    path.write_text("short\n")
    path.chmod(0o600)
    with pytest.raises(ValidationError, match="fewer than 32 bytes"):
        Settings(data_dir=tmp_path)


def test_processes_starting_together_agree_on_one_secret(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        secrets = set(pool.map(lambda _: load_or_create_install_secret(tmp_path), range(16)))
    assert len(secrets) == 1
    assert [p.name for p in tmp_path.iterdir()] == [SECRET_KEY_FILE]  # no drafts left behind
