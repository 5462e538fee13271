"""CloudFront signed URLs for media (STUDYSHELF_CDN=cloudfront): a canned policy signed with the key pair's RSA key.

The CDN checks this signature at the edge; the `/m/` path inside it still carries StudyShelf's own HMAC, which
the origin checks on every request that reaches it (docs/operations.md, "CDN"). A canned policy names one URL
and an expiry:

    {"Statement":[{"Resource":"<url>","Condition":{"DateLessThan":{"AWS:EpochTime":<expires>}}}]}

signed with RSA-SHA1 (PKCS #1 v1.5, what CloudFront verifies), base64 with `+=/` written as `-_~`, and sent as
the `Expires`, `Signature` and `Key-Pair-Id` query parameters.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from studyshelf.settings import Settings

_CLOUDFRONT_BASE64 = bytes.maketrans(b"+=/", b"-_~")


def canned_policy(url: str, expires: int) -> str:
    """The canned policy of `url` until `expires` (unix seconds), exactly as CloudFront rebuilds it."""
    statement = {"Resource": url, "Condition": {"DateLessThan": {"AWS:EpochTime": expires}}}
    return json.dumps({"Statement": [statement]}, separators=(",", ":"))


def cloudfront_base64(data: bytes) -> str:
    return base64.b64encode(data).translate(_CLOUDFRONT_BASE64).decode("ascii")


class CloudFrontSigner:
    """Turns a media path into a CloudFront signed URL on the distribution's domain."""

    def __init__(self, *, domain: str, key_pair_id: str, private_key: rsa.RSAPrivateKey) -> None:
        self.origin = f"https://{domain}"
        self.key_pair_id = key_pair_id
        self._key = private_key

    @classmethod
    def from_settings(cls, settings: Settings) -> CloudFrontSigner | None:
        """The signer the settings ask for; None unless STUDYSHELF_CDN=cloudfront."""
        if settings.cdn != "cloudfront":
            return None
        assert settings.cdn_private_key_file is not None  # the settings refuse cloudfront without it
        return cls(
            domain=settings.cdn_domain,
            key_pair_id=settings.cdn_key_pair_id,
            private_key=load_private_key(settings.cdn_private_key_file),
        )

    def sign(self, path: str, expires: int) -> str:
        """The URL of `path` (starting with /, already percent-encoded) on the CDN, valid until `expires`."""
        url = self.origin + path
        # SHA-1 is what CloudFront's canned policies are verified with; the choice is AWS's, not ours.
        signature = self._key.sign(canned_policy(url, expires).encode(), padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
        separator = "&" if "?" in url else "?"
        return (
            f"{url}{separator}Expires={expires}&Signature={cloudfront_base64(signature)}&Key-Pair-Id={self.key_pair_id}"
        )


def load_private_key(path: Path) -> rsa.RSAPrivateKey:
    """The RSA private key in a PEM file, or a ValueError naming the setting."""
    setting = "STUDYSHELF_CDN_PRIVATE_KEY_FILE"
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise ValueError(f"{setting}: cannot read {path}: {exc.strerror}") from None
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{setting}: {path} is not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{setting}: {path} holds no RSA key (CloudFront key pairs are RSA)")
    return key
