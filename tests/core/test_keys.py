"""The key service: per-purpose keys, the signed-token codec, rotation with grace, and the legacy derivations."""

from __future__ import annotations

import hashlib
import hmac
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from studyshelf.analytics.enrich import viewer_id
from studyshelf.analytics.reports.org_settings import webhook_secret
from studyshelf.core.clock import CLOCK_SKEW
from studyshelf.core.keys import (
    LEGACY,
    BadSignature,
    KeyRing,
    Purpose,
    Rotation,
    TokenExpired,
    TokenRefused,
    UnknownKey,
    WrongPurpose,
    derive_key,
)
from studyshelf.lti.resource import pseudonym

SECRET = "test-secret-key-that-is-long-enough-for-production-0123456789"
NOW = 1_800_000_000
KEYS = KeyRing.for_install(SECRET)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@given(payload=JSON_VALUES, purpose=st.sampled_from([p for p in Purpose if KEYS.current_kid(p) != LEGACY]))
def test_a_token_round_trips(payload: object, purpose: Purpose) -> None:
    token = KEYS.encode(purpose, payload, NOW + 60)
    assert KEYS.decode(purpose, token, NOW) == payload


def test_a_token_is_compact_url_safe_and_names_its_key() -> None:
    token = KEYS.encode(Purpose.VIEWER_TOKEN, "lti-" + "0" * 32, NOW + 1800)
    kid, _body, _mac = token.split(".")
    assert kid == "1"
    assert len(token) < 100
    assert all(c.isalnum() or c in "-_." for c in token)


@pytest.mark.parametrize("made_for", [Purpose.VIEWER_TOKEN, Purpose.BEACON_TOKEN, Purpose.LTI_PICKER])
def test_a_token_for_one_purpose_never_verifies_for_another(made_for: Purpose) -> None:
    token = KEYS.encode(made_for, {"s": "x"}, NOW + 60)
    for purpose in (Purpose.VIEWER_TOKEN, Purpose.BEACON_TOKEN, Purpose.LTI_PICKER, Purpose.LTI_STATE):
        if purpose is not made_for:
            with pytest.raises(WrongPurpose):
                KEYS.decode(purpose, token, NOW)


def test_an_expired_token_is_refused_past_the_clock_skew_between_instances() -> None:
    token = KEYS.encode(Purpose.LTI_STATE, {"n": 1}, NOW)
    assert KEYS.decode(Purpose.LTI_STATE, token, NOW) == {"n": 1}
    # Another instance's clock may run up to CLOCK_SKEW ahead of the one that signed.
    assert KEYS.decode(Purpose.LTI_STATE, token, NOW + CLOCK_SKEW) == {"n": 1}
    with pytest.raises(TokenExpired) as refused:
        KEYS.decode(Purpose.LTI_STATE, token, NOW + CLOCK_SKEW + 1)
    assert refused.value.reason == "expired"


@pytest.mark.parametrize("part", [0, 1, 2])
def test_a_tampered_token_is_refused(part: int) -> None:
    token = KEYS.encode(Purpose.BEACON_TOKEN, {"size": 10}, NOW + 60)
    pieces = token.split(".")
    pieces[part] = "2" if part == 0 else pieces[part][:-2] + ("AA" if pieces[part][-2:] != "AA" else "BB")
    with pytest.raises(TokenRefused):
        KEYS.decode(Purpose.BEACON_TOKEN, ".".join(pieces), NOW)


@pytest.mark.parametrize("garbage", ["", "a.b", "1.e30.", "1.é.AAAAAAAAAAAAAAAAAAAAAA", "x" * 20_000, "1..a.b"])
def test_garbage_is_a_bad_signature(garbage: str) -> None:
    with pytest.raises(BadSignature):
        KEYS.decode(Purpose.VIEWER_TOKEN, garbage, NOW)


def test_two_installs_never_accept_each_others_tokens() -> None:
    other = KeyRing.for_install(SECRET + "-another-install")
    token = other.encode(Purpose.VIEWER_TOKEN, "abc", NOW + 60)
    with pytest.raises(BadSignature):
        KEYS.decode(Purpose.VIEWER_TOKEN, token, NOW)
    assert other.mac(Purpose.LTI_TOOL_KEY, b"") != KEYS.mac(Purpose.LTI_TOOL_KEY, b"")
    assert derive_key(SECRET, Purpose.MEDIA_URL, "k1") != derive_key(SECRET + "x", Purpose.MEDIA_URL, "k1")


