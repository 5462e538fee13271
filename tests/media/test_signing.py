"""Signed media URLs: the token format, tampering, expiry, clock skew, key rotation."""

from __future__ import annotations

import base64
import hmac
import uuid
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studyshelf.core.keys import Purpose, derive_key
from studyshelf.settings import Settings
from studyshelf.signing.media import (
    CLOCK_SKEW,
    MESSAGE_PREFIX,
    MediaClaims,
    MediaRefused,
    MediaSigner,
)

NOW = 1_800_000_000
TTL = 600
SECRET = "test-secret-key-that-is-long-enough-for-production-0123456789"
CLAIMS = MediaClaims(
    expires=NOW + TTL,
    link_id="AbCdEfGhIjKlMnOpQrSt_-",
    version_id=str(uuid.UUID("1b4e28ba-2fa1-11d2-883f-0016d3cca427")),
    sha256="0f" * 32,
    size=10 * 1024,
    modified=NOW - 86_400,
    content_type="video/mp4",
    download=False,
    filename="Zellbiologie Übung 1 — Lösung.mp4",
)


def signer(keys: dict[str, str] | None = None, current: str = "k1") -> MediaSigner:
    keys = keys or {"k1": SECRET}
    return MediaSigner({kid: derive_key(s, Purpose.MEDIA_URL, kid) for kid, s in keys.items()}, current, max_ttl=TTL)


def served(path: str) -> str:
    """The path as the server hands it to the app: percent-decoded."""
    return unquote(path)


def test_round_trip() -> None:
    s = signer()
    path = s.sign(CLAIMS)
    assert path.startswith("/m/k1/")
    assert "%C3%9Cbung" in path  # the name is percent-encoded in the URL …
    assert s.verify(served(path), NOW) == CLAIMS  # … and compared decoded


def test_the_signature_is_hmac_sha256_over_the_documented_message() -> None:
    path = served(signer().sign(CLAIMS))
    fields = path.removeprefix("/m/").split("/")
    head, sig, name = fields[:9], fields[9], "/".join(fields[10:])
    message = MESSAGE_PREFIX + ("/".join(head) + "/" + name).encode()
    expected = hmac.digest(derive_key(SECRET, Purpose.MEDIA_URL, "k1"), message, "sha256")
    assert base64.urlsafe_b64decode(sig + "=") == expected
    assert len(sig) == 43


def test_the_media_key_is_the_one_the_hand_written_hkdf_derived() -> None:
    """URLs signed before the key service moved the derivation to `cryptography` verify after it."""
    before = "752a121217c7d237a51cf56f903a5092e21de80caa1127bdeefac93763641d5c"  # hkdf_sha256, salt b"studyshelf"
    assert derive_key(SECRET, Purpose.MEDIA_URL, "k1").hex() == before


@pytest.mark.parametrize(
    "field",
    ["expires", "link_id", "version_id", "sha256", "size", "modified", "content_type", "download", "filename"],
)
def test_every_field_is_signed(field: str) -> None:
    s = signer()
    path = served(s.sign(CLAIMS))
    other: Any = {
        "expires": NOW + TTL - 1,
        "link_id": "AbCdEfGhIjKlMnOpQrSt_x",
        "version_id": str(uuid.UUID(int=1)),
        "sha256": "1f" * 32,
        "size": 10 * 1024 + 1,
        "modified": NOW - 86_399,
        "content_type": "text/html",
        "download": True,
        "filename": "Zellbiologie Übung 1 — Lösung.mp4.html",
    }[field]
    forged_claims = CLAIMS._replace(**{field: other})
    forged = served(s.sign(forged_claims))
    sig = forged.split("/")[11]
    # The original signature on the changed fields:
    tampered = forged.replace(sig, path.split("/")[11])
    with pytest.raises(MediaRefused) as refused:
        s.verify(tampered, NOW)
    assert refused.value.reason == "bad-signature"


def test_expired_and_clock_skew() -> None:
    s = signer()
    path = served(s.sign(CLAIMS))
    assert s.verify(path, CLAIMS.expires + CLOCK_SKEW) == CLAIMS  # within the tolerated skew
    for later in (CLAIMS.expires + CLOCK_SKEW + 1, CLAIMS.expires + 86_400):
        with pytest.raises(MediaRefused) as refused:
            s.verify(path, later)
        assert refused.value.reason == "expired"
        assert refused.value.link_id == CLAIMS.link_id


@pytest.mark.parametrize("ahead", [TTL + CLOCK_SKEW + 1, 3600, 10**11])
def test_expiry_too_far_ahead_is_refused(ahead: int) -> None:
    s = signer()
    path = served(s.sign(CLAIMS._replace(expires=NOW + ahead)))
    with pytest.raises(MediaRefused) as refused:
        s.verify(path, NOW)
    assert refused.value.reason == "bad-signature"
    assert s.verify(served(s.sign(CLAIMS._replace(expires=NOW + TTL + CLOCK_SKEW))), NOW)


