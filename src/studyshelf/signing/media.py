"""Short-lived signed media URLs: every header-deciding field in the path, an HMAC-SHA256 over them.

    /m/{kid}/{exp}/{link_id}/{version_id}/{sha256}/{size}/{modified}/{type}~{subtype}/{dl}/{sig}/{filename}

`kid` names the key (derived by core/keys.py, purpose `media url`; keys rotate without breaking URLs in
use); `exp` and `modified` are unix seconds; `dl` is 1 for an attachment, 0 for inline; `sig` is the full
32-byte HMAC-SHA256, base64url without padding, over `MESSAGE_PREFIX` + the path between `/m/` and
`/{sig}` + `/` + the (decoded) file name. The file name is last so it may be percent-encoded freely; the
server decodes it before we see it.

No JSON and no base64 payload: one regular expression checks every field's length and charset, then
one HMAC and one constant-time compare decide (bench/media.py: 120,000–160,000 a second on one core).
Nothing here reads a cookie or the database; the URL alone authorises the bytes it names.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import re
from typing import Literal, NamedTuple
from urllib.parse import quote

from studyshelf.core.clock import CLOCK_SKEW
from studyshelf.core.keys import KeyRing, Purpose
from studyshelf.settings import Settings
from studyshelf.signing.cloudfront import CloudFrontSigner

MESSAGE_PREFIX = b"studyshelf-media-v1\n"
MAX_FILENAME = 255

RefusalReason = Literal["bad-signature", "expired"]

_RESTRICTED_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,62}"
_CONTENT_TYPE = re.compile(rf"({_RESTRICTED_NAME})/({_RESTRICTED_NAME})", re.ASCII)
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,16}", re.ASCII)
_LINK_ID = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)
_VERSION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII)
_BAD_NAME_CHARS = re.compile(r"[\x00-\x1f\x7f/\\]")
_URLSAFE = bytes.maketrans(b"+/", b"-_")
# Everything up to the file name, ASCII only, quantifiers possessive (no backtracking): the name is
# checked apart, which is 2× faster than one pattern over a non-ASCII string (bench/media.py). Numbers
# need no canonical-form check: the HMAC covers the exact text, and the signer writes str(int).
_PATH = re.compile(
    r"/m/"
    r"([A-Za-z0-9_-]{1,16}+)/"  # kid
    r"([0-9]{1,12}+)/"  # exp
    r"([A-Za-z0-9_-]{1,64}+)/"  # link id
    r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/"  # version id
    r"([0-9a-f]{64})/"  # sha256
    r"([0-9]{1,16}+)/"  # size
    r"([0-9]{1,12}+)/"  # modified
    rf"({_RESTRICTED_NAME}+~{_RESTRICTED_NAME}+)/"  # content type, "/" written as "~"
    r"([01])/"  # download
    r"[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]/",  # sig: 32 bytes, canonical base64url; then the file name
    re.ASCII,
)
SIG_LENGTH = 43


class MediaRefused(Exception):
    """A media URL that must not be served; `reason` is safe to show, `link_id` is unverified."""

    def __init__(self, reason: RefusalReason, link_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason: RefusalReason = reason
        self.link_id = link_id


class MediaClaims(NamedTuple):
    """Everything a media URL decides: which bytes, until when, through which link, and the headers.

    A NamedTuple, not a frozen dataclass, and `version_id` as canonical UUID text, not uuid.UUID:
    building those took as long as the HMAC itself (bench/media.py).
    """

    expires: int
    link_id: str
    version_id: str
    sha256: str
    size: int
    modified: int
    content_type: str
    download: bool
    filename: str


_new_claims = tuple.__new__


class _HmacSha256:
    """HMAC-SHA256 with the key set up and the common prefix hashed once; each message copies that state:
    4× faster per message than hmac.digest(), which sets the key up again every call (bench/media.py)."""

    def __init__(self, key: bytes, prefix: bytes) -> None:
        self._state = hmac.new(key, prefix, hashlib.sha256)

    def mac(self, first: bytes, second: bytes) -> bytes:
        """base64url (no padding) of HMAC(key, prefix + first + second)."""
        state = self._state.copy()
        state.update(first)
        state.update(second)
        return binascii.b2a_base64(state.digest(), newline=False)[:SIG_LENGTH].translate(_URLSAFE)


SET_PREFIX = "/m/~/"
SET_MESSAGE_PREFIX = b"studyshelf-media-set-v1\n"
# A processed version's files (HLS playlists and segments, poster, sprite) under one signature:
#   /m/~/{kid}/{exp}/{link_id}/{version_id}/{generation}/{sig}/{path inside the set}
# A player asks for hundreds of segments; each is checked against the prefix's signature, verified once and
# remembered (delivery/media.py), and relative URLs in the playlists stay under the same prefix.
_SET_PATH = re.compile(
    r"/m/~/"
    r"([A-Za-z0-9_-]{1,16}+)/"  # kid
    r"([0-9]{1,12}+)/"  # exp
    r"([A-Za-z0-9_-]{1,64}+)/"  # link id
    r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/"  # version id
    r"([0-9]{1,9}+)/"  # generation of the outputs
    r"[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]/",  # sig
    re.ASCII,
)
_SET_MEMBER = re.compile(r"(?:[A-Za-z0-9_-][A-Za-z0-9_.-]{0,40}/)?[A-Za-z0-9_-][A-Za-z0-9_.-]{0,60}", re.ASCII)


class SetClaims(NamedTuple):
    """A processed version's outputs, through which link, until when; `generation` names one run's outputs."""

    expires: int
    link_id: str
    version_id: str
    generation: int


class MediaSigner:
    """Signs and verifies media URL paths with a set of keys; `current` signs, every key verifies."""

    def __init__(
        self, keys: dict[str, bytes], current: str, *, max_ttl: int, cdn: CloudFrontSigner | None = None
    ) -> None:
        if current not in keys:
            raise ValueError(f"the signing key id {current!r} is not among the keys")
        for kid, key in keys.items():
            if not _KEY_ID.fullmatch(kid) or len(key) < 32:
                raise ValueError(f"media key {kid!r}: ids are 1–16 of [A-Za-z0-9_-], keys at least 32 bytes")
        self._macs = {kid: _HmacSha256(key, MESSAGE_PREFIX) for kid, key in keys.items()}
        self.current = current
        self.max_ttl = max_ttl
        self.cdn = cdn  # set: sign() answers the CDN's signed URL around our path

    @classmethod
    def from_keys(cls, keys: KeyRing, *, max_ttl: int, cdn: CloudFrontSigner | None = None) -> MediaSigner:
        """The signer of the key ring's media keys (each verifies until the settings drop it)."""
        media = Purpose.MEDIA_URL
        return cls(keys.keys_of(media), keys.current_kid(media), max_ttl=max_ttl, cdn=cdn)

    @classmethod
    def from_settings(cls, settings: Settings) -> MediaSigner:
        keys = KeyRing.for_install(
            settings.secret_key, media_keys=settings.media_keys, media_key_id=settings.media_key_id
        )
        return cls.from_keys(keys, max_ttl=settings.media_url_ttl_seconds, cdn=CloudFrontSigner.from_settings(settings))

    @property
    def media_origin(self) -> str | None:
        """Where signed URLs send clients when it is not our own origin (the CDN's), for the viewer's CSP."""
        return None if self.cdn is None else self.cdn.origin

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._macs)

    def sign(self, claims: MediaClaims) -> str:
        """The URL path (percent-encoded, starting /m/) that grants `claims` until `claims.expires`.

        With a CDN, the CDN's signed URL of that path (same expiry): the CDN checks its signature, the origin ours.
        """
        _check_claims(claims)
        kid = self.current
        fields = (
            kid,
            str(claims.expires),
            claims.link_id,
            claims.version_id,
            claims.sha256,
            str(claims.size),
            str(claims.modified),
            claims.content_type.replace("/", "~"),
            "1" if claims.download else "0",
        )
        head = "/".join(fields) + "/"
        sig = self._macs[kid].mac(head.encode("ascii"), claims.filename.encode()).decode("ascii")
        path = f"/m/{head}{sig}/{quote(claims.filename, safe='')}"
        return path if self.cdn is None else self.cdn.sign(path, claims.expires)

    def verify(self, path: str, now: float) -> MediaClaims:
        """The claims of a (decoded) URL path, or MediaRefused: bad-signature or expired."""
        match = _PATH.match(path)
        if match is None:
            raise MediaRefused("bad-signature")
        kid, exp, link_id, version, sha256, size, modified, ctype, dl = match.groups()
        name_start = match.end()
        filename = path[name_start:]
        mac = self._macs.get(kid)
        if mac is None or not 0 < len(filename) <= MAX_FILENAME or _BAD_NAME_CHARS.search(filename):
            raise MediaRefused("bad-signature", link_id)
        # Everything before the file name is ASCII, so str and UTF-8 offsets agree up to there.
        raw = path.encode()
        sig_start = name_start - SIG_LENGTH - 1
        if not hmac.compare_digest(mac.mac(raw[3:sig_start], raw[name_start:]), raw[sig_start : name_start - 1]):
            raise MediaRefused("bad-signature", link_id)
        expires = int(exp)
        if expires + CLOCK_SKEW < now:
            raise MediaRefused("expired", link_id)
        if expires > now + self.max_ttl + CLOCK_SKEW:
            # Never issued with this TTL: a clock far off, or a key that leaked.
            raise MediaRefused("bad-signature", link_id)
        return _new_claims(  # skips NamedTuple's Python-level __new__
            MediaClaims,
            (expires, link_id, version, sha256, int(size), int(modified), ctype.replace("~", "/"), dl == "1", filename),
        )


