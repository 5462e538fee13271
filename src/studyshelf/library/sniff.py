"""Content types from the bytes themselves, never from what the client claims."""

from __future__ import annotations

import filetype

_TEXT_BY_EXTENSION = {
    "csv": "text/csv",
    "md": "text/markdown",
    "txt": "text/plain",
    "vtt": "text/vtt",
    "srt": "text/plain",
}
_MARKUP_PREFIXES = (
    (b"<svg", "image/svg+xml"),
    (b"<!doctype html", "text/html"),
    (b"<html", "text/html"),
    (b"<?xml", "application/xml"),
)
# Types that can run script when a browser renders them on our origin.
ACTIVE_CONTENT_TYPES = frozenset(
    {"text/html", "image/svg+xml", "application/xml", "text/xml", "application/xhtml+xml", "text/javascript"}
)


def sniff_content_type(head: bytes, filename: str) -> str:
    """Guess the media type from the first bytes; the file name only refines plain text."""
    kind = filetype.guess(head) if head else None
    if kind is not None:
        return str(kind.mime)
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    for prefix, mime in _MARKUP_PREFIXES:
        if stripped.startswith(prefix):
            if mime == "application/xml" and b"<svg" in stripped[:1024]:
                return "image/svg+xml"
            return mime
    if b"<script" in stripped[:4096] or b"<html" in stripped[:4096]:
        return "text/html"
    if _looks_like_text(head):
        extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        return _TEXT_BY_EXTENSION.get(extension, "text/plain")
    return "application/octet-stream"


def _looks_like_text(head: bytes) -> bool:
    if not head:
        return True
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 4  # a multi-byte character cut at the end of the sample
    return True


def is_active_content(content_type: str) -> bool:
    return content_type in ACTIVE_CONTENT_TYPES or content_type.endswith("+xml")


def category(content_type: str) -> str:
    """A coarse kind for icons and players: video, audio, image, pdf, document, text, other."""
    if content_type == "application/pdf":
        return "pdf"
    major = content_type.split("/", 1)[0]
    if major in {"video", "audio", "image", "text"}:
        return "image" if major == "image" and not is_active_content(content_type) else major
    if any(word in content_type for word in ("officedocument", "opendocument", "msword", "ms-excel", "powerpoint")):
        return "document"
    return "other"
