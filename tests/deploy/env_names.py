"""The settings the deploy files name, checked against `Settings`, so renaming a setting breaks a deploy test."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from studyshelf.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ENV_NAME = re.compile(r"\bSTUDYSHELF_[A-Z0-9_]+\b")
# The S3 storage settings arrive with the S3 blob store (issue 16, point 1). Until `Settings` has any S3 field
# they may be missing; from then on every one of them is checked like any other name.
S3_NAMES = frozenset(
    {
        "STUDYSHELF_S3_ENDPOINT_URL",
        "STUDYSHELF_S3_REGION",
        "STUDYSHELF_S3_ACCESS_KEY_ID",
        "STUDYSHELF_S3_SECRET_ACCESS_KEY",
        "STUDYSHELF_S3_ADDRESSING_STYLE",
    }
)


def settings_env_names() -> set[str]:
    prefix = str(Settings.model_config.get("env_prefix", ""))
    return {f"{prefix}{name}".upper() for name in Settings.model_fields}


def unknown_settings(names: Iterable[str]) -> set[str]:
    """The names that are not settings (S3 ones excepted while no S3 setting exists at all)."""
    known = settings_env_names()
    unknown = set(names) - known
    if not any(name.startswith("STUDYSHELF_S3_") for name in known):
        unknown -= S3_NAMES
    return unknown


def env_names_in(text: str) -> set[str]:
    """Every STUDYSHELF_… name written in a text."""
    return set(ENV_NAME.findall(text))