def sign_set(signer: MediaSigner, claims: SetClaims) -> str:
    """The signed prefix (ending in `/`) under which every output of the version may be fetched."""
    if not _LINK_ID.fullmatch(claims.link_id) or not _VERSION_ID.fullmatch(claims.version_id):
        raise ValueError("cannot sign this media set: bad link or version id")
    kid = signer.current
    head = f"{kid}/{claims.expires}/{claims.link_id}/{claims.version_id}/{claims.generation}/"
    sig = signer._macs[kid].mac(SET_MESSAGE_PREFIX, head.encode("ascii")).decode("ascii")
    return f"{SET_PREFIX}{head}{sig}/"


def verify_set(signer: MediaSigner, prefix: str, now: float) -> SetClaims:
    """The claims of a signed set prefix (as `split_set` cut it), or MediaRefused."""
    match = _SET_PATH.fullmatch(prefix)
    if match is None:
        raise MediaRefused("bad-signature")
    kid, exp, link_id, version, generation = match.groups()
    mac = signer._macs.get(kid)
    head = prefix[len(SET_PREFIX) : -SIG_LENGTH - 1]
    if mac is None or not hmac.compare_digest(
        mac.mac(SET_MESSAGE_PREFIX, head.encode("ascii")), prefix[-SIG_LENGTH - 1 : -1].encode("ascii")
    ):
        raise MediaRefused("bad-signature", link_id)
    expires = int(exp)
    if expires + CLOCK_SKEW < now:
        raise MediaRefused("expired", link_id)
    if expires > now + signer.max_ttl + CLOCK_SKEW:
        raise MediaRefused("bad-signature", link_id)
    return SetClaims(expires, link_id, version, int(generation))


