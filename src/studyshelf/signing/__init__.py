"""URL signing backends: the signer of `/m/` media URLs that `Services` holds, and the CDN's signed URLs around them."""

from studyshelf.core.clock import CLOCK_SKEW
from studyshelf.signing.cloudfront import CloudFrontSigner
from studyshelf.signing.media import (
    MediaClaims,
    MediaRefused,
    MediaSigner,
    RefusalReason,
    SetClaims,
    sign_set,
    split_set,
    verify_set,
)

__all__ = [
    "CLOCK_SKEW",
    "CloudFrontSigner",
    "MediaClaims",
    "MediaRefused",
    "MediaSigner",
    "RefusalReason",
    "SetClaims",
    "sign_set",
    "split_set",
    "verify_set",
]
