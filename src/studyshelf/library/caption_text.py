"""Caption files: WebVTT checked as browsers read it, SRT converted to WebVTT, and BCP 47 language tags.

A caption file is small (MAX_CAPTION_BYTES), so it is read whole. A file a browser would silently drop
cues from (a timing line it cannot read, an end before its start) is refused with the line that is wrong,
so the teacher learns of it at upload and not from a learner.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from studyshelf.core.errors import Invalid

MAX_CAPTION_BYTES = 2 * 1024 * 1024  # a three-hour lecture's captions are about 300 KB
MAX_LABEL = 100

_VTT_TIME = r"(?:(\d{2,}):)?([0-5]\d):([0-5]\d)\.(\d{3})"
_VTT_TIMING = re.compile(rf"{_VTT_TIME}[ \t]+-->[ \t]+{_VTT_TIME}(?:[ \t]+(.*))?", re.ASCII)
_SRT_TIME = r"(\d{1,3}):([0-5]?\d):([0-5]?\d)[,.](\d{1,3})"
_SRT_TIMING = re.compile(rf"[ \t]*{_SRT_TIME}[ \t]*-->[ \t]*{_SRT_TIME}(?:[ \t].*)?", re.ASCII)
_LOOKS_TIMED = re.compile(r"\s*\d+:\d")
_SRT_FONT_TAG = re.compile(r"</?font(?:\s[^>]*)?>", re.IGNORECASE)
# RFC 5646 well-formed tags without grandfathered forms: language, extlang, script, region, variants,
# extensions, private use.
_BCP47 = re.compile(
    r"(?P<language>[a-z]{2,3}(?:-[a-z]{3}){0,3}|[a-z]{4,8})"
    r"(?:-(?P<script>[a-z]{4}))?"
    r"(?:-(?P<region>[a-z]{2}|\d{3}))?"
    r"(?:-(?:[a-z\d]{5,8}|\d[a-z\d]{3}))*"
    r"(?:-[a-wyz\d](?:-[a-z\d]{2,8})+)*"
    r"(?:-x(?:-[a-z\d]{1,8})+)?",
    re.ASCII | re.IGNORECASE,
)
# Labels offered when the uploader gives none: each language in its own name.
LANGUAGE_NAMES = {
    "ar": "العربية",
    "cs": "Čeština",
    "da": "Dansk",
    "de": "Deutsch",
    "el": "Ελληνικά",
    "en": "English",
    "es": "Español",
    "fi": "Suomi",
    "fr": "Français",
    "he": "עברית",
    "hi": "हिन्दी",
    "hu": "Magyar",
    "it": "Italiano",
    "ja": "日本語",
    "ko": "한국어",
    "nl": "Nederlands",
    "no": "Norsk",
    "pl": "Polski",
    "pt": "Português",
    "ro": "Română",
    "ru": "Русский",
    "sv": "Svenska",
    "tr": "Türkçe",
    "uk": "Українська",
    "zh": "中文",
}


class CaptionInvalid(Invalid):
    """A caption file that is not UTF-8, not WebVTT or SRT, or has a cue a browser would drop; names the line."""

    type_slug = "caption-invalid"
    title = "The caption file is not valid"


class LanguageInvalid(Invalid):
    type_slug = "caption-language-invalid"
    title = "Not a language tag"


@dataclass(frozen=True)
class CaptionText:
    """A checked caption file as WebVTT (UTF-8, LF line ends), with its cue count and the format it came in."""

    vtt: bytes
    cues: int
    source_format: str  # "vtt" or "srt"


def normalise_language(tag: str) -> str:
    """The BCP 47 tag in its canonical case (`pt-BR`, `zh-Hant-TW`), or LanguageInvalid."""
    tag = tag.strip().replace("_", "-")
    match = _BCP47.fullmatch(tag) if 0 < len(tag) <= 35 else None
    if match is None:
        raise LanguageInvalid(
            f"{tag[:40]!r} is not a BCP 47 language tag (like en, de, pt-BR or zh-Hant).", field="language"
        )
    parts = tag.split("-")
    out = [parts[0].lower()]
    for part in parts[1:]:
        if len(part) == 4 and part.isalpha() and len(out) >= 1 and not any(p == "x" for p in out):
            out.append(part.title())
        elif len(part) == 2 and part.isalpha() and not any(p == "x" for p in out):
            out.append(part.upper())
        else:
            out.append(part.lower())
    return "-".join(out)


def default_label(language: str) -> str:
    """The language's own name for a tag we know (with its region), else the tag itself."""
    primary, _, rest = language.partition("-")
    name = LANGUAGE_NAMES.get(primary)
    if name is None:
        return language
    return f"{name} ({rest})" if rest else name


def read_caption_file(data: bytes, *, filename: str = "") -> CaptionText:
    """Check a WebVTT or SRT file and answer it as WebVTT; CaptionInvalid names the line that is wrong."""
    if len(data) > MAX_CAPTION_BYTES:
        raise CaptionInvalid(f"A caption file may be at most {MAX_CAPTION_BYTES // 1024} KiB.")
    text = _decode(data)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines[0].startswith("WEBVTT") and (len(lines[0]) == 6 or lines[0][6] in " \t"):
        vtt, cues = _check_vtt(lines)
        return CaptionText(vtt=vtt, cues=cues, source_format="vtt")
    try:
        vtt, cues = _srt_to_vtt(lines)
    except CaptionInvalid:
        if filename.lower().endswith(".vtt"):  # neither: say what the name promised
            raise CaptionInvalid("Line 1: a WebVTT file must start with the word WEBVTT.", line=1) from None
        raise
    return CaptionText(vtt=vtt, cues=cues, source_format="srt")