def test_unknown_key_id_is_refused() -> None:
    path = served(signer({"k1": SECRET, "k9": "another-secret-that-is-long-enough-0123"}, "k9").sign(CLAIMS))
    with pytest.raises(MediaRefused) as refused:
        signer().verify(path, NOW)
    assert refused.value.reason == "bad-signature"


def test_rotation_keeps_old_urls_until_the_old_key_is_removed() -> None:
    old, new = "first-rotated-secret-long-enough-0123456789", "second-rotated-secret-long-enough-012345"
    before = signer({"k1": SECRET, "r1": old}, "r1")
    url = served(before.sign(CLAIMS))
    during = signer({"k1": SECRET, "r1": old, "r2": new}, "r2")
    assert during.verify(url, NOW) == CLAIMS
    fresh = served(during.sign(CLAIMS))
    assert fresh.startswith("/m/r2/")
    after = signer({"k1": SECRET, "r2": new}, "r2")
    assert after.verify(fresh, NOW) == CLAIMS
    with pytest.raises(MediaRefused):
        after.verify(url, NOW)


def test_settings_build_the_keys() -> None:
    base = Settings(environment="test", secret_key=SECRET)
    default = MediaSigner.from_settings(base)
    assert default.current == "k1"
    path = served(default.sign(CLAIMS))
    rotated = MediaSigner.from_settings(
        Settings(
            environment="test",
            secret_key=SECRET,
            media_keys={"k2": "a-new-media-secret-of-enough-length-0123"},
            media_key_id="k2",
        )
    )
    assert rotated.verify(path, NOW) == CLAIMS  # k1 still verifies
    assert served(rotated.sign(CLAIMS)).startswith("/m/k2/")
    other_secret = MediaSigner.from_settings(Settings(environment="test", secret_key=SECRET + "x"))
    with pytest.raises(MediaRefused):
        other_secret.verify(path, NOW)


@pytest.mark.parametrize(
    "changes",
    [
        {"media_url_ttl_seconds": 29},
        {"media_url_ttl_seconds": 601},
        {"media_key_id": "k2"},
        {"media_keys": {"bad id!": "x" * 40}},
        {"media_keys": {"k2": "short"}},
    ],
)
def test_settings_refuse_bad_media_keys(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"(?i)media"):
        Settings(environment="test", secret_key=SECRET, **changes)  # type: ignore[arg-type]  # deliberately wrong or loosely typed keywords, to test the validation


@pytest.mark.parametrize(
    "changes",
    [
        {"link_id": "has space"},
        {"link_id": "x" * 65},
        {"version_id": "1B4E28BA-2FA1-11D2-883F-0016D3CCA427"},
        {"sha256": "0F" * 32},
        {"content_type": "text/plain; charset=utf-8"},
        {"filename": "a/b.txt"},
        {"filename": "bell\a.txt"},
        {"filename": ""},
        {"expires": 0},
        {"size": -1},
    ],
)
def test_the_signer_refuses_claims_it_could_not_verify(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="cannot sign"):
        signer().sign(CLAIMS._replace(**changes))


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/m/",
        "/m/k1",
        "/m/../../etc/passwd",
        "/m/k1/1/2/3/4/5/6/7/8/9/10",
        "/m/" + "a/" * 5000,
    ],
)
def test_garbage_is_a_bad_signature(path: str) -> None:
    with pytest.raises(MediaRefused) as refused:
        signer().verify(path, NOW)
    assert (refused.value.reason, refused.value.link_id) == ("bad-signature", None)


PATH = served(signer().sign(CLAIMS))


@settings(max_examples=400, deadline=None)
@given(
    position=st.integers(min_value=0, max_value=len(PATH) - 1),
    action=st.sampled_from(["replace", "delete", "insert", "swapcase"]),
    char=st.characters(codec="utf-8"),  # UTF-8 has no lone surrogates
)
def test_random_mutations_never_verify(position: int, action: str, char: str) -> None:
    if action == "replace":
        mutated = PATH[:position] + char + PATH[position + 1 :]
    elif action == "delete":
        mutated = PATH[:position] + PATH[position + 1 :]
    elif action == "insert":
        mutated = PATH[:position] + char + PATH[position:]
    else:
        mutated = PATH[:position] + PATH[position].swapcase() + PATH[position + 1 :]
    if mutated == PATH:
        return
    with pytest.raises(MediaRefused):
        signer().verify(mutated, NOW)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=600))
def test_arbitrary_text_never_verifies(text: str) -> None:
    with pytest.raises(MediaRefused):
        signer().verify("/m/" + text, NOW)
