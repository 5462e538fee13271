"""URL signing backends: the signer of `/m/` media URLs that `Services` holds."""

from studyshelf.core.clock import CLOCK_SKEW
from studyshelf.signing.media import MediaClaims, MediaRefused, MediaSigner, RefusalReason

__all__ = ["CLOCK_SKEW", "MediaClaims", "MediaRefused", "MediaSigner", "RefusalReason"]