def test_a_rotated_key_is_accepted_until_its_grace_ends_then_refused() -> None:
    before = KeyRing(SECRET)
    old_token = before.encode(Purpose.VIEWER_TOKEN, "abc", NOW + 3600)
    grace_ends = NOW + 600
    after = KeyRing(SECRET, rotations={Purpose.VIEWER_TOKEN: Rotation("2", {"1": grace_ends})})
    new_token = after.encode(Purpose.VIEWER_TOKEN, "abc", NOW + 3600)
    assert new_token.startswith("2.")
    assert after.decode(Purpose.VIEWER_TOKEN, old_token, NOW) == "abc"
    assert after.decode(Purpose.VIEWER_TOKEN, old_token, grace_ends) == "abc"
    with pytest.raises(UnknownKey):
        after.decode(Purpose.VIEWER_TOKEN, old_token, grace_ends + 1)
    assert after.decode(Purpose.VIEWER_TOKEN, new_token, grace_ends + 1) == "abc"
    with pytest.raises(UnknownKey):
        before.decode(Purpose.VIEWER_TOKEN, new_token, NOW)  # an instance not yet rotated knows no key 2


def test_keys_differ_per_purpose_and_kid() -> None:
    derived = {derive_key(SECRET, p, kid) for p in Purpose for kid in ("1", "2")}
    assert len(derived) == 2 * len(Purpose)


def test_only_purposes_that_had_one_may_use_the_legacy_key() -> None:
    with pytest.raises(ValueError, match="never had a legacy derivation"):
        KeyRing(SECRET, rotations={Purpose.VIEWER_TOKEN: Rotation(LEGACY)})


def test_the_media_key_is_the_one_the_hand_written_hkdf_derived() -> None:
    """Media URLs signed before the derivation moved to `cryptography` still verify (value from the old code)."""
    before = "752a121217c7d237a51cf56f903a5092e21de80caa1127bdeefac93763641d5c"
    assert KEYS.keys_of(Purpose.MEDIA_URL)["k1"].hex() == before


def test_configured_media_keys_keep_their_own_secrets() -> None:
    ring = KeyRing.for_install(SECRET, media_keys={"k2": "another-media-secret-long-enough-0123"}, media_key_id="k2")
    assert ring.current_kid(Purpose.MEDIA_URL) == "k2"
    assert ring.keys_of(Purpose.MEDIA_URL) == {
        "k2": derive_key("another-media-secret-long-enough-0123", Purpose.MEDIA_URL, "k2"),
        "k1": derive_key(SECRET, Purpose.MEDIA_URL, "k1"),
    }


# Values made by the code before the key service, written out here with its formulas: they must not change.


def test_learner_pseudonyms_already_stored_stay_the_same() -> None:
    old = hmac.new(SECRET.encode(), b"lti-learner|https://lms.example|client-1|user-7", hashlib.sha256).hexdigest()
    assert pseudonym(KEYS, issuer="https://lms.example", client_id="client-1", sub="user-7") == old[:40]


def test_viewer_pseudonyms_already_stored_stay_the_same() -> None:
    day_key = hmac.new(SECRET.encode(), b"viewer|2026-03-10", hashlib.sha256).digest()
    old = hmac.new(day_key, b"192.0.2.1|Mozilla/5.0", hashlib.sha256).hexdigest()[:24]
    assert viewer_id(KEYS, day="2026-03-10", ip="192.0.2.1", user_agent="Mozilla/5.0") == old


def test_report_webhook_secrets_configured_at_receivers_stay_the_same() -> None:
    org = uuid.UUID("1b4e28ba-2fa1-11d2-883f-0016d3cca427")
    old = hmac.new(SECRET.encode(), f"report-webhook:{org}".encode(), hashlib.sha256).hexdigest()
    assert webhook_secret(KEYS, org) == old


def test_the_lti_key_passphrase_of_before_is_still_accepted_but_no_longer_current() -> None:
    old = hmac.new(SECRET.encode(), b"studyshelf-lti-tool-key-v1", hashlib.sha256).hexdigest()
    assert KEYS.mac(Purpose.LTI_TOOL_KEY, b"", kid=LEGACY).hex() == old
    assert KEYS.mac(Purpose.LTI_TOOL_KEY, b"").hex() != old
    assert KEYS.accepted_kids(Purpose.LTI_TOOL_KEY, NOW) == ["1", LEGACY]
