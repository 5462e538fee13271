"""STUDYSHELF_CDN=cloudfront: media URLs are CloudFront signed URLs (canned policy), checked as CloudFront would."""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from botocore.signers import CloudFrontSigner as BotocoreCloudFrontSigner
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from fastapi.testclient import TestClient
from sqlalchemy import select

from studyshelf.app import create_app
from studyshelf.library.models import File, FileVersion
from studyshelf.services import Services, build_services
from studyshelf.settings import Settings
from studyshelf.signing import MediaClaims, MediaSigner
from tests.conftest import Member, make_settings
from tests.html import parse_html
from tests.library.support import uploaded
from tests.links.support import EMBEDDED, create_link, link_path, visitor

DOMAIN = "d111111abcdef8.cloudfront.net"
KEY_PAIR_ID = "K2JCJMDEHXQW5F"
DATA = bytes(range(256)) * 8
VIDEO = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + DATA


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def key_file(tmp_path: Path, private_key: rsa.RSAPrivateKey) -> Path:
    path = tmp_path / "cloudfront.pem"
    path.write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path


@pytest.fixture
def settings(tmp_path: Path, db_url: str, key_file: Path) -> Settings:
    return make_settings(
        tmp_path,
        db_url,
        cdn="cloudfront",
        cdn_domain=DOMAIN,
        cdn_key_pair_id=KEY_PAIR_ID,
        cdn_private_key_file=key_file,
        base_url="http://library.example.edu:8000",  # http: the test clients' session cookies are not Secure
    )


def _claims(expires: int, filename: str = "Vorlesung 3 — Zellteilung.mp4") -> MediaClaims:
    return MediaClaims(
        expires=expires,
        link_id="AbCdEfGhIjKlMnOpQrSt_-",
        version_id=str(uuid.uuid4()),
        sha256=hashlib.sha256(DATA).hexdigest(),
        size=len(DATA),
        modified=1_700_000_000,
        content_type="video/mp4",
        download=False,
        filename=filename,
    )


def verify_as_cloudfront(url: str, public_key: rsa.RSAPublicKey, now: float) -> str:
    """What CloudFront checks for a canned policy; returns the URL without the signing parameters."""
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    assert sorted(params) == ["Expires", "Key-Pair-Id", "Signature"]
    assert params["Key-Pair-Id"] == KEY_PAIR_ID
    resource = f"{parts.scheme}://{parts.netloc}{parts.path}"
    expires = int(params["Expires"])
    policy = '{"Statement":[{"Resource":"%s","Condition":{"DateLessThan":{"AWS:EpochTime":%d}}}]}' % (  # noqa: UP031 - the text AWS documents
        resource,
        expires,
    )
    signature = base64.b64decode(params["Signature"].replace("-", "+").replace("_", "=").replace("~", "/"))
    public_key.verify(signature, policy.encode(), padding.PKCS1v15(), hashes.SHA1())  # noqa: S303 - CloudFront's choice
    assert now < expires, "expired"
    return resource


def test_a_media_url_is_a_cloudfront_signed_url(settings: Settings, private_key: rsa.RSAPrivateKey) -> None:
    signer = MediaSigner.from_settings(settings)
    now = time.time()
    claims = _claims(int(now) + 600)
    url = signer.sign(claims)
    assert url.startswith(f"https://{DOMAIN}/m/")
    resource = verify_as_cloudfront(url, private_key.public_key(), now)
    assert dict(parse_qsl(urlsplit(url).query))["Expires"] == str(claims.expires)  # the media URL's expiry
    # Behind the CDN our own signature is still in the path, and still checked at the origin.
    origin_path = urlsplit(resource).path
    assert signer.verify(_decoded(origin_path), now) == claims


def test_the_same_url_as_aws_own_signer(settings: Settings, private_key: rsa.RSAPrivateKey) -> None:
    claims = _claims(int(time.time()) + 300)
    ours = MediaSigner.from_settings(settings).sign(claims)
    unsigned = ours.partition("?")[0]

    def rsa_signer(message: bytes) -> bytes:
        return private_key.sign(message, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303 - CloudFront's choice

    theirs = BotocoreCloudFrontSigner(KEY_PAIR_ID, rsa_signer).generate_presigned_url(
        unsigned, date_less_than=datetime.fromtimestamp(claims.expires, UTC)
    )
    assert ours == theirs


def test_a_changed_url_or_expiry_fails_cloudfront_check(settings: Settings, private_key: rsa.RSAPrivateKey) -> None:
    now = time.time()
    url = MediaSigner.from_settings(settings).sign(_claims(int(now) + 600))
    base, _, query = url.partition("?")
    for changed in (
        base.replace(".mp4", ".mp3") + "?" + query,
        url.replace(f"Expires={int(now) + 600}", f"Expires={int(now) + 6000}"),
    ):
        with pytest.raises(InvalidSignature):
            verify_as_cloudfront(changed, private_key.public_key(), now)
    with pytest.raises(AssertionError, match="expired"):
        verify_as_cloudfront(url, private_key.public_key(), now + 601)


@pytest.fixture
def anonymous(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services=services), base_url="http://testserver") as client:
        yield client


