"""The key service: one key per purpose, derived from the install secret, and one signed-token codec.

Every key StudyShelf computes with comes from here. A purpose's key is HKDF-SHA256 (RFC 5869, the
`cryptography` implementation) of the install secret with salt `studyshelf` and info
`studyshelf {purpose} key {kid}`, so keys of different purposes, key ids or installs are unrelated.
Each purpose has one current key id, which signs, and may accept older ones, each until a time or until
they are removed (rotation with grace).

A signed token is `{kid}.{body}.{mac}`: body is base64url JSON `[expires, payload]`, mac the first 16 bytes
of HMAC-SHA256 over `{kid}.{body}` under the purpose's key, base64url. The purpose is in the key, so a token
made for one purpose never verifies for another (a refused token is checked against the other purposes'
keys, to say "wrong purpose" rather than "bad signature"; nothing unverified is believed).

The key id `legacy` reproduces what the code did before this service existed (HMAC keyed with the raw
install secret over a fixed prefix and the message), for the values that live outside the process and
must not change: learner and viewer pseudonyms already stored, report webhook secrets already configured
at receivers, and the LTI private keys already encrypted in the database (read, then sealed again).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from studyshelf.core.clock import CLOCK_SKEW

HKDF_SALT = b"studyshelf"
KEY_BYTES = 32
TOKEN_MAC_BYTES = 16  # 128 bits: as much as a forger must guess, with no way to test guesses offline
MAX_TOKEN_CHARS = 16_384
DEFAULT_KID = "1"
LEGACY = "legacy"
_TOKEN = re.compile(r"([A-Za-z0-9_-]{1,16})\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]{22})", re.ASCII)
DEFAULT_MEDIA_KEY_ID = "k1"  # the media URL key derived from the install secret (the name media URLs carry)


class Purpose(StrEnum):
    """What a key protects; the value is part of the key derivation, so it never changes."""

    MEDIA_URL = "media url"  # /m/ URLs (signing/media.py)
    VIEWER_TOKEN = "viewer token"  # noqa: S105 - a purpose's name; a viewer page's calls (delivery/viewer.py)
    BEACON_TOKEN = "beacon token"  # noqa: S105 - a purpose's name; playback reports (events/beacon.py)
    LTI_STATE = "lti state"  # the OIDC login state (lti/launch.py)
    LTI_PICKER = "lti picker"  # a deep-linking picker session (lti/deep_linking.py)
    LTI_TOOL_KEY = "lti tool key"  # the passphrase of the LTI private keys in the database (lti/keys.py)
    LEARNER_PSEUDONYM = "learner pseudonym"  # an LMS user, stored with launches (lti/resource.py)
    VIEWER_PSEUDONYM = "viewer pseudonym"  # a client on one day, stored with events (analytics/enrich.py)
    REPORT_WEBHOOK = "report webhook"  # an organisation's report webhook secret (analytics/reports/org_settings.py)
    ALARM_WEBHOOK = "alarm webhook"  # the install's signing key of alarm and incident webhooks (notify/service.py)


# The message prefix each purpose had before the key service; only these purposes may use the legacy key id.
LEGACY_PREFIXES: Mapping[Purpose, bytes] = {
    Purpose.LTI_TOOL_KEY: b"studyshelf-lti-tool-key-v1",
    Purpose.LEARNER_PSEUDONYM: b"lti-learner|",
    Purpose.VIEWER_PSEUDONYM: b"viewer|",
    Purpose.REPORT_WEBHOOK: b"report-webhook:",
}


@dataclass(frozen=True)
class Rotation:
    """Which key id of a purpose signs, and which older ones still verify: each until a unix time, or None
    for until it is removed from here."""

    current: str = DEFAULT_KID
    accepted: Mapping[str, float | None] = field(default_factory=dict)


# Pseudonyms and webhook secrets are identities held elsewhere (stored rows, receivers' configuration):
# they stay on the legacy derivation, since a one-way value cannot be re-keyed. The LTI private keys are
# read under either passphrase and sealed again under the current one.
ROTATIONS: Mapping[Purpose, Rotation] = {
    Purpose.LTI_TOOL_KEY: Rotation(DEFAULT_KID, {LEGACY: None}),
    Purpose.LEARNER_PSEUDONYM: Rotation(LEGACY),
    Purpose.VIEWER_PSEUDONYM: Rotation(LEGACY),
    Purpose.REPORT_WEBHOOK: Rotation(LEGACY),
}


class TokenRefused(ValueError):
    """A token that must not be trusted; `reason` is safe to log and show."""

    reason: ClassVar[str] = "bad-signature"


class BadSignature(TokenRefused):
    """Malformed, tampered with, or signed with another install's key."""