def _decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CaptionInvalid(f"Line {line}: the file is not UTF-8 text (save it as UTF-8).", line=line) from exc
    text = text.removeprefix("\ufeff")
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise CaptionInvalid(f"Line {line}: the file holds a NUL character; it is not a caption file.", line=line)
    return text


def _seconds(hours: str | None, minutes: str, seconds: str, millis: str) -> float:
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds) + int(millis.ljust(3, "0")) / 1000


def _blocks(lines: list[str], start: int) -> list[tuple[int, list[str]]]:
    """Blank-line separated blocks from `start`, each with the (1-based) number of its first line."""
    blocks: list[tuple[int, list[str]]] = []
    current: list[str] = []
    first = 0
    for index in range(start, len(lines)):
        line = lines[index]
        if line.strip() == "":
            if current:
                blocks.append((first, current))
                current = []
            continue
        if not current:
            first = index + 1
        current.append(line)
    if current:
        blocks.append((first, current))
    return blocks


def _header_end(lines: list[str]) -> int:
    index = 1
    while index < len(lines) and lines[index].strip() != "":
        index += 1
    return index


def _keyword_block(head: str) -> str | None:
    """NOTE, STYLE or REGION when the block is one (the word alone, or followed by a space)."""
    word = head.split(maxsplit=1)[0] if head.strip() else ""
    return word if word in ("NOTE", "STYLE", "REGION") and head.startswith(word) else None


def _check_vtt(lines: list[str]) -> tuple[bytes, int]:
    cues = 0
    for first, block in _blocks(lines, _header_end(lines)):
        keyword = _keyword_block(block[0])
        if keyword is not None:
            if any("-->" in line for line in block):
                raise CaptionInvalid(f"Line {first}: a {keyword} block cannot hold '-->'.", line=first)
            continue
        timing_at = 0 if "-->" in block[0] else 1
        if timing_at >= len(block) or "-->" not in block[timing_at]:
            line = first if _LOOKS_TIMED.match(block[0]) else first + timing_at  # a mistyped arrow, not an id
            raise CaptionInvalid(f"Line {line}: expected a cue timing like 00:01:02.500 --> 00:01:05.000.", line=line)
        _vtt_timing(block[timing_at], first + timing_at)
        for offset, payload in enumerate(block[timing_at + 1 :], start=timing_at + 1):
            if "-->" in payload:
                line = first + offset
                raise CaptionInvalid(f"Line {line}: cue text cannot hold '-->' (is a blank line missing?).", line=line)
        cues += 1
    if cues == 0:
        raise CaptionInvalid("The file has no cues: nothing would be shown.")
    return ("\n".join(lines).rstrip("\n") + "\n").encode(), cues


def _vtt_timing(line: str, number: int) -> None:
    match = _VTT_TIMING.fullmatch(line.strip())
    if match is None:
        raise CaptionInvalid(
            f"Line {number}: {line.strip()[:60]!r} is not a cue timing like 00:01:02.500 --> 00:01:05.000.",
            line=number,
        )
    groups = match.groups()
    if _seconds(*groups[4:8]) <= _seconds(*groups[0:4]):
        raise CaptionInvalid(f"Line {number}: the cue ends before it starts.", line=number)


def _srt_to_vtt(lines: list[str]) -> tuple[bytes, int]:
    out = ["WEBVTT", ""]
    cues = 0
    for first, block in _blocks(lines, 0):
        timing_at = 1 if block[0].strip().isdigit() else 0
        timing = block[timing_at] if timing_at < len(block) else ""
        match = _SRT_TIMING.fullmatch(timing)
        if match is None:
            line = first + timing_at
            what = f"{timing.strip()[:60]!r} is not" if timing.strip() else "expected"
            raise CaptionInvalid(
                f"Line {line}: {what} an SRT cue timing like 00:01:02,500 --> 00:01:05,000 "
                "(or the file is neither WebVTT nor SRT).",
                line=line,
            )
        groups = match.groups()
        start, end = _seconds(*groups[0:4]), _seconds(*groups[4:8])
        if end <= start:
            line = first + timing_at
            raise CaptionInvalid(f"Line {line}: the cue ends before it starts.", line=line)
        for offset, payload in enumerate(block[timing_at + 1 :], start=timing_at + 1):
            if "-->" in payload:
                line = first + offset
                raise CaptionInvalid(f"Line {line}: cue text cannot hold '-->' (is a blank line missing?).", line=line)
        text = [_SRT_FONT_TAG.sub("", payload) for payload in block[timing_at + 1 :]]
        if timing_at:
            out.append(block[0].strip())
        out.append(f"{_vtt_time(start)} --> {_vtt_time(end)}")
        out.extend(text)
        out.append("")
        cues += 1
    if cues == 0:
        raise CaptionInvalid("The file has no cues: nothing would be shown.")
    return ("\n".join(out).rstrip("\n") + "\n").encode(), cues


def _vtt_time(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, ms = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{ms:03d}"