def test_the_origin_answers_the_cdn_public_and_cross_origin(
    services: Services, owner: Member, anonymous: TestClient
) -> None:
    body = uploaded(owner, owner.root_folder_id, "slide.bin", DATA)
    with services.read_sessions() as db:
        file = db.get(File, uuid.UUID(body["id"]))
        assert file is not None
        version = db.scalars(select(FileVersion).where(FileVersion.id == file.current_version_id)).one()
        claims = _claims(int(time.time()) + 200)._replace(
            version_id=str(version.id),
            modified=int(version.created_at.timestamp()),
            content_type=version.content_type,
            filename=file.name,
        )
    url = services.signer.sign(claims)
    parts = urlsplit(url)
    # CloudFront forwards the path (the query string too, if told to: the origin ignores it).
    for origin_request in (parts.path, f"{parts.path}?{parts.query}"):
        response = anonymous.get(origin_request)
        assert response.status_code == 200, response.text
        assert response.content == DATA
        directives = dict(d.strip().partition("=")[::2] for d in response.headers["cache-control"].split(","))
        assert "public" in directives
        assert 0 < int(directives["max-age"]) <= 200  # no CDN keeps it past the signature's life
        assert response.headers["cross-origin-resource-policy"] == "cross-origin"
        assert response.headers["access-control-allow-origin"] == "http://library.example.edu:8000"
        assert "Content-Range" in response.headers["access-control-expose-headers"]
    forged = parts.path.replace("/m/", "/m/x", 1)
    assert anonymous.get(forged).status_code == 403
    # pdf.js's Range fetch from the viewer to the CDN is preflighted.
    preflight = anonymous.options(
        parts.path,
        headers={"Origin": "http://library.example.edu:8000", "Access-Control-Request-Headers": "range"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "http://library.example.edu:8000"
    assert "Range" in preflight.headers["access-control-allow-headers"]


def test_the_viewer_lets_media_come_from_the_cdn(owner: Member) -> None:
    file = uploaded(owner, owner.root_folder_id, "lecture.mp4", VIDEO)
    page = visitor(owner).get(link_path(create_link(owner, file["id"])), headers=EMBEDDED)
    assert page.status_code == 200, page.text
    assert parse_html(page).attr("video[data-media]", "src").startswith(f"https://{DOMAIN}/m/")
    directives = dict(d.strip().partition(" ")[::2] for d in page.headers["content-security-policy"].split(";"))
    for name in ("media-src", "img-src", "connect-src"):
        assert f"https://{DOMAIN}" in directives[name].split(), name
    assert f"https://{DOMAIN}" not in directives["script-src"]


@pytest.mark.parametrize("missing", ["cdn_domain", "cdn_key_pair_id", "cdn_private_key_file"])
def test_cloudfront_needs_its_three_settings(tmp_path: Path, key_file: Path, missing: str) -> None:
    values: dict[str, object] = {
        "cdn": "cloudfront",
        "cdn_domain": DOMAIN,
        "cdn_key_pair_id": KEY_PAIR_ID,
        "cdn_private_key_file": key_file,
    }
    del values[missing]
    with pytest.raises(ValueError, match=f"STUDYSHELF_{missing.upper()}"):
        make_settings(tmp_path, "sqlite://", **values)


def test_an_unusable_key_file_stops_the_start(tmp_path: Path) -> None:
    for content in (None, b"not a key"):
        path = tmp_path / "key.pem"
        if content is not None:
            path.write_bytes(content)
        settings = make_settings(
            tmp_path,
            f"sqlite:///{tmp_path / 'db.sqlite3'}",
            cdn="cloudfront",
            cdn_domain=DOMAIN,
            cdn_key_pair_id=KEY_PAIR_ID,
            cdn_private_key_file=path,
        )
        with pytest.raises(ValueError, match="STUDYSHELF_CDN_PRIVATE_KEY_FILE"):
            build_services(settings)


def _decoded(path: str) -> str:
    from urllib.parse import unquote

    return unquote(path)