class TokenExpired(TokenRefused):
    reason = "expired"


class WrongPurpose(TokenRefused):
    """A genuine-looking token made for another purpose (it would not verify for this one either)."""

    reason = "wrong-purpose"


class UnknownKey(TokenRefused):
    """Signed with a key id this purpose does not (or no longer) accept."""

    reason = "unknown-key"


def derive_key(secret: str, purpose: Purpose, kid: str) -> bytes:
    """The 32-byte key of `purpose` and `kid` under `secret` (HKDF-SHA256; never the secret itself)."""
    info = f"studyshelf {purpose.value} key {kid}".encode()
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=HKDF_SALT, info=info)
    return hkdf.derive(secret.encode())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class KeyRing:
    """The per-purpose keys of one install, with the token codec and the keyed hash built on them."""

    def __init__(
        self,
        secret: str,
        *,
        rotations: Mapping[Purpose, Rotation] = ROTATIONS,
        own_secrets: Mapping[Purpose, Mapping[str, str]] | None = None,
    ) -> None:
        """`own_secrets` gives a key id its own secret instead of the install's (operator-configured media keys)."""
        if not secret:
            raise ValueError("the key ring needs the install secret")
        self._secret = secret.encode()
        self._rotations = {purpose: rotations.get(purpose, Rotation()) for purpose in Purpose}
        self._keys: dict[tuple[Purpose, str], bytes] = {}
        self._macs: dict[tuple[Purpose, str], hmac.HMAC] = {}  # precomputed states, copied per message
        for purpose, rotation in self._rotations.items():
            secrets_of = (own_secrets or {}).get(purpose, {})
            for kid in (rotation.current, *rotation.accepted):
                if kid == LEGACY and purpose not in LEGACY_PREFIXES:
                    raise ValueError(f"{purpose.value!r} never had a legacy derivation")
                key = self._secret if kid == LEGACY else derive_key(secrets_of.get(kid, secret), purpose, kid)
                self._keys[purpose, kid] = key
                self._macs[purpose, kid] = hmac.new(key, LEGACY_PREFIXES[purpose] if kid == LEGACY else b"", "sha256")

    @classmethod
    def for_install(
        cls, secret: str, *, media_keys: Mapping[str, str] | None = None, media_key_id: str | None = None
    ) -> KeyRing:
        """The install's ring: the default rotations, and media keys as the media settings name them (every
        configured media key verifies until removed; `media_key_id` signs)."""
        media_keys = media_keys or {}
        media = Rotation(media_key_id or DEFAULT_MEDIA_KEY_ID, dict.fromkeys((DEFAULT_MEDIA_KEY_ID, *media_keys)))
        return cls(
            secret, rotations={**ROTATIONS, Purpose.MEDIA_URL: media}, own_secrets={Purpose.MEDIA_URL: media_keys}
        )

    def current_kid(self, purpose: Purpose) -> str:
        return self._rotations[purpose].current

    def accepted_kids(self, purpose: Purpose, now: float) -> list[str]:
        """The key ids that verify at `now`, the current one first."""
        rotation = self._rotations[purpose]
        older = [kid for kid, until in rotation.accepted.items() if kid != rotation.current and _within(until, now)]
        return [rotation.current, *older]

    def keys_of(self, purpose: Purpose) -> dict[str, bytes]:
        """Key id → key for every key of the purpose, whatever its grace (media URLs build their own HMAC
        states, and media keys verify until the settings drop them)."""
        rotation = self._rotations[purpose]
        return {kid: self._keys[purpose, kid] for kid in (rotation.current, *rotation.accepted)}

    def mac(self, purpose: Purpose, message: bytes, *, kid: str | None = None) -> bytes:
        """HMAC-SHA256 of `message` under the purpose's current key (or `kid`): for keyed hashes that are no
        tokens (pseudonyms, webhook secrets, a passphrase)."""
        state = self._macs.get((purpose, kid or self.current_kid(purpose)))
        if state is None:
            raise UnknownKey(f"{purpose.value!r} has no key {kid!r}")
        copy = state.copy()
        copy.update(message)
        return copy.digest()

    def encode(self, purpose: Purpose, payload: object, expires_at: float) -> str:
        """A signed token carrying `payload` (any JSON value) for `purpose` until `expires_at` (unix seconds)."""
        kid = self.current_kid(purpose)
        if kid == LEGACY:
            raise ValueError(f"{purpose.value!r} signs with its legacy key, which makes no tokens")
        signed = f"{kid}.{_b64(json.dumps([int(expires_at), payload], separators=(',', ':')).encode())}"
        return f"{signed}.{_b64(self._token_mac(purpose, kid, signed))}"

    def decode(self, purpose: Purpose, token: str, now: float) -> Any:
        """The payload of a token this install signed for `purpose`, or a TokenRefused saying why not."""
        kid, body, mac = _split(token)
        try:
            sent_mac = _unb64(mac)
        except (ValueError, binascii.Error) as exc:
            raise BadSignature("the token is malformed") from exc
        signed = f"{kid}.{body}"
        if kid not in self.accepted_kids(purpose, now) or kid == LEGACY:
            if self._made_for_another(purpose, kid, signed, sent_mac, now):
                raise WrongPurpose(f"the token is not a {purpose.value}")
            raise UnknownKey(f"the token's key {kid[:16]!r} is not accepted for a {purpose.value}")
        if not hmac.compare_digest(self._token_mac(purpose, kid, signed), sent_mac):
            if self._made_for_another(purpose, kid, signed, sent_mac, now):
                raise WrongPurpose(f"the token is not a {purpose.value}")
            raise BadSignature("the token's signature does not match")
        try:
            expires, payload = json.loads(_unb64(body))
        except (ValueError, TypeError, binascii.Error) as exc:
            raise BadSignature("the token is malformed") from exc
        if not isinstance(expires, int):
            raise BadSignature("the token is malformed")
        if expires + CLOCK_SKEW < now:  # signed on another instance, whose clock may be behind ours
            raise TokenExpired(f"the {purpose.value} has expired")
        return payload

    def _made_for_another(self, purpose: Purpose, kid: str, signed: str, sent_mac: bytes, now: float) -> bool:
        """Whether a token refused for `purpose` is genuine for another one (only ever run on refusal)."""
        return any(
            hmac.compare_digest(self._token_mac(other, kid, signed), sent_mac)
            for other in Purpose
            if other is not purpose and kid != LEGACY and kid in self.accepted_kids(other, now)
        )

    def _token_mac(self, purpose: Purpose, kid: str, signed: str) -> bytes:
        return self.mac(purpose, signed.encode("ascii"), kid=kid)[:TOKEN_MAC_BYTES]


def _within(until: float | None, now: float) -> bool:
    return until is None or now <= until


def _split(token: str) -> tuple[str, str, str]:
    match = _TOKEN.fullmatch(token) if len(token) <= MAX_TOKEN_CHARS else None
    if match is None:
        raise BadSignature("the token is malformed")
    kid, body, mac = match.groups()
    return kid, body, mac