SET_PREFIX_SLASHES = 9  # "/m/~/" and six fields, each ending in "/"


def split_set(path: str) -> tuple[str, str] | None:
    """(signed prefix, member path) of a set URL path, or None when it is not one (or names no valid member)."""
    cut = -1
    for _ in range(SET_PREFIX_SLASHES):
        cut = path.find("/", cut + 1)
        if cut < 0:
            return None
    prefix, member = path[: cut + 1], path[cut + 1 :]
    if not _SET_MEMBER.fullmatch(member):
        return None
    return prefix, member


def _check_claims(claims: MediaClaims) -> None:
    """Refuse to sign what verify() would refuse to read (so a bad name fails loudly, at the signer)."""
    problems = []
    if not _LINK_ID.fullmatch(claims.link_id):
        problems.append("link_id must be 1–64 of [A-Za-z0-9_-]")
    if not _VERSION_ID.fullmatch(claims.version_id):
        problems.append("version_id must be a UUID in canonical (lowercase, dashed) form")
    if not (len(claims.sha256) == 64 and all(c in "0123456789abcdef" for c in claims.sha256)):
        problems.append("sha256 must be 64 lowercase hex digits")
    if not 0 < claims.expires < 10**12 or not 0 <= claims.modified < 10**12 or not 0 <= claims.size < 10**16:
        problems.append("expires, modified and size must be small non-negative integers (expires > 0)")
    if not _CONTENT_TYPE.fullmatch(claims.content_type):
        problems.append("content_type must be a bare type/subtype")
    if not 0 < len(claims.filename) <= MAX_FILENAME or _BAD_NAME_CHARS.search(claims.filename):
        problems.append("filename must be 1–255 characters without '/', '\\' or control characters")
    if problems:
        raise ValueError("cannot sign these media claims: " + "; ".join(problems))
